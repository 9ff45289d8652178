"""Serving benchmarks on the real pipeline → ``benchmarks/results/serving.json`` and ``serving.png``.

Everything runs for real on this machine. On a GPU (``EASEL_DEVICE=cuda``, or torch sees one) the workers and the
bare processes run the model there and every result file gets a ``-cuda`` suffix (``serving-cuda.json``), beside
the CPU ones; no GPU was lent to the sessions that wrote this, so there is no ``serving-cuda.json`` yet. A private local stack (PostgreSQL, Redis, the Kafka-protocol broker), one predictor
and two inference workers started by the local launcher, requests over HTTP from this process (the load
generator, its own process). The model is a sliced MLP (the built-in template's network, 4096 units x 3
hidden layers, uploaded as a template) trained here for two epochs on scikit-learn's digits; its four slice
rates differ ~15x in time. Requests carry the instances as one msgpack tensor (the fast form); the wire to
the workers is one Kafka message per mini-batch (issue #15).

Targets (issue #15); each point is repeated 3x (three scoring windows) and reported as mean ± standard error:
(a) saturated throughput at *each* width (closed loop, generous deadlines, workers fixed at that width) >= 85 %
    of two bare model processes at that width run side by side; beside it the CPU µs per instance spent
    outside the model (predictor, broker, Redis, workers less their model time; the load generator apart).
(b) the Fig. 7(b)/8 sweep (one task of N every D seconds, deadline D) extends to N/D >= 1.2x the narrowest
    width's capacity (two bare processes); Easel's scheduler >= every baseline at every point (mean >= best
    baseline's mean - 1 SE) and >= 97 % of the simulator's oracle on the batch times measured in the pipeline.
(c) 1-instance request overhead (each request's round trip less the compute its worker recorded for it) p50 <=
    Ray Serve's no-op HTTP round trip p50 measured in the same run: Ray Serve runs beside the pipeline and the two
    are measured in alternating repeats. Ray is a benchmark-only extra, never a dependency: it runs from its own
    venv, ``benchmarks/.ray-venv`` (gitignored), made on demand with ``ray[serve]`` (or ``--ray-python PATH``;
    ``none`` skips it and records the target as not measured). ``--c-variants`` measures several
    configurations in the same run (the requests hop's Kafka client: the predictor's and the workers'), each beside
    Ray Serve.

The machine may be shared: the load average is recorded at each phase, and every number is wall-clock bound.
Run: ``.venv/bin/python benchmarks/serving.py [--quick] [--ray-python PATH] [--sections abc]``; (c) alone, with
each client in two blocks (~6 min on a quiet machine with a cached model, + a few minutes the first time for the Ray venv):
``benchmarks/serving.py --sections c --model-cache /tmp/easel-bench-model --c-variants
kafka-python,confluent-kafka,kafka-python,confluent-kafka`` (each client in two blocks, pooled).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, where benchmarks/slicing.py would shadow the
# slicing package: put the project root first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))



def serving_device() -> str:
    """Where the workers' and the bare processes' template runs: ``EASEL_DEVICE``, else CUDA when torch sees a GPU
    (the built-in template's own rule)."""
    choice = os.environ.get("EASEL_DEVICE", "auto").strip().lower()
    if choice in ("", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if choice.startswith("cuda") else "cpu"


DEVICE = serving_device()


def on_device(path: Path) -> Path:
    """A GPU run writes beside the CPU results, never over them (``serving.json`` → ``serving-cuda.json``)."""
    return path if DEVICE == "cpu" else path.with_name(f"{path.stem}-{DEVICE}{path.suffix}")


RESULTS = on_device(ROOT / "benchmarks" / "results" / "serving.json")
FIGURE = on_device(ROOT / "benchmarks" / "results" / "serving.png")
BATCH_SIZES_RESULTS = on_device(ROOT / "benchmarks" / "results" / "serving-batch-sizes.json")
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


def use_batch_size(size: int) -> None:
    """S_mb for everything a run measures: the bare model processes, the profile and the serving side (the
    predictor and the workers read ``EASEL_SERVING_BATCH_SIZE``), so the pipeline is compared with bare processes
    that run mini-batches of the same size."""
    global BATCH
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    BATCH = size
    os.environ["EASEL_SERVING_BATCH_SIZE"] = str(size)


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


def train_and_deploy(settings: Any, sessions: Any, folder: Path, cache: Path | None = None) -> dict[str, Any]:
    """Train the template in-process (or take the one a run with the same ``cache`` trained: the data split
    and knobs are fixed), record it as a completed trial, create the inference job."""
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
    if cache is not None and (cache / "params.safetensors").exists():  # a model trained by an earlier run
        template.load_parameters((cache / "params.safetensors").read_bytes())
        saved = json.loads((cache / "trained.json").read_text())
        trained_s, profile = saved["trained_s"], saved["profile"]
        log(f"  the model trained by an earlier run ({cache}; training took {trained_s:.0f} s there)")
    else:
        began = time.perf_counter()
        template.train(str(train_path))
        trained_s = time.perf_counter() - began
        profile = template.profile(str(val_path), batch_size=BATCH, repeats=5)
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            (cache / "params.safetensors").write_bytes(template.dump_parameters())
            (cache / "trained.json").write_text(json.dumps({"trained_s": trained_s, "profile": profile}))
    torch.set_num_threads(1)
    log(f"  trained ({trained_s:.1f}s); accuracy per rate {dict(zip(profile['rates'], [round(a, 4) for a in profile['accuracy']], strict=True))}")
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

    from easel.batch_buffers import QueryBatch

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
        self.predictor_env: dict[str, str] = {}  # what the predictor is started with unless told otherwise
        self.workers: list[str] = []
        self.url = ""

    def _spec(self, name: str, kind: Any, module: str, *args: str, env: dict[str, str] | None = None) -> Any:
        from easel.launcher import ServiceSpec

        return ServiceSpec(name=name, kind=kind, inference_job_id=self.job_id, env={"PYTHONPATH": str(ROOT), **(env or {})},
                           argv=[sys.executable, "-m", module, "--inference-job-id", self.job_id, *args])

    def start_predictor(self, env: dict[str, str] | None = None) -> str:
        """Starts the predictor (in place of the running one, if any) with ``env`` (default: ``predictor_env``) over
        the launcher's."""
        from easel.db.enums import ServiceKind
        from easel.db.models import InferenceJob
        from easel.db.session import session_scope
        from easel.predictor_keys import issue_key
        from easel.stack.process import free_port

        with session_scope(self.sessions) as session:  # the predictor answers only its job's API keys
            AUTH["Authorization"] = f"Bearer {issue_key(session, self.job_id, 'benchmark')[1]}"
        if self.predictor:
            self.launcher.stop(self.predictor, timeout_s=15)
        port = free_port()
        self.predictor = self.launcher.start(self._spec("predictor", ServiceKind.PREDICTOR, "predictor",
                                                        "--port", str(port),
                                                        env=self.predictor_env if env is None else env)).id
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
                                    "easel_worker_profile_rebuilds_total", "easel_worker_minibatches_total",
                                    "easel_worker_planned_batch_seconds_total", "easel_worker_share_seconds_total",
                                    "easel_worker_tasks_total", "easel_worker_share_wait_seconds_total",
                                    "easel_worker_predict_seconds_total", "easel_worker_answer_seconds_total",
                                    "easel_worker_predict_thread_cpu_seconds_total",
                                    "easel_worker_share_time_left_at_arrival_seconds_sum",
                                    "easel_worker_share_time_left_at_arrival_seconds_count")):
                    totals[name] = totals.get(name, 0.0) + float(value)
        means = {}
        for name, value in totals.items():
            if name.startswith("easel_worker_batch_seconds_sum") and value:
                count = totals.get(name.replace("_sum", "_count"), 0.0)
                if count:
                    means[name.split('rate="')[1].rstrip('"}')] = value / count
        return {"counters": totals, "mean_batch_seconds": means}

    def minibatches(self) -> dict[str, float]:
        """Mini-batches the workers have run so far, by slice rate."""
        counters = self.scrape()["counters"]
        return {name.split('rate="')[1].rstrip('"}'): value for name, value in counters.items()
                if name.startswith("easel_worker_minibatches_total")}

    def pids(self, stack: Any) -> dict[str, int]:
        """The serving side's processes: predictor, workers, broker and Redis."""
        from easel.db.models import Service
        from easel.db.session import session_scope

        pids = {"broker": stack.kafka.pid(), "redis": stack.redis.pid()}
        with session_scope(self.sessions) as session:
            for name, service_id in [("predictor", self.predictor), *((f"worker-{i}", w) for i, w in
                                                                      enumerate(self.workers))]:
                pids[name] = session.get_one(Service, service_id).pid
        return {name: pid for name, pid in pids.items() if pid}

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


def mean_se(values: list[float]) -> dict[str, float]:
    """Mean and standard error of the repeats of one point."""
    clean = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {"mean": math.nan, "se": math.nan, "n": 0}
    se = statistics.stdev(clean) / math.sqrt(len(clean)) if len(clean) > 1 else 0.0
    return {"mean": statistics.fmean(clean), "se": se, "n": len(clean)}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def tensor_body(x: np.ndarray, n: int, deadline: float, answers: str = "instances") -> bytes:
    """A task of ``n`` instances as one msgpack tensor (the predictor's fast request form); ``answers``: the
    answer's form (``columns``: arrays, the fast form; see predictor/response.py)."""
    import msgpack

    rows = np.ascontiguousarray(np.concatenate([x] * (-(-n // len(x))))[:n], dtype="<f4")
    return msgpack.packb({"instances": {"dtype": "<f4", "shape": list(rows.shape), "data": rows.tobytes()},
                          "deadline_s": deadline, "answers": answers}, use_bin_type=True)


def list_body(x: np.ndarray, n: int, deadline: float) -> bytes:
    """The same task as nested lists of numbers (what a client without numpy sends)."""
    import msgpack

    rows = np.concatenate([x] * (-(-n // len(x))))[:n]
    return msgpack.packb({"instances": rows.tolist(), "deadline_s": deadline}, use_bin_type=True)


class CpuMeter:
    """CPU seconds used by the serving side (predictor, workers, broker, Redis) between two reads."""

    def __init__(self, pids: dict[str, int], split: tuple[str, ...] = ()) -> None:
        """``split``: the names whose descendants are read apart, as ``<name>:children`` (a worker's sandboxed
        model beside the worker itself)."""
        import psutil

        self.split = split
        self.processes = {}
        for name, pid in pids.items():
            try:
                self.processes[name] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue

    def read(self) -> dict[str, float]:
        """Per process, its CPU seconds and its live descendants' (a worker's model runs in its sandbox child,
        which ``children_user`` would count only once it had exited)."""
        import psutil

        out = {}
        for name, process in self.processes.items():
            try:
                family = [process, *process.children(recursive=True)]
            except psutil.NoSuchProcess:
                out[name] = math.nan
                continue
            total = children = 0.0
            for member in family:
                try:
                    times = member.cpu_times()
                except psutil.NoSuchProcess:  # a descendant that just ended: its time is in children_*
                    continue
                if member is process:
                    total += times.user + times.system + times.children_user + times.children_system
                else:
                    children += times.user + times.system
            if name in self.split:
                out[name], out[f"{name}:children"] = total, children
            else:
                out[name] = total + children
        return out


def children_activity(pids: list[int]) -> dict[str, float]:
    """Context switches (voluntary: waiting on its socket; involuntary: preempted) and minor page faults of the
    given processes' descendants (the workers' sandboxed models), summed: beside their CPU per mini-batch they say
    whether a model's compute is interrupted or touches fresh memory."""
    import psutil

    out = {"ctx_voluntary": 0.0, "ctx_involuntary": 0.0, "minor_faults": 0.0}
    for pid in pids:
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                switches = child.num_ctx_switches()
                fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (psutil.NoSuchProcess, OSError):
                continue
            out["ctx_voluntary"] += switches.voluntary
            out["ctx_involuntary"] += switches.involuntary
            out["minor_faults"] += float(fields[7])  # minflt: the 10th field of stat, the 8th after the name
    return out


# -- (a) saturation at each width ------------------------------------------------------------------------
REFUSALS: Counter[str] = Counter()  # 429s the closed loops met, by the start of their detail (recorded in (a))


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
                if response.status_code == 429:  # refused at once (admission, rate limit): back off as told
                    REFUSALS[response.text[:120]] += 1
                    await asyncio.sleep(min(float(response.headers.get("Retry-After", "0.05")), 0.2))
                    continue
                response.raise_for_status()
                served += msgpack.unpackb(response.content, raw=False)["totals"]["served"]

        began = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return served, time.perf_counter() - began


RAW_LOOP = """
import importlib.util, json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location("bench_sliced_mlp", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from easel.batch_buffers import QueryBatch
template = module.BenchSlicedMLP(lr=0.05)
template.load_parameters(open(sys.argv[2], "rb").read())
batch = np.zeros((int(sys.argv[3]), 1, 8, 8), np.float32).view(QueryBatch)
seconds, rates, rounds = float(sys.argv[4]), [float(r) for r in sys.argv[5].split(",")], int(sys.argv[6])
for rate in rates:
    template.predict(batch, rate)
print("READY", flush=True)
sys.stdin.readline()  # GO: every process is loaded and warm
out = {f"{r:g}": [] for r in rates}
cpu = {f"{r:g}": [] for r in rates}
for _ in range(rounds):
    for rate in rates:
        begin, began_cpu, count = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - begin < seconds:
            template.predict(batch, rate)
            count += 1
        out[f"{rate:g}"].append(count * len(batch) / (time.perf_counter() - begin))
        cpu[f"{rate:g}"].append((time.process_time() - began_cpu) / count)
print(json.dumps({"throughput": out, "cpu_s_per_batch": cpu}), flush=True)
"""


def bare_throughput(template_file: Path, params_file: Path, rates: list[float], processes: int, seconds: float,
                    rounds: int) -> dict[str, dict[str, float]]:
    """Instances/s of ``processes`` bare model processes (one thread each, S_mb batches) running at once, at
    each width in interleaved rounds (so a burst of load on the machine hits every width alike): what the
    machine computes with no serving pipeline around the model. Per width: mean ± SE over the rounds (each
    round's value: the processes' rates summed). The processes start together once all are warm."""
    import subprocess

    children = [subprocess.Popen([sys.executable, "-c", RAW_LOOP, str(template_file), str(params_file), str(BATCH),
                                  str(seconds), ",".join(f"{r:g}" for r in rates), str(rounds)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
                for _ in range(processes)]
    for child in children:
        while child.stdout.readline().strip() != "READY":
            if child.poll() is not None:
                raise RuntimeError("a bare model process failed to start")
    for child in children:
        child.stdin.write("GO\n")
        child.stdin.flush()
    outputs = [json.loads(child.communicate(timeout=120 + rounds * len(rates) * seconds * 4)[0].strip().splitlines()[-1])
               for child in children]
    return {rate: {**mean_se([sum(o["throughput"][rate][k] for o in outputs) for k in range(rounds)]),
                   # CPU seconds per mini-batch (hardly moved by other load, unlike wall time): the model's cost
                   "cpu_s_per_batch": statistics.median(v for o in outputs for v in o["cpu_s_per_batch"][rate])}
            for rate in outputs[0]["throughput"]}


def measure_saturation(services: Services, stack: Any, x: np.ndarray, rate: float, bare_all: dict[str, Any],
                       seconds: float, windows: int, lists_too: bool, answers: str = "columns") -> dict[str, Any]:
    """The pipeline closed-loop at one width: throughput per window, and the serving side's CPU per instance
    outside the model (the model's share: mini-batches run x the bare processes' CPU seconds per mini-batch).

    ``projected_fraction_of_bare`` = model CPU / all serving CPU: the throughput fraction a machine with no
    other load would see (the pipeline is CPU-bound on the same cores), which a shared machine cannot measure
    directly — there the throughput and its bare reference are taken at different moments of other load.

    ``answers``: the form the load generator asks its answers in (``columns``, the fast form a high-throughput
    client uses; ``instances``: an entry per instance, which costs the predictor and the client CPU per instance)."""
    bare = bare_all[f"{rate:g}"]
    REFUSALS.clear()
    services.start_workers(f"fixed:{rate:g}")
    n = max(1024, int(bare["mean"] * 0.12) // BATCH * BATCH)  # ~0.1 s of the two workers' compute per task
    body = tensor_body(x, n, 30.0, answers)
    asyncio.run(closed_loop(services.url, body, 3, 1.5))  # warm-up
    meter = CpuMeter(services.pids(stack))
    rows = []
    for _ in range(windows):
        cpu0, mb0 = meter.read(), services.minibatches()
        served, took = asyncio.run(closed_loop(services.url, body, 3, seconds))
        cpu1, mb1 = meter.read(), services.minibatches()
        model_s = sum((mb1.get(r, 0.0) - mb0.get(r, 0.0)) * bare_all[r]["cpu_s_per_batch"] for r in mb1)
        cpu = {name: cpu1[name] - cpu0[name] for name in cpu1}
        outside = sum(cpu.values()) - model_s
        # per component, µs per instance outside the model (the workers' line: their processes and sandbox
        # children less the model's CPU)
        parts = {name: value for name, value in cpu.items() if not name.startswith("worker")}
        parts["workers_less_model"] = sum(v for name, v in cpu.items() if name.startswith("worker")) - model_s
        rows.append({"throughput_per_s": served / took, "served": served, "seconds": took,
                     "cpu_us_per_instance_by_component": {k: round(v / served * 1e6, 2) if served else math.nan
                                                          for k, v in parts.items()},
                     "cpu_s": {k: round(v, 3) for k, v in cpu.items()}, "model_cpu_s_estimate": round(model_s, 3),
                     "cpu_us_per_instance_outside_model": outside / served * 1e6 if served else math.nan,
                     "model_share_of_serving_cpu": model_s / sum(cpu.values()) if sum(cpu.values()) > 0 else math.nan})
    result: dict[str, Any] = {
        "rate": rate, "task_size": n, "concurrency": 3, "answers": answers, "windows": rows,
        "throughput_per_s": mean_se([r["throughput_per_s"] for r in rows]),
        "bare_two_processes_per_s": bare,
        "cpu_us_per_instance_outside_model": mean_se([r["cpu_us_per_instance_outside_model"] for r in rows]),
        "cpu_us_per_instance_by_component": {k: mean_se([r["cpu_us_per_instance_by_component"][k] for r in rows])
                                             for k in rows[0]["cpu_us_per_instance_by_component"]},
        "model_cpu_us_per_instance": bare["cpu_s_per_batch"] / BATCH * 1e6,
        "projected_fraction_of_bare": mean_se([r["model_share_of_serving_cpu"] for r in rows]),
        "load_average": load_average(),
        "refused_429": dict(REFUSALS),  # the loop backed off and retried; a refused task is not counted served
    }
    result["fraction_of_bare"] = result["throughput_per_s"]["mean"] / bare["mean"]
    if lists_too:  # the same with nested-list bodies: what the tensor request form saves
        served, took = asyncio.run(closed_loop(services.url, list_body(x, n, 30.0), 3, seconds))
        result["list_body_throughput_per_s"] = served / took
    return result


# -- (b) the sweep --------------------------------------------------------------------------------------------
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


def score_window(answers: list[dict[str, Any]], y: np.ndarray, accuracy: dict[float, float], n: int,
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
        "mix": {k: v / served for k, v in sorted(mix.items(), reverse=True)} if served else {},
    }


def batch_times_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean seconds per mini-batch by rate over the mini-batches run between two scrapes of the workers' counters."""
    out = {}
    for name, total in after.items():
        if name.startswith("easel_worker_batch_seconds_sum"):
            count_name = name.replace("_sum", "_count")
            count = after.get(count_name, 0.0) - before.get(count_name, 0.0)
            if count > 0:
                out[name.split('rate="')[1].rstrip('"}')] = (total - before.get(name, 0.0)) / count
    return out


def simulate_point(times: dict[float, float], accuracy: dict[float, float], n: int, deadline: float,
                   n_tasks: int, warmup: int, budget: float | None = None) -> dict[str, float]:
    """The simulator's effective accuracy of every policy at one point: one task of ``n`` every ``deadline``
    seconds, each due ``budget`` seconds after it reaches a worker (``deadline`` when None; less when the pipeline
    delays a task before any worker sees it)."""
    from easel.serving import split_mini_batches
    from scheduler import LateRule, Profile, SchedulerPolicy, baseline_policies, make_workload, simulate

    rates = tuple(sorted(times, reverse=True))
    profile = Profile(rates, tuple(accuracy[r] for r in rates), tuple(times[r] for r in rates))
    tasks = make_workload("constant", n / deadline, n_tasks, n, deadline if budget is None else budget)
    out = {}
    factories = {"scheduler": lambda: SchedulerPolicy(profile)}
    for policy in baseline_policies(profile):
        factories[policy.name] = (lambda name=policy.name: next(p for p in baseline_policies(profile) if p.name == name))
    for name, factory in factories.items():
        # The workers' dealing rule and their late rule (no mini-batch started after its deadline).
        result = simulate(profile, factory, tasks, n_workers=WORKERS, batch_size=BATCH, warmup=warmup * deadline,
                          deal=split_mini_batches, late_rule=LateRule.START)
        out[name] = result.effective_accuracy
    return out


def rotations(url: str) -> int | None:
    """How many times the predictor has rotated its requests topic so far (its health answer says)."""
    health = _get(f"{url}/health")
    return health.get("requests_topic", {}).get("rotations") if isinstance(health, dict) else None


def _executor_line(costs: dict[str, Any]) -> str:
    """Per mini-batch run: planned / recorded / the executor's wall ms, and how busy the executors were."""
    cells = [costs[k] for k in ("planned_s_per_mini_batch", "recorded_s_per_mini_batch", "wall_s_per_mini_batch")]
    if any(c is None for c in cells) or costs["busy"] is None:
        return ""
    wait = costs.get("wait_s_per_share")
    return ("  ms/mb planned {:.2f} recorded {:.2f} wall {:.2f} busy {:.0%}".format(*(c * 1e3 for c in cells), costs["busy"])
            + (f" wait/share {wait * 1e3:.1f} ms" if wait is not None else "")
            + "".join(f" {label} {costs[k] * 1e3:.2f}" for label, k in (
                ("predict", "predict_s_per_mini_batch"), ("thread-cpu", "predict_thread_cpu_s_per_mini_batch"),
                ("answer", "answer_s_per_mini_batch")) if costs.get(k) is not None))


def _model_cpu_cell(costs: dict[str, Any]) -> str:
    """The sandboxed models' CPU per mini-batch run: beside the executor's wall time per mini-batch it splits the
    model call into compute and waiting for a core."""
    per_mb = costs.get("model_cpu_s_per_mini_batch") if costs else None
    if per_mb is None:
        return ""
    return (f"  model cpu/mb {per_mb * 1e3:.2f} ms" + "".join(
        f" {label} {costs[key]:.2f}" for label, key in (
            ("vol.cs", "model_ctx_voluntary_per_mini_batch"), ("invol.cs", "model_ctx_involuntary_per_mini_batch"),
            ("minflt", "model_minor_faults_per_mini_batch")) if key in costs))


def _add_deltas(total: dict[str, float], before: dict[str, float], after: dict[str, float]) -> None:
    """Add one turn's counter increases to ``total`` (workers restart between turns, so their counters do too)."""
    for name, value in after.items():
        total[name] = total.get(name, 0.0) + value - before.get(name, 0.0)


def run_sweep(services: Services, setup: dict[str, Any], times: dict[float, float], deadline: float,
              sizes: list[int], per_window: int, windows: int, policies: tuple[str, ...] = POLICIES,
              stack: Any = None) -> dict[str, Any]:
    """Each point's windows are taken in turns: in turn k every policy runs every point for one window (a warm-up
    task, then the window), the policies' order reversed on odd turns — so a policy's windows are spread over the
    whole sweep and every policy sees the same machine, instead of the load drifting between one policy's whole
    sweep and the next one's (which decided the comparison past capacity)."""
    from benchmarks.serving_accounting import account, executor_costs, pipeline_costs, stage_mean

    accuracy = dict(zip(setup["profile"]["rates"], setup["profile"]["accuracy"], strict=True))
    bodies = {n: tensor_body(setup["x"], n, deadline) for n in sizes}
    n_tasks = 1 + per_window  # per turn and point: one warm-up task, then the scoring window
    # Per policy and point, summed over the turns: the answers, the workers' counter increases, the to_worker stage.
    turns: dict[str, list[dict[str, Any]]] = {
        p: [{"answers": [], "counters": {}, "to_worker": [0.0, 0.0], "windows": [], "loads": [], "rotations": 0,
             "cpu_s": {}, "model_activity": {}} for _ in sizes] for p in policies}
    whole: dict[str, dict[str, float]] = {p: {} for p in policies}
    for turn in range(windows):
        order = policies if turn % 2 == 0 else tuple(reversed(policies))
        for policy in order:
            began = time.perf_counter()
            services.start_workers(policy)
            # CPU seconds of each process (a worker with its sandbox child) and of this load generator, per window:
            # which part of the machine a policy's run of a point keeps busy.
            pids = services.pids(stack) if stack is not None else {}
            meter = CpuMeter(pids, split=tuple(name for name in pids if name.startswith("worker-"))) if pids else None
            log(f"  turn {turn + 1}/{windows} {policy}: workers ready in {time.perf_counter() - began:.1f}s "
                f"(load {load_average()})")
            for i, n in enumerate(sizes):
                mine = turns[policy][i]
                before, stages_before, rotated = services.scrape()["counters"], stage_totals(services.url), rotations(services.url)
                cpu_before = meter.read() if meter is not None else {}
                cpu_before["load_generator"] = time.process_time()  # this process alone, not the stack it started
                worker_pids = [pid for name, pid in pids.items() if name.startswith("worker-")]
                activity_before = children_activity(worker_pids)
                answers = asyncio.run(send_tasks(services.url, bodies[n], n_tasks, deadline, deadline + 30))
                window = score_window(answers[1:], setup["y"], accuracy, n, deadline)
                time.sleep(deadline)  # let the last task's deadline pass: the point's accounting, then the next point
                cpu_after = {**(meter.read() if meter is not None else {}), "load_generator": time.process_time()}
                for name, count in children_activity(worker_pids).items():
                    mine["model_activity"][name] = mine["model_activity"].get(name, 0.0) + count - activity_before[name]
                for name, used in cpu_after.items():
                    part = ("worker_model" if name.endswith(":children") else "worker") if name.startswith("worker-") \
                        else name
                    mine["cpu_s"][part] = mine["cpu_s"].get(part, 0.0) + used - cpu_before.get(name, used)
                after, stages_after, rotated_after = (services.scrape()["counters"], stage_totals(services.url),
                                                      rotations(services.url))
                _add_deltas(mine["counters"], before, after)
                _add_deltas(whole[policy], before, after)
                s0, c0 = stages_before.get("to_worker", (0.0, 0.0))
                s1, c1 = stages_after.get("to_worker", (0.0, 0.0))
                mine["to_worker"][0] += s1 - s0
                mine["to_worker"][1] += c1 - c0
                mine["answers"] += answers
                mine["windows"].append(window)
                mine["loads"].append(load_average())
                if rotated is not None and rotated_after is not None:
                    mine["rotations"] += rotated_after - rotated
                log(f"    N={n:>6} N/D={n / deadline:>7.0f}/s  eff.acc {window['effective_accuracy']:.3f}  "
                    f"thr {window['throughput']:>6.0f}/s  drop {window['drop_rate']:.2f}  mix {window['mix']}")
    points: dict[str, list[dict[str, Any]]] = {}
    workers: dict[str, dict[str, Any]] = {}
    for policy in policies:
        rows = []
        for i, n in enumerate(sizes):
            mine = turns[policy][i]
            scored, counters = mine["windows"], mine["counters"]
            row: dict[str, Any] = {"n": n, "workload": n / deadline, "windows": scored, "load_average": mine["loads"],
                                   "accounting": account(mine["answers"], {}, counters),
                                   "executor": executor_costs({}, counters, windows * n_tasks * deadline * WORKERS),
                                   "rotations": mine["rotations"],
                                   # CPU seconds per second of the point's windows (a task every D, one more D after)
                                   "cpu_s_per_s": {name: used / (windows * (n_tasks + 1) * deadline)
                                                   for name, used in mine["cpu_s"].items()}}
            run = row["executor"].get("mini_batches_run") if row["executor"] else None
            if run and "worker_model" in mine["cpu_s"]:  # the sandboxed models' own CPU per mini-batch run
                row["executor"]["model_cpu_s_per_mini_batch"] = mine["cpu_s"]["worker_model"] / run
                for name, count in mine["model_activity"].items():
                    row["executor"][f"model_{name}_per_mini_batch"] = count / run
            if policy in OURS:  # the batch times this point ran at, and the pipeline's costs (the oracles', below)
                row["batch_time_s"] = batch_times_between({}, counters)
                row["pipeline"] = pipeline_costs(row["batch_time_s"], times,
                                                 stage_mean({}, {"to_worker": tuple(mine["to_worker"])}, "to_worker"))
            for name in ("effective_accuracy", "effective_accuracy_real", "throughput", "drop_rate", "latency_p99"):
                row[name] = mean_se([w[name] for w in scored])
            rows.append(row)
            a = row["accounting"]
            log(f"  {policy:>16} N={n:>6} eff.acc {row['effective_accuracy']['mean']:.3f}"
                f"±{row['effective_accuracy']['se']:.3f}  sent {a['sent']} expired unrun {a['expired_unrun']} "
                f"never read {a['never_reached_a_worker']} rotations {row['rotations']}" + _executor_line(row["executor"])
                + "  cpu s/s " + " ".join(f"{k} {v:.2f}" for k, v in sorted(row["cpu_s_per_s"].items()))
                + _model_cpu_cell(row["executor"]))
        points[policy] = rows
        workers[policy] = {"counters": whole[policy], "mean_batch_seconds": batch_times_between({}, whole[policy])}
    n_tasks = 1 + per_window * windows  # the oracles simulate a point's tasks back to back, as before
    oracle = [simulate_point(times, accuracy, n, deadline, n_tasks, 1) for n in sizes]
    # The same, with the batch times the scheduler's workers measured while the whole pipeline shared the CPU.
    in_situ = {float(r): t for r, t in workers["scheduler"]["mean_batch_seconds"].items()}
    in_situ_times = {r: in_situ.get(r, t) for r, t in times.items()}
    oracle_in_situ = [simulate_point(in_situ_times, accuracy, n, deadline, n_tasks, 1) for n in sizes]
    # And per point, on the times measured while that point ran: how long a mini-batch takes depends on how busy
    # the two workers keep each other (and the machine) at that load, so the sweep's mean flatters the busy
    # points. A width the scheduler did not run there keeps its sweep mean.
    per_point = [{r: float(row.get("batch_time_s", {}).get(f"{r:g}", in_situ_times[r])) for r in times}
                 for row in points["scheduler"]]
    oracle_per_point = [simulate_point(t, accuracy, n, deadline, n_tasks, 1) for t, n in zip(per_point, sizes, strict=True)]
    # And the pipeline's oracle: the point's times (the workers' recorded wall time per mini-batch, so their
    # overhead beyond the model's compute is in) with each task's budget cut by the pre-worker delay recorded there
    # (the predictor's stamp to the worker's poll): the time no worker can plan with.
    # And a bound on every policy: no plan of a share can start before its first mini-batch reaches a worker, so
    # with the in-situ times (the target's oracle's) and each task's budget the time left then — every instance
    # present at that moment, which flatters it — no policy on this pipeline can beat this oracle (up to noise: the
    # means of the time left and of the batch times stand for every task). Below 97 % of
    # the target's oracle, that target is out of reach at the point whatever the scheduler does.
    lefts = [_time_left_at_arrival([turns[p][i]["counters"] for p in policies]) for i in range(len(sizes))]
    arrival_bound = [simulate_point(in_situ_times, accuracy, n, deadline, n_tasks, 1,
                                    budget=min(deadline, left) if left is not None else deadline)
                     for n, left in zip(sizes, lefts, strict=True)]
    delays = [row["pipeline"]["pre_worker_delay_s"] or 0.0 for row in points["scheduler"]]
    oracle_pipeline = [simulate_point(t, accuracy, n, deadline, n_tasks, 1, budget=deadline - delay)
                       for t, n, delay in zip(per_point, sizes, delays, strict=True)]
    return {"deadline_s": deadline, "tasks_per_window": per_window, "windows": windows, "sizes": sizes,
            "policies": points, "simulator": oracle, "simulator_in_situ_times": oracle_in_situ,
            "simulator_point_times": oracle_per_point, "simulator_pipeline": oracle_pipeline,
            "pre_worker_delay_s": delays, "time_left_at_arrival_s": lefts, "simulator_arrival_bound": arrival_bound,
            "in_situ_batch_time_s": {f"{r:g}": t for r, t in in_situ_times.items()}, "worker_metrics": workers}


def _time_left_at_arrival(counters: list[dict[str, float]]) -> float | None:
    """The mean seconds left until a share's deadline as its first mini-batch reached a worker, over the workers'
    counters of one point (all policies: it is the request path's, not a policy's)."""
    total = sum(c.get("easel_worker_share_time_left_at_arrival_seconds_sum", 0.0) for c in counters)
    count = sum(c.get("easel_worker_share_time_left_at_arrival_seconds_count", 0.0) for c in counters)
    return total / count if count else None


# -- (c) overhead -----------------------------------------------------------------------------------------------
def measure_floors(settings: Any, url: str, samples: int = 100) -> dict[str, float]:
    """The bare cost of each hop the request path makes, with the same clients and servers but no Easel code
    around them (p50, ms): what the 1-instance overhead cannot go below on this machine."""
    import threading

    import httpx

    from easel.kafka_io import ensure_topics
    from easel.redis_client import make_redis

    def p50(values: list[float]) -> float:
        return round(statistics.median(values) * 1e3, 3)

    topic = "easel.bench.floor"
    ensure_topics(settings, [topic], 1)
    kafka_by_wait = {}
    default_wait = settings.serving_fetch_wait_ms  # the default workers' wait
    for wait_ms in sorted({default_wait, 10, 5, 2}, reverse=True):  # and the variants' (-wait10/-wait5/-wait2)
        kafka_by_wait[wait_ms] = kafka_hop(settings, topic, wait_ms, samples)
    kafka = kafka_by_wait[default_wait]

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
            "kafka_produce_to_consume_ms_by_fetch_wait_ms": {w: p50(v) for w, v in kafka_by_wait.items()},
            "http_get_health_ms": p50(http),
            "sum_ms": round(p50(kafka) + p50(redis_hop) + p50(http), 3)}


def kafka_hop(settings: Any, topic: str, fetch_wait_ms: int, samples: int) -> list[float]:
    """Produce -> consume seconds of ``samples`` messages, kafka-python both ends, at random gaps (3-12 ms: a fixed
    period phase-locks with the consumer's fetch cycle, which Tansu ends only at its max wait, and reads as a
    shorter hop than requests see). The matrix of settings is benchmarks/kafka_hop.py's."""
    import random
    import threading

    from kafka import TopicPartition

    from easel.kafka_io import make_consumer, make_producer

    producer = make_producer(settings, value_serializer=None)
    consumer = make_consumer(settings, group_id=None, value_deserializer=None, fetch_max_wait_ms=fetch_wait_ms)
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
    gaps = random.Random(15)
    for i in range(samples):
        sent[i] = time.perf_counter()
        producer.send(topic, value=str(i).encode(), partition=0)
        time.sleep(gaps.uniform(0.003, 0.012))
    time.sleep(0.5)
    done.set()
    thread.join()
    producer.close()
    consumer.close()
    return [received[i] - sent[i] for i in sent if i in received]


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


def timed_posts(url: str, body: dict[str, Any], requests: int, headers: dict[str, str] | None = None,
                warm_up: int = 10) -> list[tuple[float, Any, float]]:
    """Sequential POSTs, each timed by the client (after ``warm_up`` unmeasured): ``(seconds, JSON answer, UNIX
    time sent)`` of each that was answered 200."""
    import httpx

    out = []
    with httpx.Client(timeout=10, headers=headers or {}) as client:
        for i in range(requests + warm_up):
            sent_at = time.time()
            began = time.perf_counter()
            response = client.post(url, json=body)
            rtt = time.perf_counter() - began
            if i >= warm_up and response.status_code == 200:
                out.append((rtt, response.json(), sent_at))
            time.sleep(0.02)
    return out


def easel_overheads(answers: list[tuple[float, Any, float]]) -> dict[str, list[float]]:
    """Per served 1-instance request: its round trip, the compute the worker recorded for it (the share report's
    ``compute_s``) and the difference — the overhead, request by request (not less a mean compute); and the
    transport on either side of the predictor, read against the answer's own stamps: ``http_in`` (the client's send
    to the predictor's first look at the request, ``received_at``) and ``http_out`` (``answered_at``, the answer
    built, to the client holding it: encoding, the server's write, the client's read)."""
    rtts, computes, http_in, http_out = [], [], [], []
    for rtt, answer, sent_at in answers:
        totals = answer["totals"]
        if totals["served"] != 1:
            continue
        rtts.append(rtt)
        computes.append(sum(float(w.get("compute_s", 0.0)) for w in totals["workers"].values()))
        if "received_at" in totals and "answered_at" in totals:
            http_in.append(totals["received_at"] - sent_at)
            http_out.append(sent_at + rtt - totals["answered_at"])
    return {"rtt": rtts, "compute": computes, "overhead": [r - c for r, c in zip(rtts, computes, strict=True)],
            "http_in": http_in, "http_out": http_out}


def p50_ms(values: list[float]) -> float:
    return float(np.quantile(values, 0.5)) * 1e3


RAY_NOOP = """
import sys
import time

began = time.time()
import ray
from ray import serve

# address="local": a new instance of our own. Without it ray.init() may join a Ray already running on the machine
# (RAY_ADDRESS, else the latest cluster started), where num_cpus is refused: a possible cause of an earlier run's
# "did not start (exit 1)", which was not reproduced (the child's log is kept now, its tail is the reason given).
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class NoOp:
    async def __call__(self, request):
        return {"ok": True}


serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
serve.run(NoOp.bind(), route_prefix="/", name="noop")
print(f"READY {time.time() - began:.1f}", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
serve.shutdown()
ray.shutdown()
"""
# Ray is a benchmark-only extra (issue #15 (c)): never a dependency of Easel. Without ``--ray-python`` the benchmark
# makes this virtualenv (gitignored) once and installs Ray Serve into it.
RAY_VENV = ROOT / "benchmarks" / ".ray-venv"
RAY_REQUIREMENT = "ray[serve]>=2.40"
RAY_START_TIMEOUT_S = 300.0
RAY_START_ATTEMPTS = 3


def ray_python(choice: str) -> tuple[str | None, str]:
    """The Python that runs Ray Serve: ``choice`` if it is a path, none for ``none``, and for ``auto`` the
    benchmark's own venv (made on demand). Returns (path or None, what happened)."""
    import subprocess

    if choice == "none":
        return None, "skipped (--ray-python none)"
    if choice != "auto":
        return choice, f"given: {choice}"
    python = RAY_VENV / "bin" / "python"
    if python.exists():
        return str(python), f"the benchmark's venv {RAY_VENV.relative_to(ROOT)}"
    log(f"  making {RAY_VENV.relative_to(ROOT)} with {RAY_REQUIREMENT} (once; a few minutes)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(RAY_VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", RAY_REQUIREMENT, "httpx"], check=True,
                       capture_output=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        shutil.rmtree(RAY_VENV, ignore_errors=True)
        tail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[-500:]
        return None, f"could not install {RAY_REQUIREMENT} into {RAY_VENV.relative_to(ROOT)}: {error} {tail}"
    return str(python), f"made {RAY_VENV.relative_to(ROOT)}"


class RayServeNoop:
    """Ray Serve with one no-op deployment, in a child process on its own Python; its output goes to a log whose
    tail is the reason given when it does not start."""

    def __init__(self, python: str, log_path: Path) -> None:
        import subprocess

        from easel.stack.process import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self._log = log_path.open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EASEL_", "VIRTUAL_ENV"))}
        self.began = time.perf_counter()
        self.child = subprocess.Popen([python, "-c", RAY_NOOP, str(self.port)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
                                      start_new_session=True)  # Ray's own processes go down with the group

    def wait_ready(self, timeout_s: float = RAY_START_TIMEOUT_S) -> float:
        """Seconds it took to serve; raises RuntimeError (with the log's tail) if it exits or takes too long."""
        import selectors

        assert self.child.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.child.stdout, selectors.EVENT_READ)
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            if selector.select(timeout=1.0):
                line = self.child.stdout.readline()
                if line.startswith("READY"):
                    return time.perf_counter() - self.began
                if line:
                    continue
            if self.child.poll() is not None:
                raise RuntimeError(f"Ray Serve exited {self.child.returncode} before serving: {self.tail()}")
        raise RuntimeError(f"Ray Serve did not serve within {timeout_s:.0f} s: {self.tail()}")

    def tail(self, lines: int = 12) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        import signal
        import subprocess

        try:
            if self.child.stdin is not None:
                self.child.stdin.close()
            self.child.wait(60)
        except (subprocess.TimeoutExpired, OSError):
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signal.SIGKILL)  # whatever of Ray's is left in its session
        self._log.close()


def start_ray(ray_choice: str, scratch: Path) -> tuple[RayServeNoop | None, dict[str, Any]]:
    """Ray Serve's no-op up (or why not): the server and its record."""
    python, how = ray_python(ray_choice)
    ray: dict[str, Any] = {"measured": False, "python": how}
    if python is None:
        ray["reason"] = how
        return None, ray
    for attempt in range(1, RAY_START_ATTEMPTS + 1):
        server = RayServeNoop(python, scratch / "ray-serve.log")
        try:
            ray["start_s"] = server.wait_ready()
            break
        except RuntimeError as error:
            ray["reason"] = str(error)
            log(f"  {error}")
            server.stop()
            # the port was free when chosen, but Ray's own processes (GCS, raylet, workers) bind ports of their own
            # as it starts and one may take it first: choose another and start again
            if "Failed to bind" not in str(error) or attempt == RAY_START_ATTEMPTS:
                return None, ray
            log(f"  Ray Serve's port was taken while it started: again on another port ({attempt + 1}/{RAY_START_ATTEMPTS})")
    ray.pop("reason", None)
    ray["start_attempts"] = attempt
    log(f"  Ray Serve no-op up in {ray['start_s']:.1f} s ({how})")
    return server, ray


def measure_overhead_vs_ray(url: str, x: np.ndarray, requests: int, repeats: int,
                            ray: RayServeNoop | None) -> tuple[list[dict[str, list[float]]], list[list[float]],
                                                               dict[str, list[float]]]:
    """Target (c): 1-instance requests to Easel and the same body to Ray Serve's no-op (when up), in alternating
    repeats (Easel, Ray, Easel, Ray, ...) so that both see the same machine. Returns Easel's repeats (per request:
    round trip, the compute its worker recorded, their difference — the overhead), Ray's round trips per repeat,
    and the predictor's stage totals over Easel's repeats (stage -> [seconds, count]: where the time goes)."""
    body = {"instances": [x[0].tolist()], "deadline_s": 2.0}
    timed_posts(url + "/predict", body, 20, AUTH)  # both warm before the first measured repeat
    if ray is not None:
        timed_posts(ray.url, body, 20)
    before = stage_totals(url)
    easel_runs, ray_runs = [], []
    for repeat in range(repeats):
        easel_runs.append(easel_overheads(timed_posts(url + "/predict", body, requests, AUTH)))
        line = f"  repeat {repeat + 1}: Easel overhead p50 {p50_ms(easel_runs[-1]['overhead']):.2f} ms"
        if ray is not None:
            ray_runs.append([rtt for rtt, _answer, _sent in timed_posts(ray.url, body, requests)])
            line += f", Ray Serve no-op p50 {p50_ms(ray_runs[-1]):.2f} ms"
        log(line + f" (load {load_average()[0]})")
    after = stage_totals(url)
    stages = {stage: [total - before.get(stage, (0.0, 0.0))[0], count - before.get(stage, (0.0, 0.0))[1]]
              for stage, (total, count) in after.items()}
    return easel_runs, ray_runs, stages


def summarize_overhead(easel_runs: list[dict[str, list[float]]], stages: dict[str, list[float]]) -> dict[str, Any]:
    """Easel's repeats as recorded: p50 per repeat, mean ± SE over the repeats; the stage means."""
    runs = [r for r in easel_runs if r["rtt"]]
    return {"requests_per_repeat": [len(r["rtt"]) for r in easel_runs],
            "stage_mean_ms": {stage: round(total / count * 1e3, 3) for stage, (total, count) in stages.items() if count},
            # the client's side of the trip, against the answer's stamps (same machine, one wall clock)
            "client_stage_mean_ms": {name: round(statistics.fmean(v for r in runs for v in r[name]) * 1e3, 3)
                                     for name in ("http_in", "http_out") if any(r.get(name) for r in runs)},
            "overhead_p50_ms": mean_se([p50_ms(r["overhead"]) for r in runs]),
            "overhead_p99_ms": mean_se([float(np.quantile(r["overhead"], 0.99)) * 1e3 for r in runs]),
            "rtt_p50_ms": mean_se([p50_ms(r["rtt"]) for r in runs]),
            "compute_p50_ms": mean_se([p50_ms(r["compute"]) for r in runs]),
            "load_average": load_average()}


# The configurations (c) can compare in one run (each beside Ray Serve): the environment the predictor and the
# workers get (EASEL_SERVING_KAFKA_CLIENT is the requests hop's client: the predictor's producer and the workers'
# consumer).
# The fetch wait trades latency for CPU: the local broker holds an empty fetch for its whole wait, and each fetch
# costs the broker (and, with kafka-python, the worker) CPU; the idle CPU of each configuration is recorded beside it.
C_VARIANTS: dict[str, dict[str, str]] = {
    "kafka-python": {"EASEL_SERVING_KAFKA_CLIENT": "kafka-python"},
    "confluent-kafka": {"EASEL_SERVING_KAFKA_CLIENT": "confluent-kafka"},
    "kafka-python-wait5": {"EASEL_SERVING_KAFKA_CLIENT": "kafka-python", "EASEL_SERVING_FETCH_WAIT_MS": "5"},
    "confluent-kafka-wait5": {"EASEL_SERVING_KAFKA_CLIENT": "confluent-kafka", "EASEL_SERVING_FETCH_WAIT_MS": "5"},
    "confluent-kafka-wait2": {"EASEL_SERVING_KAFKA_CLIENT": "confluent-kafka", "EASEL_SERVING_FETCH_WAIT_MS": "2"},
}
# ... and where the predictor's producer differs from the workers' consumer (to read the two ends' shares apart).
C_PREDICTOR_ENV: dict[str, dict[str, str]] = {
    "confluent-kafka-consumer-only": {"EASEL_SERVING_KAFKA_CLIENT": "kafka-python"},
}
C_VARIANTS["confluent-kafka-consumer-only"] = C_VARIANTS["confluent-kafka"]
IDLE_CPU_S = 3.0  # how long each configuration's idle CPU is measured (workers up, no requests)
HOT_CPU_S = 0.8  # ... and its CPU just after requests


def idle_cpu(services: Services, stack: Any, seconds: float = IDLE_CPU_S) -> dict[str, float]:
    """CPU ms per second the serving side burns with nothing to do (fetch loops, heartbeats), per process."""
    meter = CpuMeter(services.pids(stack))
    first = meter.read()
    time.sleep(seconds)  # the measurement window itself, not a synchronisation
    last = meter.read()
    return {name: round((last[name] - first[name]) / seconds * 1e3, 1) for name in first if name in last}


def section_c(services: Services, stack: Any, x: np.ndarray, requests: int, ray_choice: str,
              scratch: Path, variants: list[str], repeats: int = 3) -> dict[str, Any]:
    """Target (c) on two workers with the scheduler: Easel's 1-instance overhead against Ray Serve's no-op in the
    same run, for each block of ``variants`` in turn (workers restarted per block, Ray Serve up throughout; a
    variant named twice, e.g. ``a,b,a,b``, pools its blocks, so that a machine whose load drifts does not favour
    whichever ran first); then the bare hops (what the overhead cannot go below here). The first variant is the
    one the target is judged on."""
    log(f"(c) 1-instance overhead vs Ray Serve's no-op (load {load_average()})")
    server, ray = start_ray(ray_choice, scratch)
    pooled: dict[str, dict[str, Any]] = {}
    ray_runs: list[list[float]] = []
    try:
        for variant in variants:
            log(f"  {variant}: predictor {C_PREDICTOR_ENV.get(variant, C_VARIANTS[variant])}, workers {C_VARIANTS[variant]}")
            # the client is the requests hop's: both ends, unless the variant says otherwise for the predictor
            services.start_predictor(env=C_PREDICTOR_ENV.get(variant, C_VARIANTS[variant]))
            services.start_workers("scheduler", env=C_VARIANTS[variant])
            idle = idle_cpu(services, stack)
            easel_runs, runs, stages = measure_overhead_vs_ray(services.url, x, requests, repeats, server)
            # the same just after a few requests (a client that polls harder while busy would show here)
            timed_posts(services.url + "/predict", {"instances": [x[0].tolist()], "deadline_s": 2.0}, 3, AUTH,
                        warm_up=0)
            hot = idle_cpu(services, stack, seconds=HOT_CPU_S)
            services.stop_workers()
            mine = pooled.setdefault(variant, {"easel": [], "ray": [], "stages": {}, "idle": [], "hot": []})
            mine["idle"].append(idle)
            mine["hot"].append(hot)
            mine["easel"] += easel_runs
            mine["ray"] += runs
            for stage, (total, count) in stages.items():
                kept = mine["stages"].setdefault(stage, [0.0, 0.0])
                kept[0], kept[1] = kept[0] + total, kept[1] + count
            ray_runs += runs
    finally:
        if server is not None:
            server.stop()
        services.start_predictor()  # what the sections after this one expect, whatever the last block's client
    by_variant = {}
    for variant, mine in pooled.items():
        easel = by_variant[variant] = summarize_overhead(mine["easel"], mine["stages"])
        if mine["ray"]:
            easel["ray_serve_noop_rtt_p50_ms_beside"] = mean_se([p50_ms(r) for r in mine["ray"] if r])
        easel["idle_cpu_ms_per_s"] = {name: round(statistics.fmean(block[name] for block in mine["idle"]), 1)
                                      for name in mine["idle"][0]}  # Ray Serve idles beside it, on the same cores
        easel["hot_idle_cpu_ms_per_s"] = {name: round(statistics.fmean(block[name] for block in mine["hot"]), 1)
                                          for name in mine["hot"][0]}
        log(f"  {variant}: Easel overhead p50 {easel['overhead_p50_ms']['mean']:.2f}±"
            f"{easel['overhead_p50_ms']['se']:.2f} ms over {len(mine['easel'])} repeats (rtt p50 "
            f"{easel['rtt_p50_ms']['mean']:.2f}, compute p50 {easel['compute_p50_ms']['mean']:.2f}); stage means (ms) "
            f"{easel['stage_mean_ms']}, client side {easel['client_stage_mean_ms']}; idle CPU ms/s {easel['idle_cpu_ms_per_s']}, just after requests "
            f"{easel['hot_idle_cpu_ms_per_s']}")
    if ray_runs:
        ray.update({"measured": True, "requests_per_repeat": [len(r) for r in ray_runs],
                    "rtt_p50_ms": mean_se([p50_ms(r) for r in ray_runs if r]), "load_average": load_average()})
        log(f"  Ray Serve no-op rtt p50 {ray['rtt_p50_ms']['mean']:.2f}±{ray['rtt_p50_ms']['se']:.2f} ms")
    services.start_workers("scheduler")
    floors = measure_floors(stack.settings, services.url)
    services.stop_workers()
    log(f"  bare hops, p50 (ms): {floors}")
    return {"easel": by_variant[variants[0]], "variant": variants[0], "variant_order": variants,
            "by_variant": by_variant, "bare_hops": floors, "ray_serve_noop": ray}


def write_c_only(c_overhead: dict[str, Any], loads: dict[str, Any], seconds: float) -> None:
    """``--sections c``: replace serving.json's (c) parts, keep (a), (b) and the rest as they were."""
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"targets": {}}
    result["c_overhead"] = {**c_overhead, "load_average": loads, "seconds": seconds,
                            "command": "benchmarks/serving.py " + " ".join(sys.argv[1:])}
    goals = {k: v for k, v in result.get("targets", {}).items() if not k.startswith("c_")}
    goals.update(c_target(c_overhead))
    result["targets"] = goals
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    log(f"targets (c): {json.dumps({k: v for k, v in goals.items() if k.startswith('c_')})}")
    log(f"wrote {RESULTS.relative_to(ROOT)} (c_overhead, targets c_*) in {seconds:.0f}s")


# -- report ----------------------------------------------------------------------------------------------------
def table(sweep: dict[str, Any]) -> list[str]:
    from benchmarks.serving_accounting import accounting_table

    policies = tuple(sweep["policies"])
    lines = ["(b) effective accuracy, mean±SE of the windows (expected from the profile); oracle on in-situ t_i (the "
             "target's), and the pipeline's oracle (the point's t_i, budget D less the recorded pre-worker delay)"]
    lines.append(f"{'N':>6} {'N/D /s':>8} " + " ".join(f"{p:>15}" for p in policies)
                 + f" {'oracle':>7} {'ours/or':>7} {'or+pipe':>7} {'ours/o+p':>8} {'delay ms':>8} {'bound':>7}"
                 f" {'bound/or':>8} {'left ms':>7}")
    for i, n in enumerate(sweep["sizes"]):
        cells = []
        for policy in policies:
            acc = sweep["policies"][policy][i]["effective_accuracy"]
            cells.append(f"{acc['mean']:.3f}±{acc['se']:.3f}".rjust(15))
        oracle = max(sweep["simulator_in_situ_times"][i].values())
        piped = max(sweep["simulator_pipeline"][i].values())
        ours = sweep["policies"]["scheduler"][i]["effective_accuracy"]["mean"]
        lines.append(f"{n:>6} {n / sweep['deadline_s']:>8.0f} " + " ".join(cells) + f" {oracle:>7.3f} {ours / oracle:>7.1%}"
                     f" {piped:>7.3f} {ours / piped:>8.1%} {sweep['pre_worker_delay_s'][i] * 1e3:>8.1f}"
                     + _bound_cells(sweep, i, oracle))
    return lines + [""] + accounting_table(sweep, policies)


def _bound_cells(sweep: dict[str, Any], i: int, oracle: float) -> str:
    bounds, lefts = sweep.get("simulator_arrival_bound"), sweep.get("time_left_at_arrival_s")
    if not bounds or lefts[i] is None:
        return ""
    bound = max(bounds[i].values())
    return f" {bound:>7.3f} {bound / oracle:>8.1%} {lefts[i] * 1e3:>7.1f}"


def plot(sweep: dict[str, Any], capacities: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = [n / sweep["deadline_s"] for n in sweep["sizes"]]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for policy, rows in sweep["policies"].items():
        style = {"linewidth": 2.5} if policy in OURS else {"linewidth": 1.0}
        for ax, name, scale in ((axes[0], "effective_accuracy", 1.0), (axes[1], "throughput", 1.0),
                                (axes[2], "latency_p99", 1e3)):
            means = [(r[name]["mean"] if r[name]["mean"] is not None else math.nan) * scale for r in rows]
            errors = [(r[name]["se"] if r[name]["se"] is not None else 0.0) * scale for r in rows]
            ax.errorbar(loads, means, yerr=errors, marker="o", capsize=2, label=policy, **style)
    axes[0].plot(loads, [max(s.values()) for s in sweep["simulator"]], linestyle="--", color="grey",
                 label="simulator oracle (bare t_i)")
    axes[0].plot(loads, [max(s.values()) for s in sweep["simulator_in_situ_times"]], linestyle=":", color="black",
                 label="simulator oracle (in-pipeline t_i)")
    for rate, cap in capacities.items():
        for ax in axes:
            ax.axvline(cap, color="grey", linewidth=0.6, linestyle=":")
        axes[0].text(cap, 0.02, f"C({rate})", rotation=90, fontsize=7, color="grey")
    axes[0].set(xlabel="workload N/D (instances/s)", ylabel="effective accuracy", ylim=(0, 1), xscale="log")
    axes[1].set(xlabel="workload N/D (instances/s)", ylabel="served by deadline (instances/s)", xscale="log")
    axes[2].set(xlabel="workload N/D (instances/s)", ylabel="p99 latency of served (ms)", xscale="log")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Easel serving on the real pipeline (2 workers, CPU, mini-batch messages), D = {sweep['deadline_s']} s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def c_target(c_overhead: dict[str, Any]) -> dict[str, Any]:
    """Target (c) as recorded: met or not (None when Ray Serve was not measured), with both p50s and the load; and,
    when both clients were measured, whether the C client moves the p50 overhead by >= 2 ms (issue #15 item 3)."""
    overhead, ray = c_overhead["easel"], c_overhead["ray_serve_noop"]
    easel = overhead["overhead_p50_ms"]
    out: dict[str, Any] = {"c_overhead_p50_le_ray_serve_noop_p50": None, "c_variant": c_overhead.get("variant"),
                           "c_easel_overhead_p50_ms": {k: round(v, 3) for k, v in easel.items()},
                           "c_load_average": overhead["load_average"]}
    variants = c_overhead.get("by_variant", {})
    if "kafka-python" in variants and "confluent-kafka" in variants:
        ours, theirs = variants["kafka-python"]["overhead_p50_ms"], variants["confluent-kafka"]["overhead_p50_ms"]
        gain = ours["mean"] - theirs["mean"]
        out["c_confluent_gain_ms"] = round(gain, 3)
        out["c_confluent_gain_se_ms"] = round(math.hypot(ours["se"], theirs["se"]), 3)  # independent repeats
        out["c_confluent_gain_ge_2ms"] = gain >= 2.0
    if not ray.get("measured"):
        out["c_note"] = f"not measured: {ray.get('reason')}"
        return out
    # judged against the Ray repeats that alternated with this configuration's
    beside = overhead.get("ray_serve_noop_rtt_p50_ms_beside") or ray["rtt_p50_ms"]
    out["c_overhead_p50_le_ray_serve_noop_p50"] = easel["mean"] <= beside["mean"]
    out["c_ray_serve_noop_rtt_p50_ms"] = {k: round(v, 3) for k, v in beside.items()}
    out["c_note"] = "the same run, alternating repeats (Easel, Ray Serve, ...), mean ± SE of the repeats' p50s"
    return out


def b_summary(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """(b) per point: the scheduler against the best baseline run, and against the oracles — the judged one on the
    in-situ batch times (``over_oracle_in_situ``), and the pipeline's beside it (``over_oracle_pipeline``)."""
    summary = []
    for i, n in enumerate(sweep["sizes"]):
        ours = sweep["policies"]["scheduler"][i]["effective_accuracy"]
        best_name = max((p for p in sweep["policies"] if p not in OURS),
                        key=lambda p: sweep["policies"][p][i]["effective_accuracy"]["mean"])
        best = sweep["policies"][best_name][i]["effective_accuracy"]
        oracle = max(sweep["simulator_in_situ_times"][i].values())
        piped = max(sweep["simulator_pipeline"][i].values())
        se = max(ours["se"], best["se"])  # one standard error: the larger of the two compared
        summary.append({"n": n, "workload": n / sweep["deadline_s"], "scheduler": ours, "best_baseline": best_name,
                        "best_baseline_accuracy": best, "ge_every_baseline": ours["mean"] >= best["mean"] - se,
                        "oracle_in_situ": oracle, "over_oracle_in_situ": ours["mean"] / oracle,
                        "oracle_point_times": max(sweep["simulator_point_times"][i].values()),
                        "over_oracle_point_times": ours["mean"] / max(sweep["simulator_point_times"][i].values()),
                        "oracle_pipeline": piped, "over_oracle_pipeline": ours["mean"] / piped,
                        "pre_worker_delay_s": sweep["pre_worker_delay_s"][i],
                        "time_left_at_arrival_s": sweep["time_left_at_arrival_s"][i],
                        "arrival_bound": max(sweep["simulator_arrival_bound"][i].values()),
                        "arrival_bound_over_oracle_in_situ": max(sweep["simulator_arrival_bound"][i].values()) / oracle,
                        "oracle_bare_t": max(sweep["simulator"][i].values()),
                        "never_reached_a_worker": {p: rows[i]["accounting"]["never_reached_a_worker"]
                                                   for p, rows in sweep["policies"].items()},
                        "expired_unrun": {p: rows[i]["accounting"]["expired_unrun"]
                                          for p, rows in sweep["policies"].items()}})
    return summary


def b_goals(summary: list[dict[str, Any]], narrow_capacity: float) -> dict[str, Any]:
    widest = max(s["workload"] for s in summary)
    return {
        "b_sweep_reaches_1_2x_narrowest_capacity": widest >= 1.2 * narrow_capacity,
        "b_scheduler_ge_every_baseline_everywhere": all(s["ge_every_baseline"] for s in summary),
        # judged on the issue's oracle, "computed on the batch times measured in the pipeline" (in-situ t_i)
        "b_scheduler_ge_97pct_oracle_everywhere": all(s["over_oracle_in_situ"] >= 0.97 for s in summary),
        # beside it, not judged: the oracle that also spends the recorded pre-worker delay
        "b_scheduler_ge_97pct_pipeline_oracle_everywhere": all(s["over_oracle_pipeline"] >= 0.97 for s in summary),
        # whether any policy could reach 97 % of that oracle at every point, given when each share reached a worker
        "b_97pct_oracle_within_the_arrival_bound_everywhere": all(s["arrival_bound_over_oracle_in_situ"] >= 0.97
                                                                  for s in summary),
        "b_instances_never_reaching_a_worker": sum(sum(s["never_reached_a_worker"].values()) for s in summary),
        "b_instances_expired_unrun": sum(sum(s["expired_unrun"].values()) for s in summary),
    }


def targets(saturation: dict[str, Any], sweep: dict[str, Any], narrow_capacity: float,
            c_overhead: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    summary = b_summary(sweep)
    out = {
        # Met only if both say so: the wall-clock ratio (its two sides measured at different moments of the
        # machine's other load) and the CPU projection (what the pipeline would do on idle cores).
        "a_met": all(s["fraction_of_bare"] >= 0.85 and s["projected_fraction_of_bare"]["mean"] >= 0.85
                     for s in saturation.values()),
        "a_saturation_ge_85pct_of_bare_at_each_width": all(s["fraction_of_bare"] >= 0.85 for s in saturation.values()),
        "a_fraction_of_bare_by_width": {r: round(s["fraction_of_bare"], 3) for r, s in saturation.items()},
        "a_cpu_projected_ge_85pct_at_each_width": all(s["projected_fraction_of_bare"]["mean"] >= 0.85
                                                      for s in saturation.values()),
        "a_cpu_projected_fraction_by_width": {r: round(s["projected_fraction_of_bare"]["mean"], 3)
                                              for r, s in saturation.items()},
        "a_cpu_us_per_instance_outside_model_by_width": {r: round(s["cpu_us_per_instance_outside_model"]["mean"], 1)
                                                         for r, s in saturation.items()},
        **b_goals(summary, narrow_capacity),
        **c_target(c_overhead),
        "d_per_width_batch_size": None,
        "d_note": "not built (issue #15 item 4 is optional; not attempted this session)",
        "gpu": "not measured: no GPU was lent to this session (issue #15 item 5); CPU numbers only",
    }
    return out, summary


def write_sections(sections: str, args: argparse.Namespace, began: float, loads: dict[str, Any],
                   bare: dict[str, Any], saturation: dict[str, Any], overhead: dict[str, Any], floors: dict[str, Any],
                   ray: dict[str, Any], settings: Any, sweep: dict[str, Any] | None = None,
                   narrow_capacity: float = 0.0) -> int:
    """A run of some sections only (``--sections``): what it measured, with (a)'s target, in
    ``serving-<sections>.json`` (``serving.json`` stays the record of a whole run)."""
    goals: dict[str, Any] = {}
    if saturation:
        goals = {
            "a_met": all(s["fraction_of_bare"] >= 0.85 and s["projected_fraction_of_bare"]["mean"] >= 0.85
                         for s in saturation.values()),
            "a_fraction_of_bare_by_width": {r: round(s["fraction_of_bare"], 3) for r, s in saturation.items()},
            "a_cpu_projected_fraction_by_width": {r: round(s["projected_fraction_of_bare"]["mean"], 3)
                                                  for r, s in saturation.items()},
            "a_cpu_us_per_instance_outside_model_by_width": {
                r: round(s["cpu_us_per_instance_outside_model"]["mean"], 1) for r, s in saturation.items()},
        }
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": loads, "device": DEVICE,
                    "kafka_client": settings.serving_kafka_client,
                    "predictor_kafka_client": args.predictor_kafka_client or settings.serving_kafka_client,
                    "message_kb": settings.serving_message_kb,
                    "note": "a shared machine: every number is wall-clock bound and moves with the load average"},
        "command": " ".join(sys.argv), "sections": sections, "bare_two_processes_per_s": bare,
        "a_saturation": saturation, "c_overhead": {"easel": overhead, "bare_hops": floors, "ray_serve_noop": ray},
        "targets": goals, "seconds": time.perf_counter() - began,
    }
    if sweep is not None:  # (b) without (d)
        summary = b_summary(sweep)
        goals.update(b_goals(summary, narrow_capacity))
        result.update({"b_sweep": sweep, "b_summary": summary,
                       "topic_rotate_mb": settings.serving_topic_rotate_mb})
        for line in table(sweep):
            log(line)
    path = on_device(RESULTS.with_name(f"serving-{sections}.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    log(f"targets: {json.dumps(goals)}")
    log(f"wrote {path.relative_to(ROOT)} in {result['seconds']:.0f}s")
    return 0


def section_d(template: Any, profile: dict[str, Any], sizes: list[int], deadline: float, transit_s: float,
              quick: bool) -> dict[str, Any]:
    """(d): ``benchmarks/serving_batch_sizes.py``; writes its JSON and prints its table."""
    from benchmarks.serving_batch_sizes import measure, table
    from easel.settings import Settings

    rates = [float(r) for r in profile["rates"]]
    result = measure(template, rates, [float(a) for a in profile["accuracy"]], (1, 8, 8), sizes, deadline,
                     transit_s, Settings().serving_margin_s, quick)
    BATCH_SIZES_RESULTS.write_text(json.dumps(result, indent=1))
    for line in table(result):
        log(line)
    log(f"wrote {BATCH_SIZES_RESULTS.relative_to(ROOT)} in {result['seconds']:.0f}s (load {result['load_average']})")
    return result


def only_batch_sizes(quick: bool, deadline: float) -> int:
    """``--only-d``: the benchmark network untrained (times do not depend on the weights), the accuracies of the
    last full run's serving.json and its measured transit to the workers; loads as the full run's three highest."""
    import importlib.util

    last = json.loads(RESULTS.read_text())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_sliced_mlp.py"
        path.write_text(TEMPLATE_SOURCE)
        spec = importlib.util.spec_from_file_location("bench_sliced_mlp", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    template = module.BenchSlicedMLP(lr=0.05)
    template.load_parameters(_untrained_parameters(template, (1, 8, 8), 10))
    transit = last.get("c_overhead", {}).get("easel", {}).get("stage_mean_ms", {}).get("to_worker", 0.0) / 1e3
    profile = {"rates": last["model"]["rates"], "accuracy": last["model"]["accuracy"]}
    # The loads scale with this machine as the full run's do: its three highest fractions of the narrowest width's
    # capacity (two processes at S_mb, from the raw time measured now).
    narrow = WORKERS * BATCH / raw_timings(template)["batch_time_s"][min(template.SLICE_RATES)]
    sizes = [max(BATCH, math.ceil(f * narrow * deadline)) for f in (0.55, 0.85, 1.2)]
    section_d(template, profile, sizes, deadline, transit, quick)
    return 0


def _untrained_parameters(template: Any, input_shape: tuple[int, ...], classes: int) -> bytes:
    """Freshly initialised parameters in the template's own format (what ``load_parameters`` reads)."""
    from easel.model.params import tensors_to_bytes

    net = template._build(classes, input_shape)
    meta = {"arch": template.ARCH, "classes": json.dumps([str(c) for c in range(classes)]),
            "input_shape": json.dumps(list(input_shape)), "knobs": json.dumps(template.knobs)}
    return tensors_to_bytes(net.state_dict(), metadata=meta)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer points, shorter windows")
    parser.add_argument("--deadline", type=float, default=0.5)
    parser.add_argument("--ray-python", default=os.environ.get("EASEL_BENCH_RAY_PYTHON", "auto"),
                        help="for target (c): a Python that has ray[serve] (its own venv); auto: the benchmark's "
                             "venv benchmarks/.ray-venv, made on demand; none: skip Ray Serve")
    parser.add_argument("--c-variants", default=None,
                        help=f"worker configurations (c) measures, each beside Ray Serve, the first judged: a comma "
                             f"list of {', '.join(C_VARIANTS)} (default: the --kafka-client's)")
    parser.add_argument("--skip-sweep", action="store_true", help="only (a) and (c), printed, results not written")
    parser.add_argument("--sections", default="abc",
                        help="which targets to measure (any of a, b, c); fewer than all write serving-<sections>.json "
                             "((b) without (c) skips (d), which needs (c)'s transit time)")
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help="the policies (b) sweeps, a comma list that includes scheduler (default: all)")
    parser.add_argument("--model-cache", type=Path, default=None,
                        help="a folder to keep the trained model in between runs (training is most of the set-up)")
    parser.add_argument("--only-d", action="store_true",
                        help="only (d), joint (n_i, b_i) vs fixed b = 32, on the untrained network's times and the "
                             "last serving.json's accuracies and loads (no stack, no training)")
    parser.add_argument("--kafka-client", choices=("kafka-python", "confluent-kafka"), default=None,
                        help="the requests hop's Kafka client, the predictor's producer and the workers' consumer "
                             "(EASEL_SERVING_KAFKA_CLIENT; default: the settings')")
    parser.add_argument("--predictor-kafka-client", choices=("kafka-python", "confluent-kafka"), default=None,
                        help="the predictor's producer only, for (a) and (b) (default: --kafka-client's): reads the "
                             "two ends' shares apart")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"S_mb for the pipeline and the bare processes alike (default {BATCH}: the profile's)")
    parser.add_argument("--fractions", default=None,
                        help="(b): the sweep's loads as a comma list of fractions of the narrowest width's capacity "
                             "(default 0.1,0.4,0.85,1.2 with --quick, else 0.05,0.15,0.3,0.55,0.85,1.2)")
    parser.add_argument("--windows", type=int, default=3,
                        help="(b): windows (turns) per point; more to resolve the machine's draw past capacity")
    parser.add_argument("--answers", choices=("columns", "instances"), default="columns",
                        help="(a): the answer form the load generator asks for (columns: arrays, the fast form)")
    args = parser.parse_args()
    if args.batch_size is not None:
        use_batch_size(args.batch_size)
    if args.only_d:
        return only_batch_sizes(args.quick, args.deadline)
    sections = "".join(sorted(set(args.sections)))
    if args.skip_sweep:
        sections = sections.replace("b", "")
    if not sections or set(sections) - set("abc"):
        parser.error(f"--sections: any of a, b and c, got {args.sections!r}")
    policies = tuple(args.policies.split(","))
    if set(policies) - set(POLICIES) or "scheduler" not in policies:
        parser.error(f"--policies: a comma list of {', '.join(POLICIES)} that includes scheduler")
    began = time.perf_counter()
    if args.kafka_client:
        os.environ["EASEL_SERVING_KAFKA_CLIENT"] = args.kafka_client  # the workers inherit it
    fractions = [0.1, 0.4, 0.85, 1.2] if args.quick else [0.05, 0.15, 0.3, 0.55, 0.85, 1.2]
    if args.fractions:
        try:
            fractions = [float(f) for f in args.fractions.split(",")]
        except ValueError:
            parser.error(f"--fractions: a comma list of numbers, got {args.fractions!r}")
        if any(not 0 < f <= 10 for f in fractions):
            parser.error("--fractions: each in (0, 10]")
    if args.windows < 2:
        parser.error("--windows: at least 2 (a standard error needs two)")
    per_window, windows = (2 if args.quick else 3), args.windows
    sat_seconds = 3.0 if args.quick else 5.0
    c_variants = (args.c_variants or os.environ.get("EASEL_SERVING_KAFKA_CLIENT", "kafka-python")).split(",")
    if set(c_variants) - set(C_VARIANTS):
        parser.error(f"--c-variants: a comma list of {', '.join(C_VARIANTS)}")
    loads: dict[str, Any] = {"start": load_average()}
    log(f"setting up: local stack, training the model in-process (load average {loads['start']})")
    stack, data_dir = start_stack()
    services = None
    try:
        from easel.db.session import make_engine, make_sessionmaker

        settings = stack.settings
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        setup = train_and_deploy(settings, sessions, data_dir, args.model_cache)
        if sections == "c":  # (c) alone: no bare model runs, no (a) or (b); serving.json's (c) updated in place
            services = Services(settings, sessions, setup["job_id"])
            services.start_predictor()
            c_overhead = section_c(services, stack, setup["x"], 60 if args.quick else 100, args.ray_python,
                                   data_dir, c_variants)
            write_c_only(c_overhead, {**loads, "end": load_average()}, time.perf_counter() - began)
            return 0
        raw = raw_timings(setup["template"])
        times = raw["batch_time_s"]
        log("  raw model, one thread, S_mb=32: " + ", ".join(f"r={r:g}: {t * 1e3:.2f} ms" for r, t in times.items()))
        rates = sorted(times, reverse=True)
        bare = bare_throughput(data_dir / "bench_sliced_mlp.py", settings.blob_dir / "params" / "bench.safetensors",
                               rates, WORKERS, 2.0 if args.quick else 3.0, 3)
        log("  two bare model processes at once (instances/s): "
            + ", ".join(f"r={r}: {v['mean']:.0f}±{v['se']:.0f}" for r, v in bare.items()))
        narrow = bare[f"{min(rates):g}"]["mean"]  # measured in this run (the sweep's scale: a loaded machine's)
        # what two processes would compute on two idle cores (CPU seconds per mini-batch): recorded beside it
        idle_capacity = {r: WORKERS * BATCH / v["cpu_s_per_batch"] for r, v in bare.items()}
        loads["bare"] = load_average()
        services = Services(settings, sessions, setup["job_id"])
        if args.predictor_kafka_client:
            services.predictor_env = {"EASEL_SERVING_KAFKA_CLIENT": args.predictor_kafka_client}
        services.start_predictor()

        c_overhead: dict[str, Any] | None = None
        if "c" in sections:  # first, on a broker in its normal state (Tansu's memory storage keeps every message)
            c_overhead = section_c(services, stack, setup["x"], 60 if args.quick else 100, args.ray_python,
                                   data_dir, c_variants)
        overhead = c_overhead["easel"] if c_overhead else {}
        floors = c_overhead["bare_hops"] if c_overhead else {}
        ray = c_overhead["ray_serve_noop"] if c_overhead else {}

        saturation = {}
        for rate in rates if "a" in sections else []:
            if rate == rates[0]:
                log("(a) saturation at each width (two bare processes re-measured at the width just before)")
            key = f"{rate:g}"
            # the bare reference at the same moment of the machine's other load as the pipeline's windows
            here = bare_throughput(data_dir / "bench_sliced_mlp.py", settings.blob_dir / "params" / "bench.safetensors",
                                   [rate], WORKERS, sat_seconds, 3)
            saturation[key] = measure_saturation(services, stack, setup["x"], rate, {**bare, **here}, sat_seconds, 3,
                                                 lists_too=rate == min(rates), answers=args.answers)
            sat = saturation[key]
            log(f"  r={key}: {sat['throughput_per_s']['mean']:.0f}±{sat['throughput_per_s']['se']:.0f}/s = "
                f"{sat['fraction_of_bare']:.0%} of bare (CPU-projected {sat['projected_fraction_of_bare']['mean']:.0%}); "
                f"CPU outside the model {sat['cpu_us_per_instance_outside_model']['mean']:.1f} µs/instance vs "
                f"{sat['model_cpu_us_per_instance']:.1f} in it (load {sat['load_average']}); by component "
                + ", ".join(f"{k} {v['mean']:.1f}" for k, v in sat["cpu_us_per_instance_by_component"].items()))

        sizes = [max(BATCH, math.ceil(f * narrow * args.deadline)) for f in fractions]
        if "b" in sections:
            log(f"(b) sweep: D = {args.deadline}s, N = {sizes}, {windows} windows of {per_window} tasks per point")
            sweep = run_sweep(services, setup, times, args.deadline, sizes, per_window, windows, policies, stack)
        if sections != "abc":
            loads["end"] = load_average()
            return write_sections(sections, args, began, loads, bare, saturation, overhead, floors, ray, settings,
                                  sweep if "b" in sections else None, narrow)
        log("(d) joint (n_i, b_i) vs fixed b = 32 at the three highest loads")
        batch_sizes = section_d(setup["template"], setup["profile"], sizes[-3:], args.deadline,
                                c_overhead["easel"]["stage_mean_ms"].get("to_worker", 0.0) / 1e3, args.quick)
        loads["end"] = load_average()
    finally:
        if services is not None:
            services.stop()
        stack.down()
        shutil.rmtree(data_dir, ignore_errors=True)

    assert c_overhead is not None  # a whole run measures (c)
    goals, summary = targets(saturation, sweep, narrow, c_overhead)
    goals["d_per_width_batch_size"] = batch_sizes["wins_at_every_point"]
    goals["d_note"] = ("joint (n_i, b_i) vs fixed b = 32 replayed on t_i(b) measured in this run "
                       "(benchmarks/results/serving-batch-sizes.json); kept only if it wins")
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": loads, "device": DEVICE,
                    "kafka_client": settings.serving_kafka_client,
                    "predictor_kafka_client": args.predictor_kafka_client or settings.serving_kafka_client,
                    "topic_rotate_mb": settings.serving_topic_rotate_mb,
                    "note": "a shared machine: every number is wall-clock bound and moves with the load average"},
        "model": {"template": "sliced MLP 4096x3 (built-in network, uploaded template)", "batch_size": BATCH,
                  "trained_s": setup["trained_s"], "rates": setup["profile"]["rates"],
                  "accuracy": setup["profile"]["accuracy"],
                  "raw_batch_time_s": {f"{r:g}": t for r, t in times.items()},
                  "bare_two_processes_per_s": bare, "idle_two_core_capacity_per_s_from_cpu_time": idle_capacity,
                  "narrowest_capacity_used_for_the_sweep_per_s": narrow},
        "a_saturation": saturation,
        "b_sweep": sweep, "b_summary": summary,
        "c_overhead": c_overhead,
        "targets": goals,
        "seconds": time.perf_counter() - began,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    plot(sweep, {r: v["mean"] for r, v in bare.items()}, FIGURE)
    log("")
    for line in table(sweep):
        log(line)
    log(f"targets: {json.dumps(goals)}")
    log(f"wrote {RESULTS.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)} in {result['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
