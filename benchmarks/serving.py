"""Serving benchmarks on the real pipeline → ``benchmarks/results/serving.json`` and ``serving.png``.

Everything runs for real on this machine (CPU): a private local stack (PostgreSQL, Redis, the Kafka-protocol
broker), one predictor and two inference workers started by the local launcher, requests over HTTP. The
model is a sliced MLP (the built-in template's network, 4096 units x 3 hidden layers, uploaded as a
template) trained here for two epochs on scikit-learn's digits; its four slice rates differ ~10x in time.

(a) SINGA-Easy Fig. 7(b)/8 scaled to this machine. The deadline D is fixed; one task of N instances arrives
    every D seconds (deadline D), and N is swept so that the workload N/D crosses the sub-models'
    capacities (2 workers x S_mb / t_i). For each policy — Easel's scheduler, each fixed width, Model-
    Switching (Alg. 1), Clipper-style drop — the workers are restarted with that policy and the same tasks
    are sent. Measured per point: effective accuracy (expected: the profile accuracy of each served
    instance's width over all instances; real: correct answers on time over all instances), throughput
    (instances served by their deadline per second), p99 latency of served instances, drop rate. The
    simulator (``scheduler.simulate``, same workload, this machine's measured t_i, no pipeline overhead)
    gives the oracle: the best effective accuracy any policy reaches there.
(b) Overhead: a 1-instance request's round trip (client, HTTP, predictor, broker, worker, Redis, back)
    minus the model's compute for it, p50/p99, with the predictor's per-stage means and the bare cost of
    each hop (kafka-python -> Tansu -> kafka-python, Redis XADD -> XREAD, an HTTP GET) as the floor; and
    saturated throughput (closed loop, full width, generous deadlines) as a fraction of the raw model's
    throughput: two bare model processes run side by side (they share the memory bus), and one alone.
    (b) runs before (a): the broker keeps every message in memory and is slower after the sweep.

Run: ``.venv/bin/python benchmarks/serving.py [--quick]`` (about 8 minutes; ``--quick``: fewer points).
Targets (from issue #7): ours >= every baseline at every point and >= 98 % of the oracle; overhead p50
<= 3 ms; saturated throughput >= 90 % of raw. Misses are reported as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, where benchmarks/slicing.py would shadow the
# slicing package: put the project root first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "serving.json"
FIGURE = ROOT / "benchmarks" / "results" / "serving.png"
BATCH = 32
WORKERS = 2
POLICIES = ("scheduler", "fixed:1", "fixed:0.75", "fixed:0.5", "fixed:0.25", "model-switching", "clipper")
OURS = ("scheduler",)
MSGPACK = {"content-type": "application/msgpack", "accept": "application/msgpack"}

TEMPLATE_SOURCE = '''
"""Benchmark template: the built-in sliced MLP at 4096 units x 3 hidden layers, two epochs."""
from easel.model import FixedKnob, FloatKnob, PolicyKnob
from builtin_templates.sliced import SlicedMLPTemplate


class BenchSlicedMLP(SlicedMLPTemplate):
    TASKS = ("IMAGE_CLASSIFICATION",)

    @classmethod
    def get_knob_config(cls):
        return {"width": FixedKnob(4096), "depth": FixedKnob(3), "image_size": FixedKnob(8),
                "lr": FloatKnob(0.02, 0.08), "batch_size": FixedKnob(64), "weight_decay": FixedKnob(1e-4),
                "max_epochs": FixedKnob(2), "groups": FixedKnob(8), "seed": FixedKnob(0),
                "early_stop": PolicyKnob("EARLY_STOP"), "quick_train": PolicyKnob("QUICK_TRAIN")}
'''


def log(message: str) -> None:
    print(message, flush=True)


# -- set-up: stack, trained trial, services ------------------------------------------------------------
def start_stack() -> tuple[Any, Path]:
    from easel.local_stack import LocalStack
    from easel.settings import get_settings
    from easel.stack.process import free_port

    data_dir = Path(tempfile.mkdtemp(prefix="easel-bench-serving-"))
    os.environ.update({
        "EASEL_DATA_DIR": str(data_dir), "EASEL_POSTGRES_PORT": str(free_port()),
        "EASEL_REDIS_PORT": str(free_port()), "EASEL_KAFKA_PORT": str(free_port()),
        "EASEL_SECRET_KEY": "bench-secret-key-0123456789", "EASEL_SERVING_DRAIN_S": "3",
    })
    for key in ("EASEL_DATABASE_URL", "EASEL_REDIS_URL", "EASEL_KAFKA_BOOTSTRAP"):
        os.environ.pop(key, None)
    stack = LocalStack(get_settings())
    stack.up()
    return stack, data_dir


def digits(folder: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    np.savez(folder / "train.npz", x=x[order[:cut]], y=y[order[:cut]])
    np.savez(folder / "val.npz", x=x[order[cut:]], y=y[order[cut:]])
    return folder / "train.npz", folder / "val.npz", x[order[cut:]], y[order[cut:]]


def train_and_deploy(settings: Any, sessions: Any, folder: Path) -> dict[str, Any]:
    """Train the template in-process, record it as a completed trial, create the inference job."""
    import importlib.util

    import torch

    from easel.blobstore import LocalBlobStore
    from easel.db.enums import DatasetFormat, JobStatus, ModelSource, TrialStatus, UserRole
    from easel.db.models import Dataset, InferenceJob, Model, SubTrainJob, TrainJob, Trial, User
    from easel.db.session import session_scope
    from easel.model import knob_config_to_dict

    blobs = LocalBlobStore(settings.blob_dir)
    template_file = folder / "bench_sliced_mlp.py"
    template_file.write_text(TEMPLATE_SOURCE)
    spec = importlib.util.spec_from_file_location("bench_sliced_mlp", template_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = module.BenchSlicedMLP
    train_path, val_path, x_val, y_val = digits(folder)
    torch.set_num_threads(2)
    template = cls(lr=0.05)
    began = time.perf_counter()
    template.train(str(train_path))
    trained_s = time.perf_counter() - began
    profile = template.profile(str(val_path), batch_size=BATCH, repeats=5)
    torch.set_num_threads(1)
    log(f"  trained in {trained_s:.1f}s; accuracy per rate {dict(zip(profile['rates'], [round(a, 4) for a in profile['accuracy']], strict=True))}")
    with session_scope(sessions) as s:
        user = User(email="bench@easel.local", password_hash="-", role=UserRole.MODEL_DEVELOPER)
        s.add(user)
        s.flush()
        blobs.put_bytes("models/bench_sliced_mlp.py", TEMPLATE_SOURCE.encode())
        blobs.put_bytes("datasets/train.npz", train_path.read_bytes())
        dataset = Dataset(name="digits", task="IMAGE_CLASSIFICATION", format=DatasetFormat.NPZ,
                          blob_key="datasets/train.npz", size_bytes=train_path.stat().st_size,
                          num_samples=1437, num_classes=10, owner_id=user.id)
        model = Model(name="BenchSlicedMLP", task="IMAGE_CLASSIFICATION", source=ModelSource.UPLOADED,
                      model_class="BenchSlicedMLP", module_ref="models/bench_sliced_mlp.py",
                      knob_config=knob_config_to_dict(cls.get_knob_config()), owner_id=user.id)
        s.add_all([dataset, model])
        s.flush()
        job = TrainJob(app="bench", app_version=1, task="IMAGE_CLASSIFICATION", status=JobStatus.COMPLETED,
                       budget={}, train_dataset_id=dataset.id, val_dataset_id=dataset.id, owner_id=user.id)
        s.add(job)
        s.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.COMPLETED)
        s.add(sub)
        s.flush()
        trial = Trial(sub_train_job_id=sub.id, no=1, knobs=template.knobs, status=TrialStatus.COMPLETED,
                      score=profile["accuracy"][0], profile={**profile, "batch_size": BATCH},
                      params_key="params/bench.safetensors")
        blobs.put_bytes(trial.params_key, template.dump_parameters())
        s.add(trial)
        s.flush()
        inference = InferenceJob(train_job_id=job.id, status=JobStatus.STARTED, budget={"WORKERS": WORKERS},
                                 trial_ids={"trials": [trial.id]}, owner_id=user.id)
        s.add(inference)
        s.flush()
        job_id = inference.id
    return {"job_id": job_id, "template": template, "profile": profile, "x": x_val, "y": y_val,
            "trained_s": trained_s}


def raw_timings(template: Any, repeats: int = 30) -> dict[str, Any]:
    """The model alone, in this process, one thread: seconds per mini-batch of S_mb at each rate, and
    seconds for a batch of one at full width (the compute inside a 1-instance request)."""
    import torch

    from inference_worker.model import QueryBatch

    torch.set_num_threads(1)
    batch = np.zeros((BATCH, 1, 8, 8), np.float32).view(QueryBatch)
    times = {}
    for rate in template.SLICE_RATES:
        template.predict(batch, rate)
        samples = []
        for _ in range(repeats):
            began = time.perf_counter()
            template.predict(batch, rate)
            samples.append(time.perf_counter() - began)
        times[rate] = statistics.median(samples)
    one = batch[:1].view(QueryBatch)
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        template.predict(one, 1.0)
        samples.append(time.perf_counter() - began)
    return {"batch_time_s": times, "one_instance_s": statistics.median(samples)}


AUTH: dict[str, str] = {}  # the job's API key as a header, once the predictor is started


class Services:
    """The predictor (kept) and the workers (restarted per policy), through the local launcher."""

    def __init__(self, settings: Any, sessions: Any, job_id: str) -> None:
        from easel.launcher import LocalLauncher

        self.settings, self.sessions, self.job_id = settings, sessions, job_id
        self.launcher = LocalLauncher(settings, sessions)
        self.predictor: str | None = None
        self.workers: list[str] = []
        self.url = ""

    def _spec(self, name: str, kind: Any, module: str, *args: str, env: dict[str, str] | None = None) -> Any:
        from easel.launcher import ServiceSpec

        return ServiceSpec(name=name, kind=kind, inference_job_id=self.job_id, env={"PYTHONPATH": str(ROOT), **(env or {})},
                           argv=[sys.executable, "-m", module, "--inference-job-id", self.job_id, *args])

    def start_predictor(self) -> str:
        from easel.db.enums import ServiceKind
        from easel.db.models import InferenceJob
        from easel.db.session import session_scope
        from easel.predictor_keys import issue_key
        from easel.stack.process import free_port

        with session_scope(self.sessions) as session:  # the predictor answers only its job's API keys
            AUTH["Authorization"] = f"Bearer {issue_key(session, self.job_id, 'benchmark')[1]}"
        port = free_port()
        self.predictor = self.launcher.start(self._spec("predictor", ServiceKind.PREDICTOR, "predictor",
                                                        "--port", str(port))).id
        self.url = f"http://127.0.0.1:{port}"
        wait(lambda: _get(f"{self.url}/health") is not None, 60, "the predictor")
        with session_scope(self.sessions) as session:
            assert session.get_one(InferenceJob, self.job_id).predictor_url == self.url
        return self.url

    def start_workers(self, policy: str, env: dict[str, str] | None = None) -> None:
        from easel.db.enums import ServiceKind

        self.stop_workers()
        self.workers = [self.launcher.start(self._spec(f"worker-{i}", ServiceKind.INFERENCE_WORKER,
                                                       "inference_worker", "--policy", policy, env=env)).id
                        for i in range(WORKERS)]
        wait(lambda: self._ready(policy), 120, f"{WORKERS} workers with policy {policy}")

    def _ready(self, policy: str) -> bool:
        from easel.redis_client import make_redis
        from easel.serving import live_workers, workers_key

        client = make_redis(self.settings)
        try:
            live = live_workers(client.hgetall(workers_key(self.job_id)), time.time())
        finally:
            client.close()
        mine = [r for r in live.values() if r.get("policy") == policy]
        parts = [p for r in mine for p in r["partitions"]]
        return len(mine) == WORKERS and sorted(parts) == list(range(WORKERS))

    def scrape(self) -> dict[str, Any]:
        """Sum the workers' Prometheus counters: instances by outcome, mini-batches and mean seconds by rate."""
        import httpx

        from easel.db.models import Service
        from easel.db.session import session_scope

        totals: dict[str, float] = {}
        with session_scope(self.sessions) as session:
            ports = [session.get_one(Service, service_id).port for service_id in self.workers]
        for port in ports:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                if line.startswith("#") or " " not in line:
                    continue
                name, value = line.rsplit(" ", 1)
                if name.startswith(("easel_worker_instances_total", "easel_worker_batch_seconds_sum",
                                    "easel_worker_batch_seconds_count", "easel_worker_replans_total",
                                    "easel_worker_profile_rebuilds_total", "easel_worker_minibatches_total")):
                    totals[name] = totals.get(name, 0.0) + float(value)
        means = {}
        for name, value in totals.items():
            if name.startswith("easel_worker_batch_seconds_sum") and value:
                count = totals.get(name.replace("_sum", "_count"), 0.0)
                if count:
                    means[name.split('rate="')[1].rstrip('"}')] = value / count
        return {"counters": totals, "mean_batch_seconds": means}

    def stop_workers(self) -> None:
        for service_id in self.workers:
            self.launcher.stop(service_id, timeout_s=15)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.predictor:
            self.launcher.stop(self.predictor, timeout_s=15)


def _get(url: str) -> Any:
    import httpx

    try:
        return httpx.get(url, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


def wait(check: Any, timeout_s: float, what: str) -> None:
    give_up = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > give_up:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.25)


# -- (a) the sweep -------------------------------------------------------------------------------------
def encode_task(x: np.ndarray, n: int, deadline: float) -> bytes:
    import msgpack

    rows = np.concatenate([x] * (-(-n // len(x))))[:n]
    return msgpack.packb({"instances": rows.tolist(), "deadline_s": deadline}, use_bin_type=True)


async def send_tasks(url: str, body: bytes, n_tasks: int, interval: float, timeout: float) -> list[dict[str, Any]]:
    """Open loop: one request every ``interval`` seconds, whatever the answers do."""
    import httpx
    import msgpack

    async with httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=64), headers=AUTH) as client:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05

        async def fire(k: int) -> dict[str, Any]:
            await asyncio.sleep(max(0.0, start + k * interval - loop.time()))
            response = await client.post(f"{url}/predict", content=body, headers=MSGPACK)
            response.raise_for_status()
            return msgpack.unpackb(response.content, raw=False)

        return list(await asyncio.gather(*(fire(k) for k in range(n_tasks))))


def score_point(answers: list[dict[str, Any]], y: np.ndarray, accuracy: dict[float, float], n: int,
                interval: float) -> dict[str, Any]:
    labels = np.concatenate([y] * (-(-n // len(y))))[:n].astype(str)
    total = served = correct = 0
    expected = 0.0
    latencies: list[float] = []
    mix: dict[str, int] = {}
    for answer in answers:
        for p in answer["predictions"]:
            total += 1
            if p["status"] != "served":
                continue
            served += 1
            rate = float(p["slice_rate"])
            expected += accuracy[rate]
            mix[f"{rate:g}"] = mix.get(f"{rate:g}", 0) + 1
            latencies.append(p["latency_s"])
            correct += p["prediction"]["label"] == labels[p["index"]]
    return {
        "effective_accuracy": expected / total, "effective_accuracy_real": correct / total,
        "throughput": served / (len(answers) * interval), "drop_rate": 1 - served / total,
        "latency_p99": float(np.quantile(latencies, 0.99)) if latencies else None,
        "latency_p50": float(np.quantile(latencies, 0.5)) if latencies else None,
        "mix": {k: v / served for k, v in sorted(mix.items(), reverse=True)} if served else {},
    }


def simulate_point(times: dict[float, float], accuracy: dict[float, float], n: int, deadline: float,
                   n_tasks: int, warmup: int) -> dict[str, float]:
    from easel.serving import split_mini_batches
    from scheduler import LateRule, Profile, SchedulerPolicy, baseline_policies, make_workload, simulate

    rates = tuple(sorted(times, reverse=True))
    profile = Profile(rates, tuple(accuracy[r] for r in rates), tuple(times[r] for r in rates))
    tasks = make_workload("constant", n / deadline, n_tasks, n, deadline)
    out = {}
    factories = {"scheduler": lambda: SchedulerPolicy(profile), "scheduler:myopic": lambda: SchedulerPolicy(profile, mode="myopic")}
    for policy in baseline_policies(profile):
        factories[policy.name] = (lambda name=policy.name: next(p for p in baseline_policies(profile) if p.name == name))
    for name, factory in factories.items():
        # The workers' dealing rule and their late rule (no mini-batch started after its deadline).
        result = simulate(profile, factory, tasks, n_workers=WORKERS, batch_size=BATCH, warmup=warmup * deadline,
                          deal=split_mini_batches, late_rule=LateRule.START)
        out[name] = result.effective_accuracy
    return out


def run_sweep(services: Services, setup: dict[str, Any], times: dict[float, float], deadline: float,
              loads: list[float], n_tasks: int, warmup: int) -> dict[str, Any]:
    accuracy = dict(zip(setup["profile"]["rates"], setup["profile"]["accuracy"], strict=True))
    capacity = {r: WORKERS * BATCH / t for r, t in times.items()}
    sizes = [max(BATCH, int(round(load * capacity[1.0] * deadline))) for load in loads]
    bodies = {n: encode_task(setup["x"], n, deadline) for n in sizes}
    points: dict[str, list[dict[str, Any]]] = {}
    workers: dict[str, dict[str, Any]] = {}
    for policy in POLICIES:
        began = time.perf_counter()
        services.start_workers(policy)
        log(f"  {policy}: workers ready in {time.perf_counter() - began:.1f}s")
        rows = []
        for n in sizes:
            answers = asyncio.run(send_tasks(services.url, bodies[n], n_tasks, deadline, deadline + 30))
            row = score_point(answers[warmup:], setup["y"], accuracy, n, deadline)
            row.update(n=n, workload=n / deadline)
            rows.append(row)
            log(f"    N={n:>5} N/D={n / deadline:>7.0f}/s  eff.acc {row['effective_accuracy']:.3f} "
                f"(real {row['effective_accuracy_real']:.3f})  thr {row['throughput']:>6.0f}/s  "
                f"drop {row['drop_rate']:.2f}  mix {row['mix']}")
            time.sleep(deadline)  # let the last task's deadline pass before the next point
        points[policy] = rows
        workers[policy] = services.scrape()
    oracle = [simulate_point(times, accuracy, n, deadline, n_tasks, warmup) for n in sizes]
    # The same, with the batch times the scheduler's workers measured while the whole pipeline shared the CPU.
    in_situ = {float(r): t for r, t in workers["scheduler"]["mean_batch_seconds"].items()}
    in_situ_times = {r: in_situ.get(r, t) for r, t in times.items()}
    oracle_in_situ = [simulate_point(in_situ_times, accuracy, n, deadline, n_tasks, warmup) for n in sizes]
    return {"deadline_s": deadline, "n_tasks": n_tasks, "warmup_tasks": warmup, "sizes": sizes,
            "capacity_per_s": {f"{r:g}": c for r, c in capacity.items()}, "policies": points,
            "simulator": oracle, "simulator_in_situ_times": oracle_in_situ,
            "in_situ_batch_time_s": {f"{r:g}": t for r, t in in_situ_times.items()}, "worker_metrics": workers}


# -- (b) overhead and saturation -------------------------------------------------------------------------
def measure_floors(settings: Any, url: str, samples: int = 100) -> dict[str, float]:
    """The bare cost of each hop the request path makes, with the same clients and servers but no Easel code
    around them (p50, ms): what the 1-instance overhead cannot go below on this machine."""
    import threading

    import httpx
    from kafka import TopicPartition

    from easel.kafka_io import ensure_topics, make_consumer, make_producer
    from easel.redis_client import make_redis

    def p50(values: list[float]) -> float:
        return round(statistics.median(values) * 1e3, 3)

    topic = "easel.bench.floor"
    ensure_topics(settings, [topic], 1)
    producer = make_producer(settings, value_serializer=None)
    consumer = make_consumer(settings, group_id=None, value_deserializer=None,
                             fetch_max_wait_ms=settings.serving_fetch_wait_ms)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_end()
    received: dict[int, float] = {}
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for record in records:
                    received[int(record.value)] = now

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(1.0)
    sent: dict[int, float] = {}
    for i in range(samples):
        sent[i] = time.perf_counter()
        producer.send(topic, value=str(i).encode(), partition=0)
        time.sleep(0.02)
    time.sleep(0.5)
    done.set()
    thread.join()
    producer.close()
    consumer.close()
    kafka = [received[i] - sent[i] for i in sent if i in received]

    client = make_redis(settings)
    stream = "easel:bench:floor"
    got: dict[str, float] = {}
    listening = threading.Event()

    def read() -> None:
        reader = make_redis(settings)
        last = "$"
        listening.set()
        while len(got) < samples:
            for _name, entries in reader.xread({stream: last}, block=1000) or ():
                for entry_id, fields in entries:
                    last = entry_id
                    got[fields[b"i"].decode()] = time.perf_counter()

    reader_thread = threading.Thread(target=read, daemon=True)
    reader_thread.start()
    listening.wait()
    time.sleep(0.2)
    put: dict[str, float] = {}
    for i in range(samples):
        put[str(i)] = time.perf_counter()
        client.xadd(stream, {"i": str(i)})
        time.sleep(0.005)
    reader_thread.join(5)
    client.delete(stream)
    redis_hop = [got[i] - put[i] for i in put if i in got]

    http = []
    with httpx.Client(timeout=10) as session:
        for _ in range(samples):
            began = time.perf_counter()
            session.get(f"{url}/health")
            http.append(time.perf_counter() - began)
    return {"kafka_produce_to_consume_ms": p50(kafka), "redis_xadd_to_xread_ms": p50(redis_hop),
            "http_get_health_ms": p50(http),
            "sum_ms": round(p50(kafka) + p50(redis_hop) + p50(http), 3)}


def stage_totals(url: str) -> dict[str, tuple[float, float]]:
    """The predictor's per-stage latency histogram: stage -> (sum of seconds, count)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, list[float]] = {}
    text = httpx.get(f"{url}/metrics", timeout=10, headers=AUTH).text
    for family in text_string_to_metric_families(text):
        if family.name != "easel_predictor_stage_seconds":
            continue
        for sample in family.samples:
            entry = totals.setdefault(sample.labels.get("stage", ""), [0.0, 0.0])
            if sample.name.endswith("_sum"):
                entry[0] = sample.value
            elif sample.name.endswith("_count"):
                entry[1] = sample.value
    return {stage: (v[0], v[1]) for stage, v in totals.items()}


def measure_overhead(url: str, x: np.ndarray, compute_s: float, requests: int) -> dict[str, Any]:
    import httpx

    before = stage_totals(url)
    body = {"instances": [x[0].tolist()], "deadline_s": 2.0}
    rtts, inside = [], []
    with httpx.Client(timeout=10, headers=AUTH) as client:
        for i in range(requests + 10):
            began = time.perf_counter()
            answer = client.post(f"{url}/predict", json=body).json()
            rtt = time.perf_counter() - began
            if i >= 10 and answer["totals"]["served"] == 1:
                rtts.append(rtt)
                inside.append(answer["totals"]["elapsed_s"])
            time.sleep(0.02)
    if not rtts:
        return {"requests": 0, "note": f"none of {requests} requests was served by its deadline"}
    over = np.array(rtts) - compute_s
    after = stage_totals(url)
    stages = {stage: round((total - before.get(stage, (0.0, 0.0))[0]) / max(count - before.get(stage, (0.0, 0.0))[1], 1)
                           * 1e3, 3) for stage, (total, count) in after.items()}
    in_worker = stages.get("compute", compute_s * 1e3) / 1e3
    return {"requests": len(rtts), "model_compute_ms": compute_s * 1e3, "stage_mean_ms": stages,
            # the same, minus the compute as it ran inside the worker (its mean), not solo and back-to-back
            "overhead_vs_in_worker_compute_p50_ms": float(np.quantile(np.array(rtts) - in_worker, 0.5) * 1e3),
            "overhead_p50_ms": float(np.quantile(over, 0.5) * 1e3), "overhead_p99_ms": float(np.quantile(over, 0.99) * 1e3),
            "rtt_p50_ms": float(np.quantile(rtts, 0.5) * 1e3),
            "predictor_elapsed_p50_ms": float(np.quantile(inside, 0.5) * 1e3)}


async def closed_loop(url: str, body: bytes, concurrency: int, seconds: float) -> tuple[int, float]:
    import httpx
    import msgpack

    served = 0
    async with httpx.AsyncClient(timeout=120, headers=AUTH) as client:
        end = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal served
            while time.perf_counter() < end:
                response = await client.post(f"{url}/predict", content=body, headers=MSGPACK)
                served += msgpack.unpackb(response.content, raw=False)["totals"]["served"]

        began = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return served, time.perf_counter() - began


RAW_LOOP = """
import importlib.util, sys, time
import numpy as np, torch
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("bench_sliced_mlp", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from inference_worker.model import QueryBatch
template = module.BenchSlicedMLP(lr=0.05)
template.load_parameters(open(sys.argv[2], "rb").read())
batch = np.zeros((int(sys.argv[3]), 1, 8, 8), np.float32).view(QueryBatch)
for _ in range(3):
    template.predict(batch, 1.0)
start_at = float(sys.argv[4])
while time.time() < start_at:
    time.sleep(0.001)
end, count = start_at + float(sys.argv[5]), 0
while time.time() < end:
    template.predict(batch, 1.0)
    count += 1
print(count * len(batch) / (time.time() - start_at))
"""


def raw_parallel_throughput(template_file: Path, params_file: Path, processes: int, seconds: float) -> float:
    """Instances/s of ``processes`` bare model processes (one thread each, full width, S_mb batches) running
    at once: what the machine can compute with no serving pipeline around the model."""
    import subprocess

    start_at = time.time() + 8.0  # every process loaded and warm before the clock starts
    children = [subprocess.Popen([sys.executable, "-c", RAW_LOOP, str(template_file), str(params_file), str(BATCH),
                                  str(start_at), str(seconds)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
                for _ in range(processes)]
    return sum(float(child.communicate(timeout=120)[0].strip().splitlines()[-1]) for child in children)


def measure_saturation(services: Services, x: np.ndarray, raw_full_s: float, seconds: float,
                       raw_two_processes: float) -> dict[str, Any]:
    services.start_workers("fixed:1")
    body = encode_task(x, 1024, 30.0)
    asyncio.run(closed_loop(services.url, body, 2, 2.0))  # warm-up
    served, took = asyncio.run(closed_loop(services.url, body, 3, seconds))
    raw = BATCH / raw_full_s
    throughput = served / took
    return {"task_size": 1024, "concurrency": 3, "seconds": took, "throughput_per_s": throughput,
            "raw_model_per_s_one_process": raw, "raw_model_per_s_two_workers": WORKERS * raw,
            "fraction_of_one_raw_model": throughput / raw, "fraction_of_two_raw_models": throughput / (WORKERS * raw),
            # two bare model processes side by side share the memory bus: the machine's real raw capacity
            "raw_model_per_s_two_processes_measured": raw_two_processes,
            "fraction_of_two_processes_measured": throughput / raw_two_processes}


# -- report ----------------------------------------------------------------------------------------------
def table(sweep: dict[str, Any]) -> list[str]:
    lines = []
    header = (f"{'N':>6} {'N/D /s':>8} " + " ".join(f"{p:>16}" for p in POLICIES)
              + f" {'oracle':>7} {'in-situ':>7} {'ours/or':>7}")
    lines.append("(a) effective accuracy (expected from the profile; each cell: eff.acc / p99 latency ms / throughput /s)")
    lines.append(header)
    for i, n in enumerate(sweep["sizes"]):
        cells = []
        for policy in POLICIES:
            row = sweep["policies"][policy][i]
            p99 = f"{row['latency_p99'] * 1e3:.0f}" if row["latency_p99"] is not None else "-"
            cells.append(f"{row['effective_accuracy']:.3f}/{p99}/{row['throughput']:.0f}".rjust(16))
        oracle = max(sweep["simulator"][i].values())
        in_situ = max(sweep["simulator_in_situ_times"][i].values())
        ours = sweep["policies"]["scheduler"][i]["effective_accuracy"]
        lines.append(f"{n:>6} {n / sweep['deadline_s']:>8.0f} " + " ".join(cells)
                     + f" {oracle:>7.3f} {in_situ:>7.3f} {ours / oracle:>7.1%}")
    return lines


def plot(sweep: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = [n / sweep["deadline_s"] for n in sweep["sizes"]]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for policy in POLICIES:
        rows = sweep["policies"][policy]
        style = {"linewidth": 2.5} if policy in OURS else {"linewidth": 1.0}
        axes[0].plot(loads, [r["effective_accuracy"] for r in rows], marker="o", label=policy, **style)
        axes[1].plot(loads, [r["throughput"] for r in rows], marker="o", label=policy, **style)
        axes[2].plot(loads, [(r["latency_p99"] or math.nan) * 1e3 for r in rows], marker="o", label=policy, **style)
    axes[0].plot(loads, [max(s.values()) for s in sweep["simulator"]], linestyle="--", color="grey",
                 label="simulator oracle (raw t_i)")
    axes[0].plot(loads, [max(s.values()) for s in sweep["simulator_in_situ_times"]], linestyle=":", color="black",
                 label="simulator oracle (in-situ t_i)")
    for rate, cap in sweep["capacity_per_s"].items():
        for ax in axes:
            ax.axvline(cap, color="grey", linewidth=0.6, linestyle=":")
        axes[0].text(cap, 0.02, f"C({rate})", rotation=90, fontsize=7, color="grey")
    axes[0].set(xlabel="workload N/D (instances/s)", ylabel="effective accuracy", ylim=(0, 1))
    axes[1].set(xlabel="workload N/D (instances/s)", ylabel="served by deadline (instances/s)")
    axes[2].set(xlabel="workload N/D (instances/s)", ylabel="p99 latency of served (ms)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Easel serving on the real pipeline (2 workers, CPU), deadline D = {sweep['deadline_s']} s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer points and tasks")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only (b), printed and not written to the results file (for tuning the serving path)")
    parser.add_argument("--deadline", type=float, default=0.5)
    args = parser.parse_args()
    began = time.perf_counter()
    loads = [0.5, 1.0, 1.5, 2.5, 4.0] if args.quick else [0.5, 1.0, 1.5, 2.2, 3.2, 4.5]
    n_tasks, warmup = (6, 1) if args.quick else (14, 4)
    log("setting up: local stack, training the model in-process")
    stack, data_dir = start_stack()
    services = None
    try:
        from easel.db.session import make_engine, make_sessionmaker

        settings = stack.settings
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        setup = train_and_deploy(settings, sessions, data_dir)
        raw = raw_timings(setup["template"])
        times = raw["batch_time_s"]
        log(f"  raw model, one thread, S_mb={BATCH}: " + ", ".join(f"r={r:g}: {t * 1e3:.2f} ms" for r, t in times.items()))
        services = Services(settings, sessions, setup["job_id"])
        services.start_predictor()

        # (b) first: Tansu's memory storage keeps every message, and after the sweep's million requests its
        # fetches are measurably slower; the request path is measured on a broker in its normal state.
        log("(b) overhead and saturation")
        services.start_workers("scheduler")
        overhead = measure_overhead(services.url, setup["x"], raw["one_instance_s"], 60 if args.quick else 150)
        log(f"  1-instance overhead p50 {overhead['overhead_p50_ms']:.2f} ms, p99 {overhead['overhead_p99_ms']:.2f} ms; "
            f"rtt p50 {overhead['rtt_p50_ms']:.2f} ms; stage means (ms) {overhead['stage_mean_ms']}")
        floors = measure_floors(settings, services.url)
        log(f"  bare hops, p50 (ms): {floors}")
        fast = dict(EASEL_SERVING_FETCH_WAIT_MS="1")
        services.start_workers("scheduler", env=fast)
        overhead_fast = measure_overhead(services.url, setup["x"], raw["one_instance_s"], 60 if args.quick else 150)
        log(f"  with 1 ms fetch wait: {overhead_fast}")
        services.stop_workers()  # the bare-model measurement gets the machine to itself
        raw_two = raw_parallel_throughput(data_dir / "bench_sliced_mlp.py",
                                          settings.blob_dir / "params" / "bench.safetensors", WORKERS, 6.0)
        log(f"  raw model, {WORKERS} bare processes at once: {raw_two:.0f}/s")
        saturation = measure_saturation(services, setup["x"], times[1.0], 6.0 if args.quick else 10.0, raw_two)
        log(f"  saturated {saturation['throughput_per_s']:.0f}/s = {saturation['fraction_of_one_raw_model']:.0%} of one raw "
            f"model ({saturation['raw_model_per_s_one_process']:.0f}/s), {saturation['fraction_of_two_raw_models']:.0%} of two; "
            f"{saturation['fraction_of_two_processes_measured']:.0%} of {WORKERS} bare processes run at once")

        if not args.overhead_only:
            log(f"(a) sweep: D = {args.deadline}s, {n_tasks} tasks per point ({warmup} warm-up)")
            sweep = run_sweep(services, setup, times, args.deadline, loads, n_tasks, warmup)
    finally:
        if services is not None:
            services.stop()
        stack.down()
        shutil.rmtree(data_dir, ignore_errors=True)
    if args.overhead_only:
        return 0

    ours_vs = []
    for i in range(len(sweep["sizes"])):
        best_baseline = max(sweep["policies"][p][i]["effective_accuracy"] for p in POLICIES if p not in OURS)
        oracle = max(sweep["simulator"][i].values())
        oracle_in_situ = max(sweep["simulator_in_situ_times"][i].values())
        row: dict[str, Any] = {"n": sweep["sizes"][i], "best_baseline": best_baseline, "oracle": oracle,
                               "oracle_in_situ": oracle_in_situ}
        for name in OURS:
            ours = sweep["policies"][name][i]["effective_accuracy"]
            row[name] = {"effective_accuracy": ours, "ge_every_baseline": ours >= best_baseline - 1e-9,
                         "over_oracle": ours / oracle, "over_oracle_in_situ": ours / oracle_in_situ}
        ours_vs.append(row)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "model": {"template": "sliced MLP 4096x3 (built-in network, uploaded template)", "batch_size": BATCH,
                  "trained_s": setup["trained_s"], "rates": setup["profile"]["rates"],
                  "accuracy": setup["profile"]["accuracy"],
                  "raw_batch_time_s": {f"{r:g}": t for r, t in times.items()}},
        "a_sweep": sweep, "a_summary": ours_vs,
        "b_overhead": {"default_fetch_wait": overhead, "fetch_wait_1ms": overhead_fast, "bare_hops": floors,
                       "saturation": saturation},
        "targets": {
            **{f"{name}_ge_every_baseline_everywhere": all(v[name]["ge_every_baseline"] for v in ours_vs)
               for name in OURS},
            **{f"{name}_ge_98pct_oracle_everywhere": all(v[name]["over_oracle"] >= 0.98 for v in ours_vs)
               for name in OURS},
            "overhead_p50_le_3ms": overhead["overhead_p50_ms"] <= 3.0,
            "saturation_ge_90pct_raw": saturation["fraction_of_two_processes_measured"] >= 0.9,
        },
        "seconds": time.perf_counter() - began,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    plot(sweep, FIGURE)
    log("")
    for line in table(sweep):
        log(line)
    log(f"(b) overhead p50/p99: {overhead['overhead_p50_ms']:.2f}/{overhead['overhead_p99_ms']:.2f} ms (default fetch wait; "
        f"bare hops sum to {floors['sum_ms']:.2f} ms); saturated {saturation['throughput_per_s']:.0f}/s = "
        f"{saturation['fraction_of_two_processes_measured']:.0%} of {WORKERS} bare model processes run at once, "
        f"{saturation['fraction_of_one_raw_model']:.0%} of one")
    log(f"targets: {result['targets']}")
    log(f"wrote {RESULTS.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)} in {result['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
