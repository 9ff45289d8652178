"""The pool allocator's memory outlives admin: what the fairness floor counts is saved in the real Redis after
each allocation pass and restored by the next admin's pool (no workers or jobs needed: the state is driven
through the allocator itself)."""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterator

import pytest

from admin.services import pool_memory
from admin.services.train_pool import TrainPool
from admin.state import AdminState
from easel.allocation import Allocator, Candidate
from easel.pool import Bid, PoolChannel
from easel.redis_client import make_redis
from easel.settings import Settings

STEEP, FLAT, MID = "user-steep", "user-flat", "user-mid"
BIDS = [Candidate("sub-steep", "job-steep", STEEP, 1.0, gain=0.5, cost_s=1.0),
        Candidate("sub-flat", "job-flat", FLAT, 2.0, gain=0.001, cost_s=1.0),
        Candidate("sub-mid", "job-mid", MID, 3.0, gain=0.01, cost_s=1.0)]


@pytest.fixture
def channel(settings: Settings) -> Iterator[PoolChannel]:
    channel = PoolChannel(make_redis(settings, decode_responses=True))
    channel.client.delete(PoolChannel.key("allocator"))
    yield channel
    channel.client.delete(PoolChannel.key("allocator"))
    channel.client.close()


@pytest.fixture
def state(settings: Settings, channel: PoolChannel) -> Iterator[AdminState]:
    state = AdminState.from_settings(settings.model_copy(update={"train_pool_workers": 2,
                                                                 "train_pool_policy": "cost_aware"}))
    yield state
    state.close()


def test_a_restarted_admin_goes_on_with_the_waits_and_the_floors_counts(state: AdminState,
                                                                       channel: PoolChannel) -> None:
    first = TrainPool(state)
    for _ in range(3):
        choice = first.allocator.choose(BIDS)
        first.by_job[choice.candidate.train_job_id] += 1
    assert first.allocator.waits[FLAT] == first.allocator.waits[MID] == 3, "the steep user won every pass"
    assert channel.saved_allocator() is None
    channel.announce("worker-free", {"pid": 0})  # a free worker: the pass saves the memory
    try:
        first.tick()
    finally:
        channel.retire("worker-free")
    assert channel.saved_allocator()["allocator"]["assignments"] == 3
    first.channel.client.close()

    second = TrainPool(state)
    assert second.allocator.waits == first.allocator.waits
    assert second.allocator.by_user == first.allocator.by_user == {STEEP: 3}
    assert second.allocator.floors == first.allocator.floors and second.allocator.assignments == 3
    assert second.by_job == {"job-steep": 3}
    second.channel.client.close()


def test_another_policys_memory_and_unreadable_fields_are_not_taken() -> None:
    allocator = Allocator("cost_aware")
    allocator.choose(BIDS)
    saved = pool_memory.saved_state(allocator, Counter({"job-steep": 1}), deque())
    assert "last_at" not in saved["allocator"] and "policy" not in saved["allocator"], "this admin's own"
    turns = Allocator("regret_rate", workers=2)
    assert turns.choose(BIDS, now=0.0, worker="w") is not None and turns.turns_due
    kept = pool_memory.saved_state(turns, Counter(), deque())
    assert json.loads(json.dumps(kept))["allocator"]["by_user"], "the memory is JSON (it goes to Redis)"
    assert not {"turns_due", "turns_ahead", "turn_waits", "turned"} & set(kept["allocator"]), "process-local"

    fresh = Allocator("round_robin")
    assert not pool_memory.restore(fresh, Counter(), deque(), saved)
    assert fresh.assignments == 0 and fresh.waits == {}

    same, by_job = Allocator("cost_aware"), Counter()
    broken = {**saved, "allocator": {**saved["allocator"], "waits": [1, 2], "assignments": "many"}}
    assert pool_memory.restore(same, by_job, deque(), broken)
    assert same.waits == {} and same.assignments == 0, "wrong kinds are left fresh"
    assert same.by_user == {STEEP: 1} and by_job == {"job-steep": 1}


def test_a_bid_or_a_freed_worker_wakes_the_allocation_pass(channel: PoolChannel) -> None:
    """The pass runs when there is something to allocate, not at its next poll: a published bid and a worker
    reporting itself free each leave one wake-up token (never more than one), which the pass's wait takes."""
    channel.client.delete(PoolChannel.key("wake"))
    assert channel.wait_for_nudge(0.05) is False, "nothing happened: the wait times out"
    try:
        for _ in range(3):
            channel.publish_bid("sub-wake", Bid(open=1, gain=None, cost_s=None, best=None, observed=0))
        assert channel.client.llen(PoolChannel.key("wake")) == 1, "tokens do not pile up"
        assert channel.wait_for_nudge(5) is True
        assert channel.wait_for_nudge(0.05) is False, "one pass answers every change made before it"
        channel.done("worker-wake")
        assert channel.wait_for_nudge(5) is True
    finally:
        channel.withdraw("sub-wake")
        channel.client.delete(PoolChannel.key("wake"))
