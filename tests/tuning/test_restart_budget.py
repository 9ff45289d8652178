"""A spent restart budget ends the job visibly: the supervisor relaunches a dying train worker with backoff,
and once the slot has used its relaunches (and no worker is left) the sub-job and its train job are ERRORED."""

from __future__ import annotations

import os
import signal
import time

import psutil
from sqlalchemy import select
from test_tuning_e2e import make_job, worker_spec

from admin.services.supervisor import Supervisor
from admin.state import AdminState
from easel.db.enums import JobStatus, ServiceKind, ServiceStatus
from easel.db.models import Service, SubTrainJob, TrainJob
from easel.db.session import session_scope


def _workers(sessions, sub_id: str) -> list[Service]:
    with session_scope(sessions) as session:
        return list(session.scalars(select(Service).where(Service.sub_train_job_id == sub_id,
                                                          Service.kind == ServiceKind.TRAIN_WORKER)
                                    .order_by(Service.created_at)))


def _tick_until(supervisor: Supervisor, check, timeout_s: float, what: str):  # noqa: ANN001, ANN202
    give_up = time.monotonic() + timeout_s
    while True:
        supervisor.tick()
        value = check()
        if value:
            return value
        assert time.monotonic() < give_up, f"timed out waiting for {what() if callable(what) else what}"
        time.sleep(0.1)


def test_a_spent_restart_budget_errors_the_job(settings, sessions) -> None:
    state = AdminState.from_settings(settings.model_copy(update={
        "supervisor_max_restarts": 1, "supervisor_backoff_base_s": 0.1,
        "supervisor_backoff_cap_s": 0.2}))
    supervisor = Supervisor(state)
    sub_id = make_job(settings, sessions, trials=1)
    first = state.launcher.start(worker_spec(sub_id))
    try:
        os.kill(first.pid, signal.SIGKILL)
        second = _tick_until(supervisor, lambda: next((w for w in _workers(sessions, sub_id)
                                                       if w.id != first.id and w.status == ServiceStatus.RUNNING),
                                                      None), 30, "the relaunched worker")
        os.kill(second.pid, signal.SIGKILL)
        _tick_until(supervisor, lambda: _sub(sessions, sub_id).status == JobStatus.ERRORED, 30,
                    lambda: f"the sub-job to be ERRORED: {[(w.status, w.exit_code) for w in _workers(sessions, sub_id)]}")
        workers = _workers(sessions, sub_id)
        assert [w.status for w in workers] == [ServiceStatus.ERRORED, ServiceStatus.ERRORED], "one relaunch only"
        assert supervisor.relaunched == 1
        with session_scope(sessions) as session:
            sub = session.get_one(SubTrainJob, sub_id)
            job = session.get_one(TrainJob, sub.train_job_id)
            assert job.status == JobStatus.ERRORED
            assert sub.error == job.error and "restart budget 1 spent" in job.error, job.error
    finally:
        for worker in _workers(sessions, sub_id):
            if worker.pid and psutil.pid_exists(worker.pid):
                state.launcher.stop(worker.id, timeout_s=5)
        state.close()


def _sub(sessions, sub_id: str) -> SubTrainJob:  # noqa: ANN001
    with session_scope(sessions) as session:
        return session.get_one(SubTrainJob, sub_id)
