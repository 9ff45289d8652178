"""The job life cycle: allowed transitions, races lost without overwriting, budgets and profiles parsed once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from easel.db.enums import JobStatus, ServiceKind, ServiceStatus, TrialStatus
from easel.db.models import Base, Dataset, Model, SubTrainJob, TrainJob, Trial, User
from easel.db.session import make_engine, make_sessionmaker
from easel.jobs import IllegalTransition, InferenceJobBudget, Profile, TrainBudget, lifecycle
from easel.jobs.states import INFERENCE_JOB, SERVICE, TRAIN_JOB, TRIAL


@pytest.fixture
def session(tmp_path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def _train_job(session: Session, models: int = 2) -> TrainJob:
    user = User(email="u@x.org", password_hash="-", role="ADMIN")
    session.add(user)
    session.flush()
    data = Dataset(name="d", task="T", format="NPZ", blob_key="k", size_bytes=1, num_samples=1, num_classes=2,
                   owner_id=user.id)
    ids = []
    for i in range(models):
        model = Model(name=f"m{i}", task="T", source="BUILTIN", model_class="M", module_ref="x")
        session.add(model)
        session.flush()
        ids.append(model.id)
    session.add(data)
    session.flush()
    job = lifecycle.new_train_job(ids, app="a", app_version=1, task="T", budget={}, train_dataset_id=data.id,
                                  val_dataset_id=data.id, owner_id=user.id)
    session.add(job)
    session.flush()
    return job


def _trial(session: Session, sub: SubTrainJob, no: int = 1) -> Trial:
    trial = lifecycle.new_trial(sub.id, no, {"x": 1})
    session.add(trial)
    session.flush()
    return trial


def test_the_tables_forbid_what_the_life_cycle_does_not_allow() -> None:
    assert TRAIN_JOB.can(JobStatus.STARTED, JobStatus.RUNNING)
    assert not TRAIN_JOB.can(JobStatus.STOPPED, JobStatus.RUNNING)
    assert not INFERENCE_JOB.can(JobStatus.RUNNING, JobStatus.COMPLETED)
    assert set(TRIAL.final) == {TrialStatus.COMPLETED, TrialStatus.ERRORED, TrialStatus.TERMINATED}
    assert SERVICE.live == (ServiceStatus.STARTED, ServiceStatus.RUNNING)
    with pytest.raises(IllegalTransition, match="cannot go from COMPLETED to PENDING"):
        TRIAL.check(TrialStatus.COMPLETED, TrialStatus.PENDING)
    with pytest.raises(IllegalTransition, match="never becomes COMPLETED"):
        INFERENCE_JOB.sources(JobStatus.COMPLETED)


def test_a_loaded_row_that_moves_illegally_raises_and_keeps_its_status(session: Session) -> None:
    service = lifecycle.new_service(name="s", kind=ServiceKind.OTHER, launcher="local", command={})
    lifecycle.mark_service_running(service, pid=42)
    lifecycle.mark_service_exited(service, 1)
    assert (service.status, service.pid, service.exit_code) == (ServiceStatus.ERRORED, 42, 1)
    assert service.stopped_at is not None
    with pytest.raises(IllegalTransition):
        lifecycle.mark_service_running(service)
    assert service.status == ServiceStatus.ERRORED


def test_a_watcher_that_saw_a_stopped_process_does_not_overwrite_a_stop_committed_meanwhile(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'race.sqlite'}")
    Base.metadata.create_all(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as stopper:
        stopped, crashed = (lifecycle.new_service(name=n, kind=ServiceKind.OTHER, launcher="local", command={})
                            for n in ("stopped", "crashed"))
        for service in (stopped, crashed):
            lifecycle.mark_service_running(service, pid=42)
        stopper.add_all([stopped, crashed])
        stopper.commit()
        with sessions() as watcher:
            seen = watcher.get_one(type(stopped), stopped.id)  # read while still live: the watcher's stale view
            assert seen.status == ServiceStatus.RUNNING
            lifecycle.mark_service_exited(stopped, -15, stopped=True)  # the stop commits first
            stopper.commit()
            assert not lifecycle.record_service_exit(watcher, stopped.id, -15)
            assert lifecycle.record_service_exit(watcher, crashed.id, 1)
            watcher.commit()
        with sessions() as reader:
            assert reader.get_one(type(stopped), stopped.id).status == ServiceStatus.STOPPED
            assert (reader.get_one(type(crashed), crashed.id).status, reader.get_one(type(crashed), crashed.id)
                    .exit_code) == (ServiceStatus.ERRORED, 1)
    engine.dispose()


def test_trial_attempts_race_safely(session: Session) -> None:
    job = _train_job(session, models=1)
    trial = _trial(session, job.sub_train_jobs[0])
    assert lifecycle.claim_trial(session, trial.id, 1, None)
    assert not lifecycle.claim_trial(session, trial.id, 1, None)  # already running
    assert lifecycle.reissue_trial(session, trial.id, 1) == 2
    assert not lifecycle.record_trial_result(session, trial.id, 1, TrialStatus.COMPLETED, score=1.0)  # stale
    assert lifecycle.claim_trial(session, trial.id, 2, None)
    assert lifecycle.record_trial_result(session, trial.id, 2, TrialStatus.COMPLETED, score=0.5)
    assert lifecycle.reissue_trial(session, trial.id, 2) is None  # finished: never overwritten
    assert not lifecycle.end_trial(session, trial.id, TrialStatus.TERMINATED, "late")
    session.refresh(trial)
    assert (trial.status, trial.score, trial.attempts, trial.error) == (TrialStatus.COMPLETED, 0.5, 2, None)
    with pytest.raises(IllegalTransition):
        lifecycle.record_trial_result(session, trial.id, 2, TrialStatus.RUNNING)


def test_a_train_job_completes_with_its_last_sub_job_and_keeps_a_stop(session: Session) -> None:
    job = _train_job(session)
    first, second = job.sub_train_jobs
    assert lifecycle.mark_sub_train_job_running(session, first.id)
    session.refresh(job)
    assert job.status == JobStatus.RUNNING
    assert lifecycle.mark_sub_train_job_completed(session, first.id)
    session.refresh(job)
    assert job.status == JobStatus.RUNNING  # the other sub-job is live
    assert lifecycle.mark_sub_train_job_errored(session, second.id)
    session.refresh(job)
    assert (job.status, second.status) == (JobStatus.ERRORED, JobStatus.ERRORED)
    assert not lifecycle.mark_sub_train_job_completed(session, second.id)  # an errored sub-job stays so


def test_stopping_a_train_job_terminates_its_unfinished_trials(session: Session) -> None:
    job = _train_job(session, models=1)
    sub = job.sub_train_jobs[0]
    pending, done = _trial(session, sub, 1), _trial(session, sub, 2)
    lifecycle.claim_trial(session, done.id, 1, None)
    lifecycle.record_trial_result(session, done.id, 1, TrialStatus.COMPLETED, score=1.0)
    assert lifecycle.mark_train_job_stopped(session, job)
    assert not lifecycle.mark_train_job_stopped(session, job)
    session.refresh(pending)
    session.refresh(done)
    assert (job.status, sub.status) == (JobStatus.STOPPED, JobStatus.STOPPED)
    assert (pending.status, done.status) == (TrialStatus.TERMINATED, TrialStatus.COMPLETED)
    assert not lifecycle.mark_sub_train_job_running(session, sub.id)  # an advisor starting late changes nothing
    session.refresh(job)
    assert job.status == JobStatus.STOPPED


def test_budgets_have_one_set_of_defaults() -> None:
    stored = TrainBudget.from_stored({"MODEL_TRIAL_COUNT": 3, "FROM_A_LATER_VERSION": 1})
    assert (stored.MODEL_TRIAL_COUNT, stored.TIME_HOURS, stored.WORKERS, stored.seconds) == (3, 1.0, 1, 3600.0)
    assert TrainBudget.from_stored(None) == TrainBudget()
    assert InferenceJobBudget.from_stored({"WORKERS": 2}).WORKERS == 2
    with pytest.raises(ValueError, match="TIME_HOURS"):
        TrainBudget.from_stored({"TIME_HOURS": 0})


def test_a_profile_round_trips_and_fills_what_is_missing() -> None:
    stored = {"rates": [1.0, 0.5], "accuracy": [0.9, 0.8], "batch_time_s": [0.02, 0.01], "batch_size": 16,
              "flops": [4, 1]}
    profile = Profile.from_json(stored)
    assert profile.accuracy_by_rate() == {1.0: 0.9, 0.5: 0.8}
    assert profile.to_json() == stored
    filled = Profile.from_json({}, default_rates=[1.0, 0.25])
    assert (filled.accuracy, filled.batch_time_s, filled.batch_size) == ((1.0, 1.0), (0.0, 0.0), 32)
    with pytest.raises(ValueError, match="differ in length"):
        Profile.from_json({"rates": [1.0, 0.5], "accuracy": [0.9]})
