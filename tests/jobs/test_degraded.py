"""An inference job's honest status: RUNNING ⇄ DEGRADED while its services are relaunched, ERRORED with the
reason when the supervisor gives up, and stoppable from each live state."""

from __future__ import annotations

from test_lifecycle import _train_job, session  # noqa: F401 - session is a fixture

from easel.db.enums import JobStatus
from easel.db.models import InferenceJob, TrainJob
from easel.jobs import lifecycle
from easel.jobs.states import INFERENCE_JOB


def _inference_job(session, train=None) -> InferenceJob:  # noqa: ANN001, F811
    train = train or _train_job(session, models=1)
    job = lifecycle.new_inference_job(train_job_id=train.id, owner_id=train.owner_id, budget={"WORKERS": 2})
    session.add(job)
    session.flush()
    return job


def test_running_degrades_and_is_restored_with_the_reason_kept_meanwhile(session) -> None:  # noqa: F811
    job = _inference_job(session)
    assert not lifecycle.mark_inference_job_degraded(session, job.id, "1 of 2 workers"), "only from RUNNING"
    assert lifecycle.mark_inference_job_running(session, job.id)
    assert lifecycle.mark_inference_job_degraded(session, job.id, "1 of 2 inference workers (relaunching)")
    session.refresh(job)
    assert (job.status, job.error) == (JobStatus.DEGRADED, "1 of 2 inference workers (relaunching)")
    assert not lifecycle.mark_inference_job_running(session, job.id), "the predictor's STARTED→RUNNING only"
    assert lifecycle.mark_inference_job_restored(session, job.id)
    session.refresh(job)
    assert (job.status, job.error) == (JobStatus.RUNNING, None)
    assert not lifecycle.mark_inference_job_restored(session, job.id)


def test_a_degraded_job_errors_with_its_reason_or_stops(session) -> None:  # noqa: F811
    job = _inference_job(session)
    lifecycle.mark_inference_job_running(session, job.id)
    lifecycle.mark_inference_job_degraded(session, job.id, "no predictor")
    lifecycle.mark_inference_job_errored(session, job.id, "predictor ended 6 times (restart budget 5 spent)")
    session.refresh(job)
    assert job.status == JobStatus.ERRORED and "restart budget" in job.error and job.stopped_at is not None
    other = _inference_job(session, session.get_one(TrainJob, job.train_job_id))
    lifecycle.mark_inference_job_running(session, other.id)
    lifecycle.mark_inference_job_degraded(session, other.id, "no predictor")
    session.refresh(other)
    assert lifecycle.mark_inference_job_stopped(session, other) and other.status == JobStatus.STOPPED
    assert INFERENCE_JOB.live == (JobStatus.STARTED, JobStatus.RUNNING, JobStatus.DEGRADED)
