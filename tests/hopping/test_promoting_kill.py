"""The promoting ASHA with real processes (advisor + 2 train workers over the session's PostgreSQL and Redis; the
uploaded template runs in the sandbox): the worker running a promoted trial's stretch (epoch 1 → 4, three
units) is SIGKILLed mid-stretch. The advisor re-issues the stretch from where the trial's last checkpoint left
it, the other worker resumes it there, the kill costs at most the unit in flight, every trial ends accounted for
(completed, or pruned where it paused) and the job completes. Everything asserted is a count or an event the
system recorded."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from hopping_jobs import make_sub_job
from sqlalchemy import select
from unit_template import SlowCounter

from easel.db.enums import JobStatus, ServiceKind, TrialStatus
from easel.db.models import SubTrainJob, Trial, TrialLog
from easel.db.session import session_scope
from easel.launcher import ServiceSpec
from easel.redis_client import make_redis
from easel.tuning import TuningChannel
from easel.work_lost import attribute_kills

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tuning"))
from test_tuning_e2e import wait_for  # noqa: E402 - the tuning tests' poll-with-timeout

TRIALS, EPOCHS = 4, 4  # η = 4 from epoch 1: rungs at epochs 1 and 4, so the one promotion is a 3-unit stretch
BUDGET = {"MODEL_TRIAL_COUNT": TRIALS, "PRUNER": "asha_promote", "ASHA_MIN_EPOCHS": 1, "ASHA_REDUCTION_FACTOR": 4,
          "EARLY_STOP": True, "WORKERS": 2}


def _spec(kind: ServiceKind, sub_id: str) -> ServiceSpec:
    module = "advisor" if kind == ServiceKind.ADVISOR else "train_worker"
    extra = ["--backend", "random", "--seed", "0"] if kind == ServiceKind.ADVISOR else []
    return ServiceSpec(name=module.replace("_", "-"), kind=kind, sub_train_job_id=sub_id,
                       argv=[sys.executable, "-m", module, "--sub-train-job-id", sub_id, "--lease-s", "3", *extra])


def _worker_id(service_id: str) -> str:
    return f"worker-{service_id}"[:48]  # as a train worker names itself (train_worker/__main__.py)


def _wait_for_event(channel: TuningChannel, wanted, timeout_s: float) -> dict:  # noqa: ANN001
    """The first event ``wanted`` accepts, read as the stream grows (XREAD BLOCK: no polling delay)."""
    last, deadline = "0", os.times().elapsed + timeout_s
    while os.times().elapsed < deadline:
        for entry_id, event in channel.read_events(last, block_s=1.0):
            last = entry_id
            if wanted(event):
                return event
    raise AssertionError("timed out waiting for the event")


def test_a_worker_killed_mid_stretch_costs_at_most_one_unit_and_the_stretch_resumes(settings, sessions,  # noqa: ANN001
                                                                                   launcher) -> None:
    sub_id = make_sub_job(settings, sessions, template=SlowCounter, dataset=b"unused", budget=BUDGET)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id)
    try:
        launcher.start(_spec(ServiceKind.ADVISOR, sub_id))
        workers = {_worker_id(w.id): w for w in (launcher.start(_spec(ServiceKind.TRAIN_WORKER, sub_id))
                                                 for _ in range(2))}
        # Unit 3 runs only in the promoted stretch (epoch 1 → 4): when it starts, unit 2 of the stretch is
        # checkpointed and unit 4 is still to come, so the kill lands mid-stretch.
        started = _wait_for_event(channel, lambda e: e["type"] == "unit_started" and e["unit"] == 3, 240)
        victim = workers[started["worker"]]
        os.kill(victim.pid, signal.SIGKILL)
        wait_for(lambda: _sub_job(sessions, sub_id).status == JobStatus.COMPLETED, 240,
                 "the sub-job to complete after the kill")
        events = [e for _id, e in channel.read_events("0", block_s=0.1, count=10_000)]
        with session_scope(sessions) as session:
            trials = list(session.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id).order_by(Trial.no)))
            promoted = next(t for t in trials if t.id == started["trial"])
            logs = list(session.scalars(select(TrialLog.message).where(TrialLog.trial_id == promoted.id)
                                        .order_by(TrialLog.id)))
    finally:
        channel.reset()

    # Every trial accounted for: the promoted one completed, the others pruned where they paused.
    assert len(trials) == TRIALS
    assert promoted.status == TrialStatus.COMPLETED, promoted.error
    assert promoted.progress["units_done"] == EPOCHS and promoted.score is not None
    for trial in trials:
        if trial.id != promoted.id:
            assert trial.status == TrialStatus.TERMINATED, (trial.no, trial.status, trial.error)
            assert trial.error.startswith("pruned by ASHA (promoting): paused at epoch 1 and never promoted")

    # The kill cost at most the unit in flight, and nothing else was trained twice.
    audit = attribute_kills(events, [started["worker"]])
    (kill,) = audit.kills
    # (no unit in flight: it died between a unit's end and the next one's start)
    assert kill.trial == promoted.id and kill.unit in (None, 3, 4), f"the victim was on the stretch: {kill}"
    assert kill.units_lost <= 1 and audit.unattributed == 0, audit.to_json()
    unit_starts = [e for e in events if e["type"] == "unit_started"]
    assert len(unit_starts) == TRIALS * 1 + (EPOCHS - 1) + kill.units_lost

    # The advisor re-issued the stretch as a new attempt up to the same rung, from the last checkpoint, and the
    # surviving worker resumed it there (SlowCounter raises if handed the state of another unit).
    stretches = [e for e in events if e["type"] == "stretch_proposed" and e["trial"] == promoted.id]
    assert [(s["from_epoch"], s["until_epoch"], s["attempt"]) for s in stretches[:2]] == [(0, 1, 1), (1, 4, 1)]
    (reissued,) = stretches[2:]
    assert (reissued["until_epoch"], reissued["attempt"]) == (EPOCHS, 2)
    resumed_from = reissued["from_epoch"]
    assert resumed_from in (2, 3), "units 2 (and perhaps 3) were checkpointed before the kill"
    after_kill = [e for e in unit_starts[unit_starts.index(started):] if e["trial"] == promoted.id
                  and e["worker"] != started["worker"]]
    assert [e["unit"] for e in after_kill] == list(range(resumed_from + 1, EPOCHS + 1))
    assert f"resuming after unit {resumed_from} of {EPOCHS} from its checkpoint" in logs


def _sub_job(sessions, sub_id: str) -> SubTrainJob:  # noqa: ANN001
    with session_scope(sessions) as session:
        return session.get_one(SubTrainJob, sub_id)
