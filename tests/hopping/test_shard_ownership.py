"""MOP shard ownership on the real Redis: a lapsed lease nobody took is kept by its stalled owner; one another
worker took is lost (and the owner must claim a free shard)."""

from __future__ import annotations

import uuid

from easel.redis_client import make_redis
from easel.settings import Settings
from easel.tuning import TuningChannel


def test_a_lapsed_shard_is_kept_unless_another_worker_took_it(settings: Settings) -> None:
    channel = TuningChannel(make_redis(settings, decode_responses=True), f"shards-{uuid.uuid4().hex[:8]}", lease_s=30)
    try:
        channel.set_shards([10, 10])
        assert channel.claim_shard("w1") == 0
        assert channel.claim_shard("w2") == 1
        assert channel.claim_shard("w3") is None  # both owned
        channel.client.delete(channel.key("shard", "0"))  # w1's lease lapsed while it was stalled
        assert channel.renew_shard(0, "w1")  # nobody took it: w1 keeps it
        assert channel.shard_owners() == {0: "w1", 1: "w2"}
        channel.client.delete(channel.key("shard", "1"))  # w2's lapsed, and w3 took it meanwhile
        assert channel.claim_shard("w3") == 1
        assert not channel.renew_shard(1, "w2")
        assert channel.shard_owners() == {0: "w1", 1: "w3"}
    finally:
        channel.reset()
