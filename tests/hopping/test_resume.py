"""A trial trained unit by unit through the real TrialRunner (real PostgreSQL, Redis, blob folder): a worker
killed mid-unit loses that unit only; the re-issued attempt resumes from the last checkpoint; a corrupt or
missing checkpoint re-runs its unit and says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hopping_data import digits
from hopping_jobs import add_trial, drop_job, make_sub_job, trial_row
from sqlalchemy import event, select
from unit_template import Counter

from builtin_templates.sliced import SlicedCNNTemplate
from easel.blobstore import LocalBlobStore
from easel.datasets.sharding import to_npz_bytes
from easel.db.enums import LogLevel, TrialStatus
from easel.db.models import Trial, TrialLog
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.redis_client import make_redis
from easel.tuning import Proposal, TuningChannel
from train_worker.runner import TrialRunner

KNOBS = {"x": 0.5, "epochs": 4, "unit_s": 0.2, "early_stop": False}


@pytest.fixture
def rig(settings, sessions) -> Iterator[tuple[str, TrialRunner, TuningChannel]]:  # noqa: ANN001
    # In-process (a trusted class): HOPPING_DIE_AT reaches it, which a sandboxed upload's scrubbed env would not.
    sub_id = make_sub_job(settings, sessions, template=Counter, dataset=b"unused", builtin=True)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=30)
    yield sub_id, TrialRunner(sessions, channel, LocalBlobStore(settings.blob_dir), "worker-a", None), channel
    channel.reset()
    drop_job(sessions, sub_id)  # a built-in-sourced models row would outlive the database resets (they keep built-ins)


class WorkerKilled(BaseException):
    """Not an Exception: like a SIGKILL, nothing in the runner handles it."""


def _die_during_unit_3(runner: TrialRunner, trial_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker dies once unit 3 has trained but before its checkpoint is written: unit 3 is lost."""
    save = runner.checkpoints.save

    def save_or_die(trial: str, units: int, state: bytes) -> int:
        if units == 3:
            raise WorkerKilled("killed during unit 3")
        return save(trial, units, state)

    monkeypatch.setattr(runner.checkpoints, "save", save_or_die)
    with pytest.raises(WorkerKilled, match="killed during unit 3"):
        runner.run(Proposal(trial_id, 1, KNOBS, attempt=1))
    monkeypatch.undo()


def _reissue(sessions, trial_id: str) -> int:  # noqa: ANN001
    with session_scope(sessions) as session:
        attempt = lifecycle.reissue_trial(session, trial_id, 1)
    assert attempt == 2
    return attempt


def _logs(sessions, trial_id: str) -> list[tuple[LogLevel, str]]:  # noqa: ANN001
    with session_scope(sessions) as session:
        rows = session.scalars(select(TrialLog).where(TrialLog.trial_id == trial_id).order_by(TrialLog.id))
        return [(row.level, row.message) for row in rows]


def _units_started(channel: TuningChannel, trial_id: str) -> list[int]:
    return [e["unit"] for _id, e in channel.read_events("0", block_s=0.1, count=1000)
            if e["type"] == "unit_started" and e["trial"] == trial_id]


def test_a_killed_worker_loses_only_the_unit_it_was_running(rig, sessions, monkeypatch) -> None:  # noqa: ANN001
    sub_id, runner, channel = rig
    trial_id = add_trial(sessions, sub_id, 1, KNOBS)
    _die_during_unit_3(runner, trial_id, monkeypatch)
    assert trial_row(sessions, trial_id).progress["units_done"] == 2
    attempt = _reissue(sessions, trial_id)

    successor = TrialRunner(runner.sessions, channel, runner.blobs, "worker-b", None)  # any worker resumes it
    assert successor.run(Proposal(trial_id, 1, KNOBS, attempt)) == TrialStatus.COMPLETED
    trial = trial_row(sessions, trial_id)
    assert trial.score == pytest.approx(0.75), "the model saw all 4 units (Counter asserts their order)"
    assert trial.progress == {"units_done": 4, "units_total": 4, "epoch": 4, "shard": 0, "worker": "worker-b",
                              "units_run": 4, "checkpoint_bytes": trial.progress["checkpoint_bytes"],
                              "path": [0, 0, 0, 0]}
    assert _units_started(channel, trial_id) == [1, 2, 3, 3, 4], "only unit 3 ran twice: the one killed"
    assert (LogLevel.INFO, "resuming after unit 2 of 4 from its checkpoint") in _logs(sessions, trial_id)
    assert list(runner.blobs.keys(runner.checkpoints.prefix(trial_id))) == [], "checkpoints cleared at the end"


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_bad_checkpoint_reruns_its_unit_and_says_so(rig, sessions, monkeypatch, damage) -> None:  # noqa: ANN001
    sub_id, runner, channel = rig
    trial_id = add_trial(sessions, sub_id, 1, KNOBS)
    _die_during_unit_3(runner, trial_id, monkeypatch)
    key = runner.checkpoints.key(trial_id, 2)
    if damage == "corrupt":
        blob = runner.blobs.get_bytes(key)
        runner.blobs.put_bytes(key, blob[:-3] + b"xyz")
    else:
        runner.blobs.delete(key)
    attempt = _reissue(sessions, trial_id)

    assert runner.run(Proposal(trial_id, 1, KNOBS, attempt)) == TrialStatus.COMPLETED
    assert trial_row(sessions, trial_id).progress["units_run"] == 5, "unit 2 trained twice, nothing else"
    assert _units_started(channel, trial_id) == [1, 2, 3, 2, 3, 4]
    warnings = [message for level, message in _logs(sessions, trial_id) if level == LogLevel.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("re-running units 2..2 of 4: checkpoint after unit 2 is "
                                                         + ("corrupt" if damage == "corrupt" else "missing"))


def test_a_builtin_sliced_template_trains_unit_by_unit(settings, sessions) -> None:  # noqa: ANN001
    data = to_npz_bytes(digits(limit=400))
    sub_id = make_sub_job(settings, sessions, template=SlicedCNNTemplate, dataset=data, builtin=True)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=30)
    runner = TrialRunner(sessions, channel, LocalBlobStore(settings.blob_dir), "worker-a", None)
    knobs = {"width": 16, "depth": 2, "image_size": 32, "lr": 0.05, "batch_size": 32, "weight_decay": 1e-4,
             "max_epochs": 4, "groups": 8, "seed": 0, "early_stop": False, "quick_train": False}
    trial_id = add_trial(sessions, sub_id, 1, knobs)
    try:
        status = runner.run(Proposal(trial_id, 1, knobs))
        trial = trial_row(sessions, trial_id)
    finally:
        channel.reset()
        drop_job(sessions, sub_id)
    assert status == TrialStatus.COMPLETED, trial.error
    assert trial.progress["units_done"] == trial.progress["units_total"] == 4
    assert trial.score > 0.5, "four epochs on digits learn well above chance (0.1)"
    assert sorted(trial.profile["rates"], reverse=True) == [1.0, 0.75, 0.5, 0.25]


@pytest.mark.parametrize(("pruner", "units_of_the_weak_trial"), [("asha", 1), ("none", 4)])
def test_the_jobs_pruner_stops_a_unit_wise_trial_at_its_rung(settings, sessions, pruner, units_of_the_weak_trial) -> None:  # noqa: ANN001
    sub_id = make_sub_job(settings, sessions, template=Counter, dataset=b"unused", budget={"PRUNER": pruner})
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=30)
    runner = TrialRunner(sessions, channel, LocalBlobStore(settings.blob_dir), "worker-a", None)
    strong, weak = ({**KNOBS, "x": x, "early_stop": True} for x in (0.0, 0.9))
    try:
        for no, knobs in ((1, strong), (2, weak)):
            trial_id = add_trial(sessions, sub_id, no, knobs)
            assert runner.run(Proposal(trial_id, no, knobs)) == TrialStatus.COMPLETED, trial_row(sessions, trial_id).error
    finally:
        channel.reset()
    with session_scope(sessions) as session:
        rows = session.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id).order_by(Trial.no)).all()
        done = [row.progress["units_done"] for row in rows]
        stopped = [row.profile["stopped_early_at"] for row in rows]
    # ASHA (η = 3, rungs at epochs 1, 3): at epoch 1 the weak trial is not the best of 2, so it stops there.
    assert done == [4, units_of_the_weak_trial]
    assert stopped == [None, 1 if pruner == "asha" else None]


def test_a_runner_reads_its_sub_jobs_rows_once_across_stretches(rig, sessions) -> None:  # noqa: ANN001
    """The promoting ASHA's stretches of one trial on one runner: paused at epoch 1, resumed to the end. The
    sub-job, job, model and dataset rows are read at the first stretch only (they never change once the job
    has started), and the trial still trains every unit in order and completes."""
    sub_id, runner, channel = rig
    trial_id = add_trial(sessions, sub_id, 1, KNOBS)
    tables = ("sub_train_jobs", "train_jobs", "models", "datasets")
    reads: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            reads.extend(t for t in tables if f"FROM {t}" in statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert runner.run(Proposal(trial_id, 1, KNOBS, until_epoch=1)) == TrialStatus.RUNNING
        assert trial_row(sessions, trial_id).progress["paused_at_epoch"] == 1
        assert sorted(reads) == sorted(tables), "the first stretch reads each row once"
        assert runner.run(Proposal(trial_id, 1, KNOBS, until_epoch=4)) == TrialStatus.COMPLETED
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sorted(reads) == sorted(tables), "the second stretch reads none of them again"
    assert trial_row(sessions, trial_id).score == pytest.approx(0.75), "all 4 units, in order (Counter asserts it)"
    assert _units_started(channel, trial_id) == [1, 2, 3, 4]
