"""The pool's worker registry on the real Redis: a worker admin retired while it was alive (its liveness key
lapsed during a stall, or admin's check ran between the two writes of an announcement) comes back at its next
renewal — before, it stayed out of the pool for good, so a 2-worker pool ran on one (the end-to-end failure "after
the stop only one worker ran the other job's trials", then "timed out waiting for live workers")."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from easel.pool import PoolChannel
from easel.redis_client import make_redis
from easel.settings import Settings


@pytest.fixture
def channel(settings: Settings) -> Iterator[PoolChannel]:
    client = make_redis(settings, decode_responses=True)
    yield PoolChannel(client, lease_s=5.0)
    client.close()


def test_a_worker_retired_while_alive_is_back_at_its_next_renewal(channel: PoolChannel) -> None:
    worker = f"worker-{os.urandom(4).hex()}"
    info = {"service_id": "s", "pid": 1, "since": 0.0}
    channel.announce(worker, info)
    assert worker in channel.live_workers()
    channel.client.delete(channel.key("alive", worker))  # the key lapsed: admin's next check retires it
    assert worker not in channel.live_workers()
    assert not channel.client.hexists(channel.key("workers"), worker)
    channel.renew(worker, info)
    assert worker in channel.live_workers(), "the keep-alive announces it again"
    channel.retire(worker)
    channel.renew(worker)  # a bare renewal (no info) does not register anyone
    assert worker not in channel.live_workers()
