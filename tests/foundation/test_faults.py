"""Pure pieces of fault tolerance: backoff, log throttling, telling infrastructure errors from the user's,
the restart policy of a service slot, admission control, and a rebalance listener that never blocks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import redis
from kafka import TopicPartition
from sqlalchemy.exc import OperationalError

from admin.services.readiness import Facts, gaps
from admin.services.restarts import Death, RestartPolicy
from easel.api_errors import Overloaded
from easel.backoff import Backoff, Throttle
from easel.db.enums import ServiceKind, ServiceStatus
from easel.faults import is_infrastructure_error
from easel.kafka_io import ASSIGNED, REVOKED, PartitionEvents
from easel.serving import calibrated_fastest_batch_s
from predictor.admission import Admission


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    backoff.reset()
    assert backoff.peek() == 0.5
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=2.0, cap_s=1.0)


def test_throttle_lets_one_through_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    throttle = Throttle(5.0, clock=lambda: now[0])
    assert throttle.ready() == 0
    assert [throttle.ready() for _ in range(3)] == [None, None, None]
    now[0] = 5.0
    assert throttle.ready() == 3


def test_infrastructure_errors_are_found_through_the_exception_chain() -> None:
    assert is_infrastructure_error(redis.ConnectionError("down"))
    assert is_infrastructure_error(OperationalError("select 1", {}, Exception("gone")))
    try:
        try:
            raise redis.TimeoutError("slow")
        except redis.RedisError as inner:
            raise RuntimeError("the template wrapped it") from inner
    except RuntimeError as outer:
        assert is_infrastructure_error(outer)
    assert not is_infrastructure_error(ValueError("the template's own bug"))


def _death(status: ServiceStatus, launches: int, kind: ServiceKind = ServiceKind.INFERENCE_WORKER) -> Death:
    return Death("svc-1", "worker-0", kind, status, None if status == ServiceStatus.ERRORED else 0,
                 datetime(2026, 1, 1, tzinfo=UTC), launches)


def test_restart_policy_relaunches_failures_with_growing_capped_delays_and_gives_up() -> None:
    policy = RestartPolicy(max_restarts=3, base_s=1.0, cap_s=3.0)
    assert policy.needs_relaunch(_death(ServiceStatus.ERRORED, 1))
    assert not policy.needs_relaunch(_death(ServiceStatus.STOPPED, 1)), "stopped on purpose: left alone"
    delays = [policy.delay_s(_death(ServiceStatus.ERRORED, n)) for n in (1, 2, 3, 4)]
    assert delays[0] == 0.0, "the first relaunch of a slot is immediate"
    never_ran = Death("svc-1", "worker-0", ServiceKind.INFERENCE_WORKER, ServiceStatus.ERRORED, None, None, 1,
                      started=False)
    assert 0.5 <= policy.delay_s(never_ran) <= 1.0, "a launch that failed outright is not retried at once"
    assert 0.5 <= delays[1] <= 1.0 and 1.0 <= delays[2] <= 2.0 and 1.5 <= delays[3] <= 3.0
    first = _death(ServiceStatus.ERRORED, 2)
    assert policy.due_at(first, first.stopped_at) == policy.due_at(first, first.stopped_at + timedelta(hours=1)), (
        "the due time depends only on the death, so every tick agrees")
    assert not policy.exhausted(_death(ServiceStatus.ERRORED, 3))
    assert policy.exhausted(_death(ServiceStatus.ERRORED, 4))


def test_admission_bounds_queued_work_and_instances_and_releases() -> None:
    admission = Admission(max_work_s=1.0, max_instances=1000, batch_size=10, fastest_batch_s=0.1)
    first = admission.admit(100, workers=2)  # 10 mini-batches x 0.1 s / 2 workers = 0.5 s
    assert admission.work_s == pytest.approx(0.5) and admission.instances == 100
    admission.admit(100, workers=2)
    with pytest.raises(Overloaded) as refused:
        admission.admit(20, workers=2)
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "1"}
    admission.release(first)
    admission.admit(20, workers=2)
    assert admission.refused == 1 and admission.peak_instances == 200
    bounded = Admission(max_work_s=100.0, max_instances=150, batch_size=10, fastest_batch_s=0.1)
    bounded.admit(100, workers=1)
    with pytest.raises(Overloaded, match="instances"):
        bounded.admit(100, workers=1)


def test_admission_counts_work_in_the_workers_measured_batch_time_and_releases_exactly() -> None:
    stale = Admission(max_work_s=1.0, max_instances=10_000, batch_size=10, fastest_batch_s=0.1)  # trained slower
    held = stale.admit(50, workers=1)  # 5 mini-batches x 0.1 s
    with pytest.raises(Overloaded):
        stale.admit(100, workers=1)  # 1.0 s more by the stored profile: over the bound
    # the workers measured 0.01 s: the same task is now 0.1 s of work and fits
    measured = calibrated_fastest_batch_s({b"v1:10": b"[0.02, 0.01]", "v1:32": "[0.001]", "bad:10": "x"}, 10)
    assert measured == 0.01
    stale.count_work_in(measured)
    second = stale.admit(100, workers=1)
    assert second.work_s == pytest.approx(0.1)
    stale.release(held)
    stale.release(second)
    assert (stale.work_s, stale.instances) == (0.0, 0)
    with pytest.raises(ValueError, match="fastest_batch_s"):
        stale.count_work_in(0.0)


def test_the_calibration_read_for_admission_takes_the_slowest_model_and_ignores_other_batch_sizes() -> None:
    fields = {"old-version:32": "[0.4, 0.2]", "new-version:32": "[0.3, 0.05]", "old-version:16": "[0.01]"}
    assert calibrated_fastest_batch_s(fields, 32) == 0.2  # a rolling update: count in the slower model's time
    assert calibrated_fastest_batch_s(fields, 64) is None
    assert calibrated_fastest_batch_s({"m:32": "[0, 0.1]"}, 32) is None  # a non-positive time: not a measurement


def test_rebalance_events_are_queued_in_order_for_the_poll_thread() -> None:
    events = PartitionEvents()
    events.on_partitions_revoked({TopicPartition("t", 0), TopicPartition("t", 1)})
    events.on_partitions_assigned({TopicPartition("t", 0), TopicPartition("t", 1)})
    events.on_partitions_lost({TopicPartition("t", 1)})
    t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
    assert events.drain() == [(REVOKED, {t0, t1}), (ASSIGNED, {t0, t1}), (REVOKED, {t1})]
    assert events.drain() == []


def test_a_job_is_whole_only_when_its_services_say_they_are_ready() -> None:
    workers = ["aaaaaaaa-1", "bbbbbbbb-2"]
    both = {"worker-aaaaaaaa", "worker-bbbbbbbb"}
    assert gaps(Facts(2, 1, workers, both, predictor_ready=True)) == []
    # a relaunched worker whose process runs but has not registered (still loading) is not ready
    assert gaps(Facts(2, 1, workers, {"worker-aaaaaaaa"}, predictor_ready=True)) == ["1 of 2 inference workers ready"]
    # a registry record of a dead worker does not count for its replacement
    assert gaps(Facts(2, 1, ["aaaaaaaa-1", "cccccccc-3"], both, predictor_ready=True)) == [
        "1 of 2 inference workers ready"]
    assert gaps(Facts(2, 0, workers, both, predictor_ready=None)) == ["no predictor"]
    assert gaps(Facts(2, 1, workers, both, predictor_ready=False)) == ["predictor not ready"]
    assert gaps(Facts(2, 1, workers, both, predictor_ready=None)) is None, "whole unless the predictor is asked"
    assert gaps(Facts(2, 1, workers, None, predictor_ready=True)) is None, "registry unreadable: cannot tell"
    assert gaps(Facts(2, 0, workers, None, predictor_ready=None)) == ["no predictor"]
