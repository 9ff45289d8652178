"""Chaos benchmark on the real stack → ``benchmarks/results/chaos.json``.

A private local stack (PostgreSQL, Redis, the Kafka-protocol broker) and a real admin process (its supervisor
relaunches what dies) serve one inference job — a predictor and two inference workers of the sliced MLP
(``benchmarks/serving.py``'s template at 1024 units, trained here) — under a steady load from client threads. One fault at
a time: SIGKILL an inference worker (three times in a row), SIGKILL the predictor, restart the broker, Redis,
PostgreSQL and admin, and a 10x overload burst. Per fault: the load's counts while it lasted (requests
accepted, refused, lost in flight; instances accepted, served, dropped, unanswered) and the time from the
fault to full strength again (every worker running and registered, the predictor healthy, a request served),
as this script measured it.

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
        from easel.db.enums import ServiceStatus

        return [s for s in self.services(kind) if s.status == ServiceStatus.RUNNING]

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
        return len(workers) == 2 and wanted <= set(live) and state is not None and state.get("status") == "ok"


def measure(name: str, deployment: Deployment, load: Any, fault: Any, settle_s: float = 2.0) -> dict[str, Any]:
    """Run ``fault`` under the load; counts over the fault's window and the time back to full strength."""
    from easel.chaos import wait_for

    wait_for(deployment.full_strength, 120, f"full strength before {name}")
    before = load.snapshot()
    began = time.monotonic()
    fault()
    back_s = None
    try:
        wait_for(deployment.full_strength, 120, f"full strength after {name}", every_s=0.1)
        served_mark = load.snapshot().served
        wait_for(lambda: load.snapshot().served > served_mark, 60, f"a request served after {name}", every_s=0.05)
        back_s = time.monotonic() - began
    except AssertionError as error:
        log(f"  {name}: {error}")
    time.sleep(settle_s)
    after = load.snapshot()
    counts = {key: value - getattr(before, key) for key, value in after.as_dict().items() if key != "codes"}
    result = {"fault": name, "back_to_full_strength_s": None if back_s is None else round(back_s, 2), **counts}
    log(f"  {name:<22} back in {result['back_to_full_strength_s']} s; accepted {counts['instances_accepted']}, "
        f"served {counts['served']}, dropped {counts['dropped']}, unanswered {counts['unanswered']}, "
        f"refused {counts['refused']}, lost in flight {counts['lost_in_flight']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one worker kill instead of three")
    args = parser.parse_args()
    bench = _serving_benchmark()
    from easel.stack.process import free_port

    stack, data_dir = bench.start_stack()
    os.environ.update({"EASEL_LAUNCH_SERVICES": "1", "EASEL_SUPERVISOR_BACKOFF_BASE_S": "0.5",
                       "EASEL_SUPERVISOR_BACKOFF_CAP_S": "4", "EASEL_SERVING_THREADS": "1",
                       "EASEL_ADMIN_PORT": str(free_port())})
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
    try:
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        folder = data_dir / "bench"
        folder.mkdir()
        # A narrower network than the serving benchmark's (1024 units): faults are about the pipeline, and
        # training the 4096-unit one takes minutes on a busy machine.
        bench.TEMPLATE_SOURCE = bench.TEMPLATE_SOURCE.replace("FixedKnob(4096)", "FixedKnob(1024)")
        log("training the sliced MLP ...")
        setup = bench.train_and_deploy(settings, sessions, folder)
        admin.start()
        state = AdminState.from_settings(settings)
        launch_inference_job(state, setup["job_id"], "bench", 1)
        deployment = Deployment(settings, sessions, setup["job_id"])
        from easel.chaos import wait_for

        url = wait_for(lambda: deployment.url if deployment.full_strength() else None, 180, "the deployment")
        from easel.db.session import session_scope
        from easel.predictor_keys import issue_key

        with session_scope(sessions) as session:  # the predictor answers only its job's API keys
            key = issue_key(session, setup["job_id"], "chaos-benchmark")[1]
        batch = np.asarray(setup["x"][:N]).tolist()
        # the URL is read once: a relaunched predictor keeps it, and the load must not depend on PostgreSQL
        load = SteadyLoad(lambda: url, batch, DEADLINE_S, threads=THREADS, api_key=key)
        load.start()
        log("faults under a steady load:")

        def kill(kind: Any, index: int = 0) -> Any:
            return lambda: os.kill(deployment.running(kind)[index].pid, signal.SIGKILL)

        def restart(part: Any) -> Any:
            return lambda: (part.stop(), part.start())

        def restart_admin() -> None:
            pid = admin.pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).wait(10)  # gone, and its port with it
            admin.start()

        for round_no in range(1 if args.quick else 3):
            results.append(measure(f"inference worker #{round_no + 1}", deployment, load,
                                   kill(ServiceKind.INFERENCE_WORKER, round_no % 2)))
        results.append(measure("predictor", deployment, load, kill(ServiceKind.PREDICTOR)))
        results.append(measure("broker restart", deployment, load, restart(stack.kafka)))
        results.append(measure("redis restart", deployment, load, restart(stack.redis)))
        results.append(measure("postgres restart", deployment, load, restart(stack.postgres)))
        results.append(measure("admin restart", deployment, load, restart_admin))
        burst_batch = np.concatenate([setup["x"]] * 6)[:2000].tolist()

        def overload() -> None:
            with SteadyLoad(lambda: url, burst_batch, DEADLINE_S, threads=8, api_key=key) as burst:
                time.sleep(10.0)
            results.append({"fault": "10x overload burst (10 s)", **burst.tally.as_dict(),
                            "predictor_health": health(url)})

        results.append(measure("after overload burst", deployment, load, overload))
        load.stop()
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
    single = [r for r in results if r["fault"].startswith(("inference worker", "predictor", "admin"))]
    summary = {
        "unanswered_total": sum(int(r.get("unanswered", 0)) for r in results),
        "target_unanswered": 0,
        "max_back_s_single_process": max((r["back_to_full_strength_s"] or float("inf")) for r in single),
        "target_back_s": TARGET_BACK_S,
    }
    summary["met"] = summary["unanswered_total"] == 0 and summary["max_back_s_single_process"] <= TARGET_BACK_S
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "load": {
        "threads": THREADS, "instances": N, "deadline_s": DEADLINE_S}, "faults": results, "summary": summary},
        indent=2, default=str))
    log(json.dumps(summary))
    log(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
