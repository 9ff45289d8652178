"""The predictor's requests topic rotation rule (pure bookkeeping, predictor.rotation)."""

from __future__ import annotations

import pytest

from easel.serving import consumer_group, requests_generation, requests_topic
from predictor.rotation import TopicRotation


def test_generation_names_round_trip_and_each_generation_has_its_own_group() -> None:
    assert requests_topic("j-1") == "easel.inference.j-1.requests"
    assert [requests_generation("j-1", requests_topic("j-1", g)) for g in (0, 1, 12)] == [0, 1, 12]
    assert requests_generation("j-1", "easel.inference.j-12.requests") is None
    assert requests_generation("j-1", "easel.inference.j-1.requests.g0") is None
    assert len({consumer_group("j-1", g) for g in (0, 1, 2)}) == 3
    with pytest.raises(ValueError, match="generation"):
        requests_topic("j-1", -1)


def test_rotation_waits_for_the_next_generation_and_the_threshold() -> None:
    rotation = TopicRotation(rotate_bytes=100, rotate_s=60.0, grace_s=2.0)
    rotation.adopt([0], now=0.0)
    assert (rotation.current, rotation.needs_next()) == (0, True)
    assert rotation.sending(deadline_at=5.0) == 0
    rotation.sent(150)
    assert not rotation.due(1.0), "no rotation before the next generation exists"
    rotation.next_made(1.0)
    assert rotation.due(1.0)
    assert rotation.rotate(1.0) == 1 and rotation.needs_next()
    # generation 0 goes once its last deadline (5.0) has passed by the grace
    assert rotation.deletable(6.9) == [] and rotation.deletable(7.0) == [0]
    rotation.deleted([0])
    assert rotation.retiring == []
    # by age alone
    rotation.next_made(2.0)
    assert not rotation.due(60.0) and rotation.due(61.0)


def test_the_switch_waits_for_the_workers_to_read_the_next_generation_or_the_lead_time() -> None:
    """The workers open the next generation's consumer when it is made; the switch waits for their group join."""
    rotation = TopicRotation(rotate_bytes=100, rotate_s=0.0, grace_s=2.0, lead_s=5.0)
    rotation.adopt([0], now=0.0)
    rotation.sent(40)
    rotation.next_made(1.0)
    assert not rotation.next_wanted(1.0), "the workers open the next generation only half way to the threshold"
    rotation.sent(10)
    assert rotation.next_wanted(1.0) and not rotation.due(1.0)
    rotation.sent(100)
    assert rotation.due(1.0, joined=True)
    assert not rotation.due(5.9, joined=False) and rotation.due(6.0, joined=False)


def test_a_relaunched_predictor_continues_the_generation_the_workers_were_told() -> None:
    rotation = TopicRotation(rotate_bytes=100, rotate_s=0.0, grace_s=2.0)
    rotation.adopt([3, 4, 5], now=10.0, current=4)
    assert rotation.current == 4 and not rotation.needs_next(), "5 is the next one, made already"
    assert rotation.deletable(12.0) == [3]
    rotation.adopt([3, 4], now=10.0, current=None)
    assert rotation.current == 4 and rotation.needs_next()
    rotation.retire_strays([0, 2, 4], now=20.0)
    assert rotation.retiring == [0, 2, 3]


def test_rotation_off_and_bad_thresholds() -> None:
    off = TopicRotation(rotate_bytes=0, rotate_s=60.0, grace_s=1.0)
    off.adopt([0], now=0.0)
    off.sent(10**9)
    assert not off.needs_next() and not off.due(10**6)
    with pytest.raises(ValueError, match="grace_s"):
        TopicRotation(rotate_bytes=1, rotate_s=1.0, grace_s=-1.0)
    with pytest.raises(ValueError, match="lead_s"):
        TopicRotation(rotate_bytes=1, rotate_s=1.0, grace_s=1.0, lead_s=-1.0)
