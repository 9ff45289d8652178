"""What admin's pool hands the allocator, from the real PostgreSQL and Redis: under ``regret_rate`` a live sub-job
whose advisor has not bid yet is a candidate that is not ready (a worker may wait for it), one that bid carries
its belief, best and results, and the trials it has on workers count as running (no workers or advisors needed:
the rows and the bid are written here as admin and the advisor would)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from admin.services.train_pool import TrainPool
from admin.state import AdminState
from easel.db.enums import DatasetFormat, JobStatus, ModelSource, UserRole
from easel.db.models import Dataset, Model, SubTrainJob, TrainJob, User
from easel.db.session import session_scope
from easel.jobs import lifecycle
from easel.pool import Assignment, Bid, PoolChannel
from easel.settings import Settings


@pytest.fixture
def pool(settings: Settings) -> Iterator[TrainPool]:
    state = AdminState.from_settings(settings.model_copy(update={"train_pool_workers": 2,
                                                                 "train_pool_policy": "regret_rate"}))
    pool = TrainPool(state)  # not started: no workers, no allocation thread
    for key in pool.channel.client.scan_iter(f"{PoolChannel.key('bids')}*"):
        pool.channel.client.delete(key)
    yield pool
    pool.channel.client.close()
    state.close()


def live_sub_job(state: AdminState) -> tuple[str, str, str]:
    """A user's live train job with one sub-job, as admin writes it; (user, job, sub-job) ids."""
    suffix = os.urandom(4).hex()
    with session_scope(state.sessions) as session:
        user = User(email=f"cand-{suffix}@example.com", password_hash="x", role=UserRole.APP_DEVELOPER)
        session.add(user)
        session.flush()
        data = Dataset(name="d", task="TEST", format=DatasetFormat.NPZ, blob_key=f"datasets/{suffix}.npz",
                       size_bytes=1, num_samples=1, num_classes=1, owner_id=user.id)
        model = Model(name=f"cand-{suffix}", task="TEST", source=ModelSource.UPLOADED, model_class="M",
                      module_ref=f"models/{suffix}.py", knob_config={}, owner_id=user.id)
        session.add_all([data, model])
        session.flush()
        job = TrainJob(app=f"cand-{suffix}", app_version=1, task="TEST", status=JobStatus.STARTED,
                       budget={"MODEL_TRIAL_COUNT": 4}, train_dataset_id=data.id, val_dataset_id=data.id,
                       owner_id=user.id)
        session.add(job)
        session.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.STARTED)
        session.add(sub)
        session.flush()
        return user.id, job.id, sub.id


def test_starting_and_bidding_sub_jobs_as_the_allocator_sees_them(pool: TrainPool) -> None:
    user, job, sub = live_sub_job(pool.state)
    candidates, _room = pool._candidates({})
    mine = [c for c in candidates if c.sub_train_job_id == sub]
    assert len(mine) == 1 and not mine[0].ready and mine[0].user_id == user, "starting: the allocator may wait"

    pool.channel.publish_bid(sub, Bid(open=3, gain=0.02, cost_s=0.5, best=0.8, observed=2, regret=0.1, mean=0.75,
                                      std=0.05))
    busy = {"w1": Assignment(sub, job, user, "first result", at=time.time() - 60)}  # running since before the bid
    candidates, room = pool._candidates(busy)
    [bidding] = [c for c in candidates if c.sub_train_job_id == sub]
    assert bidding.ready and (bidding.mean, bidding.std, bidding.best, bidding.observed) == (0.75, 0.05, 0.8, 2)
    assert bidding.running == 1 and room[sub] == 3

    with session_scope(pool.state.sessions) as session:
        assert lifecycle.mark_train_job_stopped(session, session.get_one(TrainJob, job))
    pool.channel.withdraw(sub)
    candidates, _room = pool._candidates({})
    assert not [c for c in candidates if c.sub_train_job_id == sub], "an ended job is no candidate"
