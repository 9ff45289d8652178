"""MOP mode end to end with real processes (advisor + 2 train workers over the session's PostgreSQL and Redis;
the uploaded template runs in the sandbox): the training set is cut into 2 shards, each worker reads only its
own, every trial visits both shards once per epoch one unit at a time, and a worker killed (then replaced, as
the supervisor would) costs at most the unit it was running."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

from hopping_data import digits
from hopping_jobs import make_sub_job
from sqlalchemy import select
from unit_template import Counter

from easel.datasets.sharding import to_npz_bytes
from easel.db.enums import JobStatus, ServiceKind, TrialStatus
from easel.db.models import SubTrainJob, Trial, TrialLog
from easel.db.session import session_scope
from easel.launcher import ServiceSpec
from easel.redis_client import make_redis
from easel.tuning import TuningChannel
from easel.work_lost import attribute_kills

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tuning"))
from test_tuning_e2e import wait_for  # noqa: E402 - the tuning tests' poll-with-timeout

BUDGET = {"MOP": True, "WORKERS": 2, "MODEL_TRIAL_COUNT": 2, "EARLY_STOP": False}


def _spec(kind: ServiceKind, sub_id: str) -> ServiceSpec:
    module = "advisor" if kind == ServiceKind.ADVISOR else "train_worker"
    extra = ["--seed", "0"] if kind == ServiceKind.ADVISOR else []
    return ServiceSpec(name=module.replace("_", "-"), kind=kind, sub_train_job_id=sub_id,
                       argv=[sys.executable, "-m", module, "--sub-train-job-id", sub_id, "--lease-s", "3", *extra])


def _trials(sessions, sub_id: str) -> list[Trial]:  # noqa: ANN001
    with session_scope(sessions) as session:
        return list(session.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id).order_by(Trial.no)))


def _done(sessions, sub_id: str) -> bool:  # noqa: ANN001
    with session_scope(sessions) as session:
        return session.get_one(SubTrainJob, sub_id).status == JobStatus.COMPLETED


def _units_run(sessions, trial_id: str) -> dict[int, tuple[str, str]]:  # noqa: ANN001
    """Unit number → (the data file the template was given, the sandbox process that ran it), as the Counter
    template logs them."""
    with session_scope(sessions) as session:
        messages = session.scalars(select(TrialLog.message).where(TrialLog.trial_id == trial_id)
                                   .order_by(TrialLog.id))  # a unit run again: its last run is the one kept
        runs = (re.fullmatch(r"unit (\d+) read (\S+) in process (\w+)", x) for x in messages)
        return {int(m.group(1)): (m.group(2), m.group(3)) for m in runs if m}


def test_trials_hop_over_shards_and_a_killed_worker_loses_at_most_its_unit(settings, sessions, launcher) -> None:  # noqa: ANN001
    sub_id = make_sub_job(settings, sessions, template=Counter, dataset=to_npz_bytes(digits(limit=200)),
                          budget=BUDGET)
    launcher.start(_spec(ServiceKind.ADVISOR, sub_id))
    victim = launcher.start(_spec(ServiceKind.TRAIN_WORKER, sub_id))
    launcher.start(_spec(ServiceKind.TRAIN_WORKER, sub_id))
    wait_for(lambda: any((t.progress or {}).get("units_done", 0) >= 2 for t in _trials(sessions, sub_id)), 300,
             "a trial two units in")
    os.kill(victim.pid, signal.SIGKILL)
    launcher.start(_spec(ServiceKind.TRAIN_WORKER, sub_id))  # the supervisor's relaunch, by hand
    wait_for(lambda: _done(sessions, sub_id), 240, "the MOP sub-job to complete after the kill")
    trials = _trials(sessions, sub_id)
    assert [t.status for t in trials] == [TrialStatus.COMPLETED] * 2, [t.error for t in trials]
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id)
    assert channel.shard_sizes() == [100, 100]
    events = [e for _id, e in channel.read_events("0", block_s=0.1, count=10_000)]
    started = [e for e in events if e["type"] == "unit_started"]
    extra = len(started) - sum(t.progress["units_total"] for t in trials)
    audit = attribute_kills(events, [f"worker-{victim.id}"[:48]])
    (kill,) = audit.kills
    assert kill.units_lost <= 1, f"costs at most the unit in flight: {kill}"
    assert audit.unattributed == 0 and extra == kill.units_lost, audit.to_json()
    worker_shards: dict[str, set[int]] = {}
    sandboxes: set[str] = set()
    for trial in trials:
        path = trial.progress["path"]
        assert trial.progress["units_done"] == trial.progress["units_total"] == 8
        assert all(sorted(path[e:e + 2]) == [0, 1] for e in range(0, 8, 2)), f"one visit per shard per epoch: {path}"
        runs = _units_run(sessions, trial.id)
        assert {unit: file for unit, (file, _process) in runs.items()} == {u + 1: f"{path[u]}.npz" for u in range(8)}
        sandboxes |= {process for _file, process in runs.values()}
        for event in started:
            if event["trial"] == trial.id:
                # the shard the worker read (a unit lost with its worker may be redone on the other shard
                # when the trial is handed back, so the trial's final path does not say where it started)
                worker_shards.setdefault(event["worker"], set()).add(int(event["shard"]))
    assert all(len(shards) == 1 for shards in worker_shards.values()), f"one shard per worker: {worker_shards}"
    assert len(worker_shards) >= 2, "units hopped between workers"
    # One sandbox per worker process (3 in all: the victim's, its replacement's, the survivor's), kept across
    # the units of both trials, not one per unit (16 units).
    assert len(sandboxes) <= 3, f"{len(sandboxes)} sandboxes ran the 16 units kept"
    channel.reset()
