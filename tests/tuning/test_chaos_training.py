"""Training under faults, with real processes over the session's real Redis and PostgreSQL: idle workers
outlive many blocking waits, and a Redis outage loses no trial, errors nothing and kills no service."""

from __future__ import annotations

import time

from test_tuning_e2e import advisor_spec, make_job, sub_status, trials_of, wait_for, worker_spec

from easel.db.enums import JobStatus, ServiceStatus, TrialStatus
from easel.redis_client import MAX_BLOCK_S, make_redis
from easel.tuning import TuningChannel

IDLE_S = 30.0  # several times the BRPOP wait (MAX_BLOCK_S) a worker blocks in
OUTAGE_S = 15.0  # five of the services' 3 s trial leases, and longer than a socket timeout's least (10 s)


def test_idle_train_workers_survive_without_proposals(settings, sessions, launcher) -> None:
    sub_id = make_job(settings, sessions, trials=1)
    worker = launcher.start(worker_spec(sub_id))  # no advisor: nothing is ever proposed
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id)
    wait_for(lambda: len(channel.workers()) == 1, 60, "the worker to announce itself")
    waited_until = time.monotonic() + IDLE_S
    alive_checks = 0
    while time.monotonic() < waited_until:
        assert launcher.status(worker.id).status == ServiceStatus.RUNNING, "the idle worker died"
        alive_checks += 1
        time.sleep(1.0)
    assert alive_checks >= IDLE_S / MAX_BLOCK_S, "the worker stayed idle across several blocking waits"
    assert len(channel.workers()) == 1
    with open(worker.log_path) as handle:
        log = handle.read()
    assert "Traceback" not in log and "retrying" not in log, log[-2000:]


def test_a_redis_outage_loses_no_trial_and_errors_nothing(settings, sessions, launcher, local_stack) -> None:
    sub_id = make_job(settings, sessions, trials=4)
    services = [launcher.start(advisor_spec(sub_id)), launcher.start(worker_spec(sub_id)),
                launcher.start(worker_spec(sub_id))]
    wait_for(lambda: any(t.status == TrialStatus.RUNNING for t in trials_of(sessions, sub_id)), 60, "a running trial")
    local_stack.redis.stop()
    outage_until = time.monotonic() + OUTAGE_S
    while time.monotonic() < outage_until:
        time.sleep(1.0)
    local_stack.redis.start()
    wait_for(lambda: sub_status(sessions, sub_id) == JobStatus.COMPLETED, 180, "the sub-job to complete")
    trials = trials_of(sessions, sub_id)
    assert [t.no for t in trials] == [1, 2, 3, 4], "no trial lost or numbered twice"
    assert all(t.status == TrialStatus.COMPLETED for t in trials), [(t.no, t.status, t.error) for t in trials]
    # Every service rode the outage out: none died (nothing relaunched them here), all exited cleanly.
    wait_for(lambda: all(launcher.status(s.id).status == ServiceStatus.STOPPED for s in services), 60,
             "every service to exit cleanly")
