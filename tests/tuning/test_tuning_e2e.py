"""Advisor + train workers as real processes over real Redis and PostgreSQL (local launcher)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from easel.blobstore import LocalBlobStore
from easel.db.enums import DatasetFormat, JobStatus, ModelSource, ServiceKind, TrialStatus, UserRole
from easel.db.models import Dataset, Model, SubTrainJob, TrainJob, Trial, User
from easel.db.session import make_engine, make_sessionmaker, session_scope
from easel.launcher import LocalLauncher, ServiceSpec
from easel.model import knob_config_to_dict
from easel.model.params import bytes_to_tensors
from easel.redis_client import make_redis
from easel.settings import Settings
from easel.tuning import TuningChannel

TEMPLATE = Path(__file__).with_name("quadratic_template.py")


@pytest.fixture(scope="module")
def sessions(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(settings.resolved_database_url))


@pytest.fixture
def launcher(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[LocalLauncher]:
    launcher = LocalLauncher(settings, sessions)
    yield launcher
    for service_id in list(launcher._children):
        launcher.stop(service_id, timeout_s=5)


def make_job(settings: Settings, sessions: sessionmaker[Session], trials: int, fail: bool = False) -> str:
    sys.path.insert(0, str(TEMPLATE.parent))
    from quadratic_template import Quadratic

    config = knob_config_to_dict(Quadratic.get_knob_config())
    blobs = LocalBlobStore(settings.blob_dir)
    suffix = os.urandom(4).hex()
    blobs.put_bytes(f"models/quadratic-{suffix}.py", TEMPLATE.read_bytes())
    blobs.put_bytes(f"datasets/{suffix}.npz", b"unused by this template")
    with session_scope(sessions) as session:
        user = User(email=f"tuner-{suffix}@example.com", password_hash="x", role=UserRole.MODEL_DEVELOPER)
        session.add(user)
        session.flush()
        dataset = Dataset(name="d", task="TEST", format=DatasetFormat.NPZ, blob_key=f"datasets/{suffix}.npz",
                          size_bytes=1, num_samples=1, num_classes=1, owner_id=user.id)
        model = Model(name=f"quadratic-{suffix}", task="TEST", source=ModelSource.UPLOADED,
                      model_class="AlwaysFails" if fail else "Quadratic", module_ref=f"models/quadratic-{suffix}.py", knob_config=config,
                      owner_id=user.id)
        session.add_all([dataset, model])
        session.flush()
        job = TrainJob(app=f"app-{suffix}", app_version=1, task="TEST", status=JobStatus.STARTED,
                       budget={"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 1, "WORKERS": 2},
                       train_dataset_id=dataset.id, val_dataset_id=dataset.id, owner_id=user.id)
        session.add(job)
        session.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.STARTED)
        session.add(sub)
        session.flush()
        return sub.id


def advisor_spec(sub_id: str) -> ServiceSpec:
    return ServiceSpec(name="advisor", kind=ServiceKind.ADVISOR, sub_train_job_id=sub_id,
                       argv=[sys.executable, "-m", "advisor", "--sub-train-job-id", sub_id, "--lease-s", "3",
                             "--seed", "0"])


def worker_spec(sub_id: str) -> ServiceSpec:
    return ServiceSpec(name="train-worker", kind=ServiceKind.TRAIN_WORKER, sub_train_job_id=sub_id,
                       argv=[sys.executable, "-m", "train_worker", "--sub-train-job-id", sub_id, "--lease-s", "3"])


def trials_of(sessions: sessionmaker[Session], sub_id: str) -> list[Trial]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id).order_by(Trial.no)))


def sub_status(sessions: sessionmaker[Session], sub_id: str) -> JobStatus:
    with session_scope(sessions) as session:
        return session.get_one(SubTrainJob, sub_id).status


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_complete_every_trial(settings, sessions, launcher) -> None:
    sub_id = make_job(settings, sessions, trials=4)
    launcher.start(advisor_spec(sub_id))
    workers = [launcher.start(worker_spec(sub_id)) for _ in range(2)]
    wait_for(lambda: sub_status(sessions, sub_id) == JobStatus.COMPLETED, 90, "the sub-job to complete")
    trials = trials_of(sessions, sub_id)
    assert [t.no for t in trials] == [1, 2, 3, 4], "budget respected: exactly 4 trials"
    assert all(t.status == TrialStatus.COMPLETED for t in trials)
    assert all(t.attempts == 1 for t in trials), "no healthy worker's trial is re-issued"
    assert {t.worker_service_id for t in trials} <= {w.id for w in workers}
    blobs = LocalBlobStore(settings.blob_dir)
    for trial in trials:
        assert trial.profile["rates"] == [1.0, 0.5]
        tensors, _ = bytes_to_tensors(blobs.get_bytes(trial.params_key))
        assert float(tensors["x"][0]) == pytest.approx(trial.knobs["x"])
        # unless stopped early, the score is the full-width evaluation of the trained knobs
        if trial.profile["stopped_early_at"] is None:
            assert trial.score == pytest.approx(1 - trial.knobs["x"] ** 2)
    # the workers were told to stop and exit on their own
    wait_for(lambda: all(launcher.status(w.id).status.value == "STOPPED" for w in workers), 30, "workers to exit")


def test_killed_worker_trial_is_reissued(settings, sessions, launcher) -> None:
    sub_id = make_job(settings, sessions, trials=3)
    launcher.start(advisor_spec(sub_id))
    victim = launcher.start(worker_spec(sub_id))
    wait_for(lambda: any(t.status == TrialStatus.RUNNING for t in trials_of(sessions, sub_id)), 60,
             "a running trial")
    os.kill(victim.pid, signal.SIGKILL)
    launcher.start(worker_spec(sub_id))
    wait_for(lambda: sub_status(sessions, sub_id) == JobStatus.COMPLETED, 120, "the sub-job to complete")
    trials = trials_of(sessions, sub_id)
    assert [t.no for t in trials] == [1, 2, 3]
    assert all(t.status == TrialStatus.COMPLETED for t in trials)
    assert trials[0].attempts == 2, "the killed worker's trial was re-issued once"


def test_killed_advisor_resumes_numbering(settings, sessions, launcher) -> None:
    sub_id = make_job(settings, sessions, trials=4)
    advisor = launcher.start(advisor_spec(sub_id))
    launcher.start(worker_spec(sub_id))
    wait_for(lambda: any(t.status == TrialStatus.COMPLETED for t in trials_of(sessions, sub_id)), 60,
             "a completed trial")
    os.kill(advisor.pid, signal.SIGKILL)
    launcher.start(advisor_spec(sub_id))
    wait_for(lambda: sub_status(sessions, sub_id) == JobStatus.COMPLETED, 120, "the sub-job to complete")
    trials = trials_of(sessions, sub_id)
    assert [t.no for t in trials] == [1, 2, 3, 4], "no trial number repeated or skipped"
    assert all(t.status == TrialStatus.COMPLETED for t in trials)


def test_failing_template_errors_trials_and_job_completes(settings, sessions, launcher) -> None:
    sub_id = make_job(settings, sessions, trials=2, fail=True)
    launcher.start(advisor_spec(sub_id))
    launcher.start(worker_spec(sub_id))
    wait_for(lambda: sub_status(sessions, sub_id) == JobStatus.COMPLETED, 90, "the sub-job to complete")
    trials = trials_of(sessions, sub_id)
    assert [t.status for t in trials] == [TrialStatus.ERRORED, TrialStatus.ERRORED]
    assert all("this template always fails" in t.error for t in trials)
    assert "Traceback" in trials[0].error


def test_result_landing_while_the_advisor_reconciles_is_kept(settings, sessions, monkeypatch) -> None:
    """A worker writes its result and releases the lease just after the advisor read the trials table: the
    advisor must not take the missing lease for a dead worker and re-issue (and so reset) a finished trial."""
    from advisor.records import TrialRecords
    from advisor.service import Advisor

    sub_id = make_job(settings, sessions, trials=1)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id, lease_s=3)
    records = TrialRecords(sessions, sub_id)
    advisor = Advisor.for_sub_job(records, channel, backend="random", seed=0)
    channel.announce("w1", {"pid": 1})
    advisor.supply_idle_workers()
    proposal = channel.take(timeout_s=1)
    assert channel.acquire_lease(proposal.trial_id, "w1")
    with session_scope(sessions) as session:
        session.get_one(Trial, proposal.trial_id).status = TrialStatus.RUNNING

    read_rows = records.all

    def rows_then_the_worker_finishes():
        rows = read_rows()
        with session_scope(sessions) as session:
            trial = session.get_one(Trial, proposal.trial_id)
            trial.status, trial.score = TrialStatus.COMPLETED, 0.75
        channel.release_lease(proposal.trial_id)
        return rows

    monkeypatch.setattr(records, "all", rows_then_the_worker_finishes)
    advisor.reconcile()
    monkeypatch.setattr(records, "all", read_rows)
    advisor.reconcile()
    [trial] = trials_of(sessions, sub_id)
    assert (trial.status, trial.score, trial.attempts) == (TrialStatus.COMPLETED, 0.75, 1)
    assert channel.queued() == [] and advisor.outstanding == {}
    # and the guard itself: re-issuing a finished trial is refused without touching the row
    assert records.reissue(trial.id, 1) is None
    assert trials_of(sessions, sub_id)[0].status == TrialStatus.COMPLETED
    channel.reset()


def test_channel_is_namespaced(settings) -> None:
    client = make_redis(settings, decode_responses=True)
    a, b = TuningChannel(client, "job-a"), TuningChannel(client, "job-b")
    a.announce("w1", {"pid": 1})
    assert a.workers() == {"w1": {"pid": 1}} and b.workers() == {}
    a.reset()
    b.reset()
