"""Chaos on the real serving stack: under a steady load from client threads, kill or restart one part at a
time and count what happened to every instance (``easel.chaos``). Assertions are counts, never times.

The module deploys its own inference job (two workers) from the session's trained app; tests run in order.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import redis
from serving_helpers import Deployed
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from easel.chaos import SteadyLoad, Tally, health, process_alive, wait_for
from easel.db.enums import ServiceKind, ServiceStatus
from easel.db.models import InferenceJob, Service
from easel.db.session import session_scope
from easel.serving import live_workers, workers_key
from easel.settings import Settings

LOAD = {"threads": 2, "deadline_s": 2.0}
N = 32  # instances per request
MAX_INFLIGHT = 6000  # the predictor's memory bound here (EASEL_SERVING_MAX_INFLIGHT_INSTANCES)


@pytest.fixture(scope="module", autouse=True)
def predictor_bounds() -> Iterator[None]:
    """The services this module launches inherit these (the local launcher passes the environment on)."""
    saved = os.environ.get("EASEL_SERVING_MAX_INFLIGHT_INSTANCES")
    os.environ["EASEL_SERVING_MAX_INFLIGHT_INSTANCES"] = str(MAX_INFLIGHT)
    yield
    if saved is None:
        os.environ.pop("EASEL_SERVING_MAX_INFLIGHT_INSTANCES", None)
    else:
        os.environ["EASEL_SERVING_MAX_INFLIGHT_INSTANCES"] = saved


def services(sessions: sessionmaker[Session], job_id: str, kind: ServiceKind) -> list[Service]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(Service).where(Service.inference_job_id == job_id, Service.kind == kind)
                                    .order_by(Service.created_at)))


def running(sessions: sessionmaker[Session], job_id: str, kind: ServiceKind) -> list[Service]:
    return [s for s in services(sessions, job_id, kind) if s.status == ServiceStatus.RUNNING]


def weakness(sessions: sessionmaker[Session], settings: Settings, deployed: Deployed) -> str | None:
    """What keeps the job from full strength (None at full strength): every worker it asked for runs and is
    registered live, its predictor runs, and the predictor says ok."""
    job_id = deployed.job.id
    workers = running(sessions, job_id, ServiceKind.INFERENCE_WORKER)
    predictors = running(sessions, job_id, ServiceKind.PREDICTOR)
    dead = [s.name for s in workers + predictors if not process_alive(s.pid)]
    if dead:
        return f"recorded RUNNING but gone: {dead}"  # killed, and the supervisor has not noticed yet
    if len(workers) != 2 or len(predictors) != 1:
        return f"{len(workers)} workers and {len(predictors)} predictors running"
    client = redis.Redis.from_url(settings.resolved_redis_url)
    try:
        live = live_workers(client.hgetall(workers_key(job_id)), time.time())
    finally:
        client.close()
    missing = {f"worker-{s.id[:8]}" for s in workers} - set(live)
    if missing:
        return f"not registered live: {sorted(missing)}"
    state = health(deployed.job.predictor_url)
    if state is None or state.get("status") != "ok":
        return f"predictor health: {state}"
    return None


def full_strength(sessions: sessionmaker[Session], settings: Settings, deployed: Deployed) -> bool:
    return weakness(sessions, settings, deployed) is None


def wait_full_strength(sessions: sessionmaker[Session], settings: Settings, deployed: Deployed, timeout_s: float,
                       what: str) -> None:
    last: list[str | None] = [None]

    def check() -> bool:
        last[0] = weakness(sessions, settings, deployed)
        return last[0] is None

    try:
        wait_for(check, timeout_s, what)
    except AssertionError as error:
        raise AssertionError(f"{error}; still: {last[0]}") from None


def load(deployed: Deployed) -> SteadyLoad:
    batch = np.asarray(deployed.x[:N]).tolist()
    return SteadyLoad(lambda: deployed.job.predictor_url, batch, LOAD["deadline_s"], threads=LOAD["threads"],
                      api_key=deployed.key)


def assert_every_accepted_instance_answered_once(tally: Tally) -> None:
    assert tally.accepted > 0, tally
    assert tally.unanswered == 0 and tally.lost_in_flight == 0, tally
    assert tally.other_errors == 0, tally
    assert tally.served + tally.dropped == tally.instances_accepted, tally


class StatusWatch:
    """Records every status the inference job shows while it runs (polled every 50 ms)."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str) -> None:
        self.sessions, self.job_id = sessions, job_id
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with session_scope(self.sessions) as session:
                status = session.get_one(InferenceJob, self.job_id).status.value
            if not self.seen or self.seen[-1] != status:
                self.seen.append(status)


def test_a_killed_worker_three_times_in_a_row_loses_nothing(deployed: Deployed, sessions, serving_settings) -> None:
    wait_full_strength(sessions, serving_settings, deployed, 60, "full strength")
    with load(deployed) as steady, StatusWatch(sessions, deployed.job.id) as watch:
        for round_no in range(3):
            victim = running(sessions, deployed.job.id, ServiceKind.INFERENCE_WORKER)[round_no % 2]
            served_before = steady.snapshot().served
            os.kill(victim.pid, signal.SIGKILL)
            # The survivor takes over the victim's partitions and serves on while the victim is relaunched.
            wait_for(lambda: steady.snapshot().served >= served_before + 4 * N, 60, "serving after the kill")  # noqa: B023
            wait_full_strength(sessions, serving_settings, deployed, 90, f"full strength after kill {round_no + 1}")
        served_before = steady.snapshot().served
        wait_for(lambda: steady.snapshot().served >= served_before + 4 * N, 60, "serving at full strength")
    tally = steady.tally
    assert_every_accepted_instance_answered_once(tally)
    workers = services(sessions, deployed.job.id, ServiceKind.INFERENCE_WORKER)
    assert sum(s.status == ServiceStatus.ERRORED for s in workers) == 3, [(s.name, s.status) for s in workers]
    assert sum(s.status == ServiceStatus.RUNNING for s in workers) == 2
    # honest status: DEGRADED while a worker was missing, RUNNING again once it was back — three times
    assert watch.seen == ["RUNNING", "DEGRADED"] * 3 + ["RUNNING"], watch.seen


def test_a_killed_predictor_is_relaunched_on_its_url(deployed: Deployed, sessions, serving_settings) -> None:
    wait_full_strength(sessions, serving_settings, deployed, 60, "full strength")
    predictor = running(sessions, deployed.job.id, ServiceKind.PREDICTOR)[0]
    with load(deployed) as steady:
        wait_for(lambda: steady.snapshot().served >= 4 * N, 60, "serving before the kill")
        os.kill(predictor.pid, signal.SIGKILL)
        wait_full_strength(sessions, serving_settings, deployed, 90, "a relaunched predictor")
        at_relaunch = steady.snapshot()
        wait_for(lambda: steady.snapshot().served >= at_relaunch.served + 4 * N, 60, "serving after the relaunch")
    tally = steady.tally
    # Requests sent to the killed process were lost with it (the client got an error, not a hang): the one in
    # flight on each thread, and any retry that reached the dying process's listen backlog before the kernel
    # closed it — so their number is not bounded by the thread count. What is bounded: nothing is lost once
    # the replacement serves, and every request the new predictor accepted was answered.
    assert tally.lost_in_flight == at_relaunch.lost_in_flight, (at_relaunch, tally)
    assert tally.unanswered == tally.lost_in_flight * N and tally.other_errors == 0, tally
    assert tally.served + tally.dropped == tally.instances_accepted, tally
    predictors = services(sessions, deployed.job.id, ServiceKind.PREDICTOR)
    assert [s.status for s in predictors] == [ServiceStatus.ERRORED, ServiceStatus.RUNNING]
    assert predictors[1].port == predictor.port


def test_without_workers_health_and_predict_say_unavailable(deployed: Deployed, sessions, serving_settings) -> None:
    wait_full_strength(sessions, serving_settings, deployed, 60, "full strength")
    url = deployed.job.predictor_url
    for worker in running(sessions, deployed.job.id, ServiceKind.INFERENCE_WORKER):
        os.kill(worker.pid, signal.SIGSTOP)  # alive to the launcher, silent to the registry: no relaunch
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 503, 60, "health to say unavailable")
        answer = httpx.post(f"{url}/predict", json={"instances": np.asarray(deployed.x[:2]).tolist(),
                                                     "deadline_s": 1.0}, timeout=10, headers=deployed.auth)
        assert answer.status_code == 503 and answer.json()["error"] == "unavailable", answer.text
        assert "retry-after" in answer.headers
        assert json.loads(httpx.get(f"{url}/health", timeout=5).text)["workers_ready"] == 0
    finally:
        for worker in running(sessions, deployed.job.id, ServiceKind.INFERENCE_WORKER):
            os.kill(worker.pid, signal.SIGCONT)
    wait_full_strength(sessions, serving_settings, deployed, 60, "full strength again")


@pytest.mark.parametrize("part", ["redis", "kafka", "postgres"])
def test_a_restarted_server_is_ridden_out(part: str, deployed: Deployed, sessions, serving_settings,
                                          local_stack) -> None:
    wait_full_strength(sessions, serving_settings, deployed, 60, "full strength")
    server = next(p for p in local_stack.parts if p.name == part)
    with load(deployed) as steady:
        wait_for(lambda: steady.snapshot().served >= 4 * N, 60, "serving before the restart")
        server.stop()
        server.start()
        wait_full_strength(sessions, serving_settings, deployed, 120, f"full strength after {part}")
        served_before = steady.snapshot().served
        wait_for(lambda: steady.snapshot().served >= served_before + 4 * N, 120, f"serving after {part} restarted")
    tally = steady.tally
    assert_every_accepted_instance_answered_once(tally)
    workers = services(sessions, deployed.job.id, ServiceKind.INFERENCE_WORKER)
    predictors = services(sessions, deployed.job.id, ServiceKind.PREDICTOR)
    assert not [s.name for s in workers + predictors if s.status == ServiceStatus.ERRORED
                and s.created_at > predictors[-1].created_at], "no service died of the restart"


def test_overload_is_refused_at_once_and_what_is_accepted_is_answered_in_time(deployed: Deployed, sessions,
                                                                              serving_settings) -> None:
    """About 10x what two workers can do at full width: the excess is refused with 429 + Retry-After, every
    accepted instance is answered by its deadline plus the predictor's margin (as the predictor recorded it),
    its instances in flight stay under the configured bound, and normal traffic is served right after."""
    wait_full_strength(sessions, serving_settings, deployed, 60, "full strength")
    url = deployed.job.predictor_url
    before = health(url)
    assert before is not None
    big = np.concatenate([deployed.x] * 6)[:2000].tolist()
    with SteadyLoad(lambda: url, big, 1.0, threads=8, api_key=deployed.key) as burst:
        wait_for(lambda: burst.snapshot().refused >= 5 and burst.snapshot().accepted >= 5, 120, "refusals")
    overloaded = burst.tally
    assert overloaded.codes.get("429", 0) >= 5, overloaded
    assert overloaded.unanswered == 0 and overloaded.other_errors == 0, overloaded
    assert overloaded.served + overloaded.dropped == overloaded.instances_accepted, overloaded
    after = health(url)
    assert after is not None
    assert after["late_tasks"] == before["late_tasks"], f"every accepted task answered by deadline + margin: {after}"
    assert after["peak_inflight_instances"] <= after["max_inflight_instances"] == MAX_INFLIGHT
    assert after["inflight_instances"] == 0 and after["queued_work_s"] == 0
    with load(deployed) as normal:
        wait_for(lambda: normal.snapshot().served >= 4 * N, 60, "normal traffic served after the burst")
    assert normal.tally.refused == 0 and normal.tally.unanswered == 0, normal.tally
