"""Chaos benchmark on the real stack → ``benchmarks/results/chaos.json``.

A private local stack (PostgreSQL, Redis, the Kafka-protocol broker) and a real admin process (its supervisor
relaunches what dies) serve one inference job — a predictor and two inference workers of the sliced MLP
(``benchmarks/serving.py``'s template at 1024 units, trained here) — under a steady load from client threads. One fault at
a time: SIGKILL an inference worker (three times in a row), SIGKILL the predictor, restart the broker, Redis,
PostgreSQL and admin, and a 10x overload burst. Per fault: the load's counts while it lasted (requests
accepted, refused, lost in flight; instances accepted, served, dropped, unanswered) and the time from the
fault to full strength again (every worker running and registered, the predictor healthy, the job RUNNING
again, a request served), as this script measured it, with where those seconds went (``phases_s``: times the
system recorded — the death noticed, the relaunch or standby promotion, the replacement's start-up phases, the
partitions assigned). Also: the broker's memory per served instance, and a retention probe.

Run: ``.venv/bin/python benchmarks/chaos.py [--quick]`` (about 5 minutes). Targets (issue #12): 0 unanswered
instances for every fault; back to full strength within 10 s for a single-process fault. Misses are reported
as measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "chaos.json"
TARGET_BACK_S = 10.0
N = 32
DEADLINE_S = 1.0
THREADS = 2
BROKER_WINDOW_S = 15.0
STANDBYS = int(os.environ.get("EASEL_SERVING_STANDBY_WORKERS", "1"))  # warm standby workers (0: relaunch only)
RETRY_WINDOW_S = 30.0  # the load's SDK client sends a request again after a transport error / 503 for this long
COUNTS = ("Counted as an SDK client sees it: each request is sent with sdk.Client.predict, which sends it again "
          "after a transport error or a 503 for up to retry_window_s (same Idempotency-Key, full deadline each "
          "attempt). accepted = answered 200 (answered_after_retry of them by a later attempt); refused = 429/503 "
          "in the end; lost_in_flight = no attempt answered after a send broke (its instances count unanswered); "
          "unanswered = instances of accepted requests not answered exactly once, plus those lost in flight; "
          "dropped_at_deadline = instances no worker answered, dropped by the predictor's deadline timer.")
FAULTS = ("worker", "predictor", "broker", "redis", "postgres", "admin", "overload")


def _serving_benchmark() -> Any:
    """``benchmarks/serving.py`` as a module: its stack start-up, template and in-process training."""
    spec = importlib.util.spec_from_file_location("serving_benchmark", ROOT / "benchmarks" / "serving.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def log(message: str) -> None:
    print(message, flush=True)


class Deployment:
    def __init__(self, settings: Any, sessions: Any, job_id: str) -> None:
        self.settings, self.sessions, self.job_id = settings, sessions, job_id

    def services(self, kind: Any) -> list[Any]:
        from sqlalchemy import select

        from easel.db.models import Service
        from easel.db.session import session_scope

        with session_scope(self.sessions) as session:
            return list(session.scalars(select(Service).where(Service.inference_job_id == self.job_id,
                                                              Service.kind == kind).order_by(Service.created_at)))

    def running(self, kind: Any) -> list[Any]:
        """The live services of ``kind`` in the slots the job asked for (not its spare standby)."""
        from easel.db.enums import ServiceStatus
        from easel.serving import is_standby

        return [s for s in self.services(kind) if s.status == ServiceStatus.RUNNING and not is_standby(s.name)]

    def standby_ready(self) -> bool:
        import redis

        from easel.serving import standbys_key

        client = redis.Redis.from_url(self.settings.resolved_redis_url, socket_timeout=2)
        try:
            return bool(client.hlen(standbys_key(self.job_id)))
        finally:
            client.close()

    @property
    def url(self) -> str:
        from easel.db.models import InferenceJob
        from easel.db.session import session_scope

        with session_scope(self.sessions) as session:
            return str(session.get_one(InferenceJob, self.job_id).predictor_url)

    def full_strength(self) -> bool:
        import redis

        from easel.chaos import health, process_alive
        from easel.db.enums import ServiceKind
        from easel.serving import live_workers, workers_key

        try:
            workers = self.running(ServiceKind.INFERENCE_WORKER)
            predictors = self.running(ServiceKind.PREDICTOR)
            if len(predictors) != 1 or not all(process_alive(s.pid) for s in workers + predictors):
                return False  # a killed process the supervisor has not noticed (or replaced) yet
            client = redis.Redis.from_url(self.settings.resolved_redis_url, socket_timeout=2)
            try:
                live = live_workers(client.hgetall(workers_key(self.job_id)), time.time())
            finally:
                client.close()
            state = health(self.url)
        except Exception:  # noqa: BLE001 - a part is down: not at full strength
            return False
        wanted = {f"worker-{s.id[:8]}" for s in workers}
        serving = len(workers) == 2 and wanted <= set(live) and state is not None and state.get("status") == "ok"
        return serving and self.status() == "RUNNING"  # and the job says so (the supervisor grades readiness)

    def status(self) -> str:
        from easel.db.models import InferenceJob
        from easel.db.session import session_scope

        with session_scope(self.sessions) as session:
            return str(session.get_one(InferenceJob, self.job_id).status.value)


    def registry(self) -> dict[str, dict[str, Any]]:
        import redis

        from easel.serving import workers_key

        client = redis.Redis.from_url(self.settings.resolved_redis_url, socket_timeout=2)
        try:
            return {k.decode(): json.loads(v) for k, v in client.hgetall(workers_key(self.job_id)).items()}
        finally:
            client.close()

    def phases(self, victim: Any, killed_at: float) -> dict[str, float]:
        """Where the seconds after killing ``victim`` went, from the times the system recorded: when the
        launcher noticed the death (the victim's ``stopped_at``), when the supervisor relaunched its slot (the
        replacement's ``created_at``) and its process began, the replacement's own start-up phases (worker
        registry / predictor ``/health``), and when the partitions moved (each worker's assignment history)."""
        from easel.chaos import health
        from easel.db.enums import ServiceStatus

        rows = [r for r in self.services(victim.kind) if r.name == victim.name]
        gone = next(r for r in rows if r.id == victim.id)
        after = [r for r in rows if r.id != gone.id and r.status == ServiceStatus.RUNNING]
        out: dict[str, Any] = {}

        def at(name: str, when: Any) -> None:
            if when is None:
                return
            stamp = when.replace(tzinfo=when.tzinfo or UTC).timestamp() if isinstance(when, datetime) else when
            if float(stamp) >= killed_at - 1.0:  # a promoted standby's start-up was done long before the fault
                out[name] = round(float(stamp) - killed_at, 3)

        at("death_noticed", gone.stopped_at)
        if after:
            new = after[0]
            out["path"] = "standby promoted" if "promoted_from" in (new.command or {}) else "relaunched"
            at("relaunched", new.created_at)
            at("process_started", (new.command or {}).get("create_time"))
            if victim.kind.value == "PREDICTOR":
                boot = (health(self.url) or {}).get("boot") or {}
            else:
                record = self.registry().get(f"worker-{new.id[:8]}", {})
                boot = record.get("boot") or {}
                first = next((t for t, _parts in record.get("assignments", []) if t > killed_at), None)
                at("replacement_assigned", first)
            for phase, when in boot.items():
                if phase != "process":  # the process start is process_started, from the launcher
                    at(phase, when)
        if victim.kind.value != "PREDICTOR":
            records = self.registry()
            survivors = [r for r in self.running(victim.kind) if r.name != victim.name]
            wanted = len(survivors) + 1
            for survivor in survivors:
                history = records.get(f"worker-{survivor.id[:8]}", {}).get("assignments", [])
                took = next((t for t, parts in history if t > killed_at and len(parts) >= wanted), None)
                at("survivor_took_over", took)
        path = out.pop("path", None)
        return {**({"path": path} if path else {}), **dict(sorted(out.items(), key=lambda kv: kv[1]))}


def admin_phases(url: str, killed_at: float) -> dict[str, float]:
    """Where an admin restart's seconds went: its own start-up phases (``/health``'s ``boot``), from the kill."""
    import httpx

    try:
        boot = httpx.get(f"{url}/health", timeout=3.0).json().get("boot") or {}
    except (httpx.HTTPError, ValueError) as error:
        return {"error": repr(error)}
    return dict(sorted(((k, round(float(v) - killed_at, 3)) for k, v in boot.items()), key=lambda kv: kv[1]))


def rss_mb(pid: int | None) -> float | None:
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1) if pid else None
    except psutil.Error:
        return None


def retention_probe(kafka: Any, messages: int = 20_000, size: int = 600) -> dict[str, Any]:
    """Does the broker honour a topic's ``retention.ms``, or ``DeleteRecords``? A topic with a 1 s retention
    gets ``messages`` of ``size`` bytes; then: its earliest offsets after 3 s, a DeleteRecords up to the end, and
    deleting the topic — with the broker's RSS after each step."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    topic, out = "easel.retention-probe", {"messages": messages, "bytes_each": size}
    admin = KafkaAdminClient(bootstrap_servers=kafka.url)
    consumer = KafkaConsumer(bootstrap_servers=kafka.url)
    try:
        admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "1000", "segment.ms": "1000"})])
        out["rss_mb_before"] = rss_mb(kafka.pid())
        producer = KafkaProducer(bootstrap_servers=kafka.url, linger_ms=5, batch_size=1 << 20)
        for i in range(messages):
            producer.send(topic, b"x" * size, partition=i % 2)
        producer.flush()
        producer.close()
        out["rss_mb_after_produce"] = rss_mb(kafka.pid())
        time.sleep(3.0)  # three retention periods
        parts = [TopicPartition(topic, p) for p in (0, 1)]
        ends = consumer.end_offsets(parts)
        out["earliest_offsets_after_3_retention_periods"] = sum(consumer.beginning_offsets(parts).values())
        out["end_offsets"] = sum(ends.values())
        try:
            admin.delete_records({tp: ends[tp] for tp in parts})
            out["delete_records"] = "accepted"
        except Exception as error:  # noqa: BLE001 - the broker's answer is the finding
            out["delete_records"] = f"failed: {error!r}"
        out["earliest_offsets_after_delete_records"] = sum(KafkaConsumer(
            bootstrap_servers=kafka.url).beginning_offsets(parts).values())
        out["rss_mb_after_delete_records"] = rss_mb(kafka.pid())
        admin.delete_topics([topic])
        time.sleep(1.0)
        out["rss_mb_after_delete_topic"] = rss_mb(kafka.pid())
    finally:
        consumer.close()
        admin.close()
    return out


def measure(name: str, deployment: Deployment, load: Any, fault: Any, settle_s: float = 2.0,
            victim: Any = None) -> dict[str, Any]:
    """Run ``fault`` under the load; counts over the fault's window and the time back to full strength.
    ``victim()`` names the service the fault kills (its recovery's phases are read afterwards)."""
    from easel.chaos import wait_for

    wait_for(deployment.full_strength, 120, f"full strength before {name}")
    if STANDBYS:
        wait_for(deployment.standby_ready, 120, f"a ready standby before {name}")
    before = load.snapshot()
    target = victim() if victim is not None else None
    began = time.monotonic()
    killed_at = time.time()
    fault()
    back_s = None
    try:
        wait_for(deployment.full_strength, 120, f"full strength after {name}", every_s=0.1)
        served_mark = load.snapshot().served
        wait_for(lambda: load.snapshot().served > served_mark, 60, f"a request served after {name}", every_s=0.05)
        back_s = time.monotonic() - began
    except AssertionError as error:
        log(f"  {name}: {error}")
    if STANDBYS:
        try:
            wait_for(deployment.standby_ready, 120, f"a ready standby after {name}", every_s=0.1)
            spare_s: float | None = round(time.monotonic() - began, 2)
        except AssertionError:
            spare_s = None
    time.sleep(settle_s)
    after = load.snapshot()
    counts = {key: value - getattr(before, key) for key, value in after.as_dict().items()
              if isinstance(value, int)}
    result = {"fault": name, "back_to_full_strength_s": None if back_s is None else round(back_s, 2), **counts,
              "machine_load_average_1m": round(os.getloadavg()[0], 2), "_killed_at": killed_at}
    if STANDBYS:
        result["standby_ready_again_s"] = spare_s  # the spare's own replacement: loaded and waiting again
    if target is not None:
        try:
            result["phases_s"] = deployment.phases(target, killed_at)
        except Exception as error:  # noqa: BLE001 - the accounting is informative; a gap must not end the run
            result["phases_s"] = {"error": repr(error)}
        log(f"  {name} phases (s after the kill): {result['phases_s']}")
    if name != "admin restart":
        result.pop("_killed_at")
    log(f"  {name:<22} back in {result['back_to_full_strength_s']} s; accepted {counts['instances_accepted']}, "
        f"served {counts['served']}, dropped {counts['dropped']}, unanswered {counts['unanswered']}, "
        f"refused {counts['refused']}, lost in flight {counts['lost_in_flight']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one worker kill instead of three")
    parser.add_argument("--faults", default="all", help="comma-separated subset of: worker, predictor, broker, "
                        "redis, postgres, admin, overload, or none (default all, written to chaos.json; a subset "
                        "to its own file)")
    parser.add_argument("--model-cache", type=Path, default=None,
                        help="a folder for the trained model: a later run with the same folder skips training")
    parser.add_argument("--rotate-mb", type=float, default=None,
                        help="EASEL_SERVING_TOPIC_ROTATE_MB for the job (0: one requests topic for its life)")
    parser.add_argument("--broker-window-s", type=float, default=BROKER_WINDOW_S,
                        help="the fault-free window over which the broker's memory per served instance is measured")
    args = parser.parse_args()
    chosen = set(FAULTS) if args.faults == "all" else set() if args.faults == "none" else set(args.faults.split(","))
    if not chosen <= set(FAULTS):
        parser.error(f"--faults: unknown {sorted(chosen - set(FAULTS))}; choose from {', '.join(FAULTS)}")
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    bench = _serving_benchmark()
    from easel.stack.process import free_port

    stack, data_dir = bench.start_stack()
    os.environ.update({"EASEL_SERVING_STANDBY_WORKERS": str(STANDBYS), "EASEL_SUPERVISOR_BACKOFF_BASE_S": "0.5",
                       "EASEL_SUPERVISOR_BACKOFF_CAP_S": "4", "EASEL_SERVING_THREADS": "1",
                       "EASEL_LAUNCH_SERVICES": "1",
                       "EASEL_ADMIN_PORT": str(free_port())})
    if args.rotate_mb is not None:
        os.environ["EASEL_SERVING_TOPIC_ROTATE_MB"] = str(args.rotate_mb)
    from admin.services.orchestration import launch_inference_job
    from admin.state import AdminState
    from easel.chaos import SteadyLoad, health
    from easel.db.enums import ServiceKind
    from easel.db.session import make_engine, make_sessionmaker
    from easel.settings import get_settings
    from easel.stack.admin_server import AdminPart
    from easel.stack.job_services import JobServices

    settings = get_settings()
    admin = AdminPart(settings)
    results: list[dict[str, Any]] = []
    broker: dict[str, Any] = {}
    try:
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        folder = data_dir / "bench"
        folder.mkdir()
        # A narrower network than the serving benchmark's (1024 units): faults are about the pipeline, and
        # training the 4096-unit one takes minutes on a busy machine.
        bench.TEMPLATE_SOURCE = bench.TEMPLATE_SOURCE.replace("FixedKnob(4096)", "FixedKnob(1024)")
        log("training the sliced MLP ...")
        setup = bench.train_and_deploy(settings, sessions, folder, args.model_cache)
        admin.start()
        state = AdminState.from_settings(settings)
        launch_inference_job(state, setup["job_id"], "bench", 1)
        deployment = Deployment(settings, sessions, setup["job_id"])
        from easel.chaos import process_alive, wait_for

        url = wait_for(lambda: deployment.url if deployment.full_strength() else None, 180, "the deployment")
        from easel.db.session import session_scope
        from easel.predictor_keys import issue_key

        with session_scope(sessions) as session:  # the predictor answers only its job's API keys
            key = issue_key(session, setup["job_id"], "chaos-benchmark")[1]
        batch = np.asarray(setup["x"][:N]).tolist()
        # the URL is read once: a relaunched predictor keeps it, and the load must not depend on PostgreSQL
        from tests.serving.serving_helpers import sdk_send

        load = SteadyLoad(lambda: url, batch, DEADLINE_S, threads=THREADS, send=sdk_send(RETRY_WINDOW_S, key))
        load.start()
        # The broker's growth per served instance, over a fault-free window of the steady load.
        time.sleep(3.0)
        first, broker_before = load.snapshot(), rss_mb(stack.kafka.pid())
        peak = broker_before or 0.0
        window_ends = time.monotonic() + args.broker_window_s
        while time.monotonic() < window_ends:
            time.sleep(1.0)
            peak = max(peak, rss_mb(stack.kafka.pid()) or 0.0)
        last, broker_after = load.snapshot(), rss_mb(stack.kafka.pid())
        topic = (health(url) or {}).get("requests_topic") or {}
        broker.update({"window_s": args.broker_window_s, "rotate_mb": get_settings().serving_topic_rotate_mb,
                       "rotations": topic.get("rotations"), "generation": topic.get("generation"),
                       "rss_mb_before": broker_before, "rss_mb_after": broker_after, "rss_mb_peak": peak,
                       **{key: getattr(last, key) - getattr(first, key) for key in (
                           "instances_accepted", "served", "dropped", "dropped_at_deadline", "unanswered")}})
        if broker_before and broker_after:
            broker["kb_per_instance"] = round((broker_after - broker_before) * 1024
                                              / max(1, broker["instances_accepted"]), 3)
        log(f"broker memory under the steady load: {broker}")
        log("faults under a steady load:")

        def kill(kind: Any, index: int = 0) -> Any:
            def fault() -> None:
                pid = deployment.running(kind)[index].pid
                os.kill(pid, signal.SIGKILL)
                # On a busy machine a SIGKILLed process can look alive for a moment; the fault has happened
                # once it is gone (else full strength would be "seen" before the loss).
                wait_for(lambda: not process_alive(pid), 30, "the killed process to be gone", every_s=0.01)

            return fault

        def restart(part: Any) -> Any:
            return lambda: (part.stop(), part.start())

        def restart_admin() -> None:
            pid = admin.pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).wait(10)  # gone, and its port with it
            admin.start()

        def running(kind: Any, index: int = 0) -> Any:
            return lambda: deployment.running(kind)[index]

        if "worker" in chosen:
            for round_no in range(1 if args.quick else 3):
                victim = running(ServiceKind.INFERENCE_WORKER, round_no % 2)
                results.append(measure(f"inference worker #{round_no + 1}", deployment, load,
                                       kill(ServiceKind.INFERENCE_WORKER, round_no % 2), victim=victim))
        if "predictor" in chosen:
            results.append(measure("predictor", deployment, load, kill(ServiceKind.PREDICTOR),
                                   victim=running(ServiceKind.PREDICTOR)))
        for fault, name, part in (("broker", "broker restart", stack.kafka), ("redis", "redis restart", stack.redis),
                                  ("postgres", "postgres restart", stack.postgres)):
            if fault in chosen:
                results.append(measure(name, deployment, load, restart(part)))
        if "admin" in chosen:
            results.append(measure("admin restart", deployment, load, restart_admin))
            results[-1]["phases_s"] = admin_phases(admin.url, results[-1].pop("_killed_at"))
            log(f"  admin restart phases (s after the kill): {results[-1]['phases_s']}")
        burst_batch = np.concatenate([setup["x"]] * 6)[:2000].tolist()

        def overload() -> None:
            with SteadyLoad(lambda: url, burst_batch, DEADLINE_S, threads=8, api_key=key) as burst:
                time.sleep(10.0)
            results.append({"fault": "10x overload burst (10 s)", **burst.tally.as_dict(),
                            "predictor_health": health(url)})

        if "overload" in chosen:
            results.append(measure("after overload burst", deployment, load, overload))
        load.stop()
        broker["retention_probe"] = retention_probe(stack.kafka)
        log(f"retention probe: {broker['retention_probe']}")
        state.close()
    finally:
        admin.stop()
        jobs = JobServices(settings)  # what `easel down --force` does: no service outlives the stack
        try:
            jobs.stop_all(timeout_s=5.0)
        finally:
            jobs.close()
        stack.down()
        shutil.rmtree(data_dir, ignore_errors=True)
    def worst(prefix: str) -> float | None:
        times = [r["back_to_full_strength_s"] for r in results if r["fault"].startswith(prefix)]
        return max((t if t is not None else float("inf")) for t in times) if times else None

    summary = {
        "unanswered_total": sum(int(r.get("unanswered", 0)) for r in results),
        "target_unanswered": 0,
        "max_back_s": {"inference worker": worst("inference worker"), "predictor": worst("predictor"),
                       # admin's own restart (imports, migrations check): serving is not weakened meanwhile
                       "admin": worst("admin")},
        "target_back_s": TARGET_BACK_S,
    }
    singles = [t for t in summary["max_back_s"].values() if t is not None]
    summary["max_back_s_single_process"] = max(singles) if singles else None
    summary["met"] = (summary["unanswered_total"] == 0 and bool(singles) and max(singles) <= TARGET_BACK_S)
    summary["machine_load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    log(json.dumps(summary))
    # a subset run (e.g. the relaunch path alone: EASEL_SERVING_STANDBY_WORKERS=0 --faults worker) has its own file
    path = RESULTS if chosen == set(FAULTS) else RESULTS.with_name(
        f"chaos-{'-'.join(sorted(chosen)) or 'broker'}-standby{STANDBYS}"
        f"{'' if args.rotate_mb is None else f'-rotate{args.rotate_mb:g}'}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "load": {
        "threads": THREADS, "instances": N, "deadline_s": DEADLINE_S, "retry_window_s": RETRY_WINDOW_S},
        "standby_workers": STANDBYS, "kafka_session_timeout_ms": get_settings().kafka_session_timeout_ms,
        "counts": COUNTS, "machine_load_average_at_start": load_at_start, "faults": results, "summary": summary,
        "broker_memory": broker},
        indent=2, default=str))
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
