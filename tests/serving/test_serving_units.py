"""Serving parts without servers: wire format, task split, instance checks, the task book, policies, answers."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from easel.batch_buffers import QueryBatch
from easel.serving import DROPPED, SERVED, live_workers, split_mini_batches, worker_record
from easel.serving_wire import (
    MiniBatch,
    Results,
    decode_entry,
    decode_mini_batch,
    encode_mini_batch,
    encode_results,
)
from inference_worker.book import Held, OffsetTracker, TaskBook
from inference_worker.metrics import WorkerMetrics
from inference_worker.model import stack
from inference_worker.policy import LivePolicy, make_policy
from predictor.app import JobInfo, build_response
from predictor.gather import ResultRouter
from predictor.instances import InvalidInstance, to_batch
from scheduler import ClipperPolicy, FixedWidthPolicy, LateRule, ModelSwitchingPolicy, SchedulerPolicy
from scheduler.profile import paper_xray_profile


def test_mini_batch_round_trip_keeps_arrays_and_values() -> None:
    x = np.arange(3 * 64, dtype=np.float32).reshape(3, 1, 8, 8)
    r = decode_mini_batch(encode_mini_batch("t1", 3, 12.5, 10, 4, 11.0, x))
    assert (r.task, r.start, r.count, r.deadline_at, r.n, r.n_part, r.sent_at) == ("t1", 3, 3, 12.5, 10, 4, 11.0)
    assert r.array.dtype == np.float32 and np.array_equal(r.instances, x)
    text = decode_mini_batch(encode_mini_batch("t1", 0, 1.0, 1, 1, 0.0, [{"text": "hello"}]))
    assert text.array is None and text.instances == [{"text": "hello"}]


def test_registry_counts_only_live_workers() -> None:
    now = 1000.0
    records = {b"w1": worker_record(1, 9000, [0], "scheduler", now - 1), b"w2": worker_record(2, None, [1], "clipper", now - 60),
               b"bad": b"not json"}
    assert list(live_workers(records, now)) == ["w1"]
    assert live_workers(records, now)["w1"]["partitions"] == [0]


def test_results_round_trip() -> None:
    served = decode_entry(encode_results("t", "w1", 3.0, SERVED, [(4, 2)], 0.5, [[0.1, 0.9], [0.7, 0.3]],
                                         {"served": 2}))
    assert isinstance(served, Results) and (served.task, served.status, served.ranges, served.rate) == (
        "t", SERVED, [(4, 2)], 0.5)
    assert served.outputs.dtype == np.float32 and served.outputs.shape == (2, 2) and served.report == {"served": 2}
    dropped = decode_entry(encode_results("t", "w1", 3.0, DROPPED, [(0, 4), (8, 1)]))
    assert dropped.status == DROPPED and dropped.outputs is None and dropped.count == 5
    values = decode_entry(encode_results("t", "w1", 3.0, SERVED, [(0, 2)], 1.0, ["cat", {"box": [1, 2]}]))
    assert values.outputs == ["cat", {"box": [1, 2]}]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), st.integers(1, 16), st.integers(1, 64), st.integers(0, 100))
def test_split_keeps_every_instance_and_balances_minibatches(n: int, parts: int, size: int, offset: int) -> None:
    sizes = split_mini_batches(n, parts, size, offset)
    assert len(sizes) == parts and sum(sizes) == n and min(sizes) >= 0
    mbs = [-(-s // size) for s in sizes]
    assert sum(mbs) == -(-n // size), "no extra partial mini-batch is created"
    assert max(mbs) - min(mbs) <= 1
    assert sum(s % size != 0 for s in sizes) <= 1, "at most one partition holds the partial mini-batch"


def test_split_names_a_bad_argument() -> None:
    for args, name in (((-1, 2, 32), "n_instances"), ((10, 0, 32), "n_parts"), ((10, 2, "32"), "batch_size")):
        with pytest.raises(ValueError, match=name):
            split_mini_batches(*args)


def test_instances_are_checked_and_the_bad_one_named() -> None:
    good = to_batch([[0.5] * 64, [[0.1] * 8] * 8], (1, 8, 8))
    assert good.shape == (2, 1, 8, 8) and good.dtype == np.float32
    cases = {
        "instance 1: has shape 63": [[0.0] * 64, [0.0] * 63],
        "instance 2: expected an array of numbers shaped 1x8x8, got str": [[0.0] * 64, [1.0] * 64, "cat"],
        "instance 0: expected an array of numbers shaped 1x8x8, got NoneType": [None],
        "instance 1: contains a value that is not a finite number": [[0.0] * 64, [float("nan")] * 64],
        "instance 0: is not a regular array": [[[0.0] * 8, [0.0] * 7]],
        "instance 1: is not a regular array": [[0.0] * 64, [10**400] + [0.0] * 63],  # overflow: 422, not 500
    }
    for message, instances in cases.items():
        with pytest.raises(InvalidInstance, match=message):
            to_batch(instances, (1, 8, 8))
    assert to_batch([{"any": "json"}], None) == [{"any": "json"}]


def test_query_batch_is_a_sequence_torch_takes_without_copy() -> None:
    import torch

    batch = stack([np.ones((1, 8, 8), np.float32), np.zeros((1, 8, 8), np.float32)])
    assert isinstance(batch, QueryBatch) and bool(batch) and len(batch) == 2
    assert not bool(batch[:0])
    tensor = torch.as_tensor(batch)
    assert tuple(tensor.shape) == (2, 1, 8, 8)
    assert stack([[1], [2, 3]]) == [[1], [2, 3]]


def _held(task: str, start: int, deadline_at: float, n_part: int, partition: int = 0, offset: int = 0,
          count: int = 1) -> Held:
    """A polled message: the mini-batch of ``count`` instances from ``start`` of a task of ``n_part``."""
    batch = MiniBatch(task, start, count, deadline_at, n_part, n_part, 0.0, np.zeros((count, 2), np.float32))
    return Held(batch, partition, offset)


def test_book_serves_earliest_deadline_first_and_purges_expired() -> None:
    offsets = OffsetTracker()
    metrics = WorkerMetrics([1.0])
    book = TaskBook(offsets, margin_s=0.0, on_expired=metrics.instances.labels("expired").inc)
    now = time.time()
    items = [_held("late", 0, now + 50, 1, offset=0), _held("soon", 0, now + 5, 1, offset=1),
             _held("gone", 0, now - 1, 1, offset=2)]
    for h in items:
        offsets.received(h.partition, h.offset)
    added = book.add(items, now)
    assert [n for n, _left in added] == [1, 1, 1]
    assert [left for _n, left in added] == pytest.approx([50, 5, -1]), "the time left as each share arrived"
    assert [book.take(0).task, book.take(0).task] == ["soon", "late"]
    assert book.take(0) is None
    assert book.expired_instances == 1
    assert metrics.registry.get_sample_value("easel_worker_instances_total", {"status": "expired"}) == 1, \
        "a task purged unrun is counted in the worker's expired metric"
    assert offsets.committable() == {0: 0}, "offsets 0 and 1 are taken but not answered yet"


def test_a_message_of_several_mini_batches_is_committable_once_each_is_answered() -> None:
    offsets = OffsetTracker()
    offsets.received(0, 0, parts=3)
    offsets.received(0, 1)
    offsets.done(0, 1)
    offsets.done(0, 0)
    offsets.done(0, 0)
    assert offsets.committable() == {0: 0} and offsets.unanswered() == 1, "one part of offset 0 still out"
    offsets.done(0, 0)
    assert offsets.committable() == {0: 2} and offsets.unanswered() == 0
    with pytest.raises(ValueError, match="parts"):
        offsets.received(0, 2, parts=0)


def test_book_waits_for_the_rest_of_a_share_and_ignores_duplicates() -> None:
    book = TaskBook(OffsetTracker(), assemble_s=5.0)
    deadline = time.time() + 30
    book.add([_held("t", 0, deadline, 2, offset=0)])
    book.add([_held("t", 0, deadline, 2, offset=9)])  # redelivered copy: answered once
    assert book.duplicates == 1

    def later() -> None:
        time.sleep(0.1)
        book.add([_held("t", 1, deadline, 2, offset=1)])

    thread = threading.Thread(target=later)
    thread.start()
    group = book.take(5.0)
    thread.join()
    assert group is not None and [h.batch.start for h in group.items] == [0, 1] and group.complete


def test_book_counts_the_late_part_of_a_share_taken_early() -> None:
    book = TaskBook(OffsetTracker(), assemble_s=0.0)  # no patience: take what is there
    deadline = time.time() + 30
    book.add([_held("t", 0, deadline, 3, offset=0)])
    first = book.take(1.0)
    assert first is not None and len(first.items) == 1 and not first.complete
    assert book.held("t") == 0
    book.add([_held("t", 1, deadline, 3, offset=1), _held("t", 2, deadline, 3, offset=2)])
    assert book.held("t") == 2 and book.held("other") == 0


def test_offsets_commit_only_past_answered_messages() -> None:
    offsets = OffsetTracker()
    for offset in range(5):
        offsets.received(0, offset)
    offsets.done(0, 0)
    offsets.done(0, 2)
    assert offsets.committable() == {0: 1}
    offsets.mark_committed({0: 1})
    assert offsets.committable() == {}
    for offset in (1, 3, 4):
        offsets.done(0, offset)
    assert offsets.committable() == {0: 5}
    offsets.forget([0])
    offsets.done(0, 7)  # a late answer for a revoked partition is ignored
    assert offsets.committable() == {}


def test_book_forgets_revoked_partitions() -> None:
    book = TaskBook(OffsetTracker())
    deadline = time.time() + 30
    book.add([_held("t", 0, deadline, 1, partition=0), _held("t", 1, deadline, 1, partition=1)])
    assert book.drop_partitions([1]) == 1
    group = book.take(0)
    assert [h.partition for h in group.items] == [0]


def test_policy_names() -> None:
    profile = paper_xray_profile()
    assert isinstance(make_policy("scheduler", profile), SchedulerPolicy)
    assert make_policy("scheduler:myopic", profile).mode == "myopic"
    assert isinstance(make_policy("fixed:0.5", profile), FixedWidthPolicy)
    assert isinstance(make_policy("model-switching", profile), ModelSwitchingPolicy)
    assert isinstance(make_policy("clipper", profile), ClipperPolicy)
    with pytest.raises(ValueError, match="not one of the model's slice rates"):
        make_policy("fixed:0.3", profile)
    with pytest.raises(ValueError, match="unknown serving policy"):
        make_policy("greedy", profile)
    # How each runs its plans is declared by the policy, not parsed from its name by the worker.
    scheduler, clipper, fixed = (make_policy(n, profile) for n in ("scheduler", "clipper", "fixed:1"))
    assert scheduler.replans and scheduler.late_rule is LateRule.FIT
    assert not clipper.replans and clipper.late_rule is LateRule.FIT
    assert not fixed.replans and fixed.late_rule is LateRule.RUN
    live = LivePolicy("clipper", profile.rates, profile.accuracies, profile.batch_times)
    assert (live.replans, live.late_rule) == (False, LateRule.FIT)


def test_live_policy_tracks_measured_times() -> None:
    p = paper_xray_profile()
    live = LivePolicy("scheduler", p.rates, p.accuracies, p.batch_times, alpha=0.5, min_interval_s=0.0)
    assert live.decide(10, 10.0).counts[p.most_accurate] == 10
    for _ in range(20):  # the full model turns out 4x slower on this machine
        live.observe(0, 4 * p.batch_times[0], full=True)
    live.on_arrival(10, 0.0)
    assert live.refresh(1.0) and live.rebuilds == 1
    assert live.profile.batch_times[0] == pytest.approx(4 * p.batch_times[0], rel=1e-3)
    plan = live.decide(10, 10 * p.batch_times[0])  # what fit at the old time no longer does
    assert plan.counts[0] < 10 and plan.total_time <= 10 * p.batch_times[0] + 1e-9
    assert not live.refresh(2.0), "no drift left: no rebuild"


def test_a_rebuild_keeps_the_load_estimate() -> None:
    p = paper_xray_profile()
    live = LivePolicy("scheduler", p.rates, p.accuracies, p.batch_times, min_interval_s=0.0)
    for k in range(40):
        live.on_arrival(4, 0.5 * k)
    before = live.policy.time_per_mb()
    for _ in range(10):
        live.observe(0, 3 * p.batch_times[0], full=True)
    assert live.refresh(20.0)
    assert live.policy.rate is live.arrivals and live.policy.time_per_mb() == pytest.approx(before)


def test_one_stalled_batch_does_not_poison_an_estimate() -> None:
    p = paper_xray_profile()
    live = LivePolicy("scheduler", p.rates, p.accuracies, p.batch_times, alpha=0.2)
    fastest = len(p.rates) - 1
    live.observe(fastest, 50 * p.batch_times[fastest], full=True)  # one mini-batch stalled 50x
    assert live.estimate(fastest) == pytest.approx(1.2 * p.batch_times[fastest])
    for _ in range(30):  # a real, lasting slow-down is still followed
        live.observe(fastest, 3 * p.batch_times[fastest], full=True)
    assert live.estimate(fastest) == pytest.approx(3 * p.batch_times[fastest], rel=0.01)


def test_widths_not_run_lately_follow_the_nearest_measured_width() -> None:
    p = paper_xray_profile()
    now = [0.0]
    live = LivePolicy("scheduler", p.rates, p.accuracies, p.batch_times, alpha=1.0, fresh_s=5.0,
                      clock=lambda: now[0])
    assert live.planning_times() == pytest.approx(p.batch_times), "nothing measured yet: the calibration"
    live.observe(0, 1.5 * p.batch_times[0], full=True)  # the full width runs 1.5x slower than calibrated
    assert live.planning_times() == pytest.approx([1.5 * t for t in p.batch_times])
    now[0] = 1.0
    last = len(p.rates) - 1
    live.observe(last, 1.9 * p.batch_times[last], full=True)  # the narrowest once, slower still
    assert live.estimate(last) == pytest.approx(1.9 * p.batch_times[last])
    assert live.estimate(last - 1) == pytest.approx(1.9 * p.batch_times[last - 1]), "nearest measured: narrowest"
    now[0] = 3.0
    for _ in range(3):
        live.observe(0, 1.2 * p.batch_times[0], full=True)
    now[0] = 8.0  # the narrowest width has not run for 7 s: it follows the full width's 1.2x again
    assert live.estimate(last) == pytest.approx(1.2 * p.batch_times[last])
    assert live.estimate(0) == pytest.approx(1.2 * p.batch_times[0])


def test_live_policy_plans_with_slack_for_noisy_times() -> None:
    p = paper_xray_profile()
    live = LivePolicy("scheduler", p.rates, p.accuracies, p.batch_times, alpha=0.2, spread=1.0)
    assert live.estimate(0) == pytest.approx(p.batch_times[0]), "no noise seen yet: the mean"
    for k in range(50):
        live.observe(0, p.batch_times[0] * (1.5 if k % 2 else 0.5), full=True)
    assert live.estimate(0) > live.ewma[0] * 1.3, "mean + one standard deviation"
    live.observe(0, 100.0, full=False)  # a partial mini-batch does not move the estimate
    assert live.estimate(0) < 1.0


def test_the_results_trip_splits_into_the_workers_publish_and_the_hop_and_completion_is_reported_once() -> None:
    """``to_predictor`` (done to read) is ``publish`` (done to the entry's ``at`` stamp) plus ``results_hop``; only
    the entry that completes a task says so (the router then lets its request answer before reading again)."""
    async def run() -> tuple[dict[str, float], list[bool]]:
        stages: dict[str, float] = {}
        router = ResultRouter(client=None, stream="s",  # type: ignore[arg-type]
                              on_stage=lambda stage, seconds: stages.__setitem__(stage, seconds))
        waiter = router.open("t", 2, time.perf_counter())
        waiter.sent_at = time.time() - 0.5
        polled, began, done = waiter.sent_at + 0.1, waiter.sent_at + 0.2, waiter.sent_at + 0.3
        at = done + 0.05
        completed = [router.dispatch(encode_results("t", "w1", at, SERVED, [(0, 1)], 1.0, [[0.2, 0.8]],
                                                    timing=(polled, began, done))),
                     router.dispatch(encode_results("t", "w1", at, SERVED, [(1, 1)], 1.0, [[0.9, 0.1]])),
                     router.dispatch(encode_results("t", "w1", at, SERVED, [(1, 1)], 1.0, [[0.9, 0.1]]))]
        return stages, completed

    stages, completed = asyncio.run(run())
    assert completed == [False, True, False], "the duplicate after completion completes nothing"
    assert stages["publish"] == pytest.approx(0.05)
    assert stages["publish"] + stages["results_hop"] == pytest.approx(stages["to_predictor"])
    assert stages["to_worker"] == pytest.approx(0.1) and stages["compute"] == pytest.approx(0.1)


class CancelSwallowingRedis:
    """Contract fake of the two calls the router makes (``xrevrange``, ``xread``), whose blocking read returns an
    empty answer when cancelled instead of raising, as redis-py's did under Python 3.11 in the predictor's stop."""

    def __init__(self) -> None:
        self.reads = 0
        self.cancels_swallowed = 0
        self.swallow = True

    async def xrevrange(self, stream: str, count: int) -> list:
        return []

    async def xread(self, streams: dict, block: int, count: int) -> list:
        self.reads += 1
        try:
            await asyncio.sleep(block / 1000)
        except asyncio.CancelledError:
            if not self.swallow:
                raise
            self.cancels_swallowed += 1
        return []


def test_the_router_stops_though_its_read_swallows_the_cancel() -> None:
    async def run() -> tuple[CancelSwallowingRedis, bool]:
        client = CancelSwallowingRedis()
        router = ResultRouter(client=client, stream="s")  # type: ignore[arg-type]
        await router.start()
        await asyncio.sleep(0)  # the first read is in flight
        stopping = asyncio.ensure_future(router.stop())
        done, _ = await asyncio.wait({stopping}, timeout=30)
        if not done:  # the loop read on after the lost cancel: end it (the test fails below), not hang here
            client.swallow = False
            assert router._task is not None
            router._task.cancel()
            await stopping
        return client, bool(done)

    client, stopped = asyncio.run(run())
    assert stopped, "the router stopped though its read swallowed the cancel"
    assert client.cancels_swallowed == 1 and client.reads == 1, "no read after the stop"


def test_response_answers_every_instance_and_dedups() -> None:
    async def run() -> dict:
        router = ResultRouter(client=None, stream="s")  # type: ignore[arg-type]
        waiter = router.open("t", 3, time.perf_counter())
        router.dispatch(encode_results("t", "w1", 0.0, SERVED, [(0, 1)], 1.0, [[0.2, 0.8]]))
        router.dispatch(encode_results("t", "w1", 0.0, SERVED, [(1, 1)], 0.5, [[0.9, 0.1]]))
        router.dispatch(encode_results("t", "w2", 0.0, SERVED, [(0, 1)], 0.25, [[0.5, 0.5]],
                                       {"worker": "w2", "served": 1}))
        router.dispatch(encode_results("other", "w1", 0.0, SERVED, [(0, 1)], 1.0, [[1.0, 0.0]]))
        assert router.late_results == 1 and waiter.remaining == 1 and not waiter.event.is_set()
        info = JobInfo("job", "trial", 2, 32, (2,), ["cat", "dog"], {1.0: 0.9, 0.5: 0.8})
        return build_response("t", waiter, info, 0.5, 0.5)

    body = asyncio.run(run())
    statuses = [(p["index"], p["status"], p["slice_rate"]) for p in body["predictions"]]
    assert statuses == [(0, SERVED, 1.0), (1, SERVED, 0.5), (2, DROPPED, None)]
    assert body["predictions"][0]["prediction"]["label"] == "dog"
    assert body["predictions"][1]["prediction"]["label"] == "cat"
    totals = body["totals"]
    assert (totals["served"], totals["dropped"], totals["unanswered"], totals["duplicates"]) == (2, 1, 1, 1)
    assert totals["expected_effective_accuracy"] == pytest.approx((0.9 + 0.8) / 3)
    assert totals["by_rate"] == {"1": 1, "0.5": 1}


class _Clock:
    """A clock the test moves: the executor reads it, the template advances it (no sleeping)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class _TimedTemplate:
    """predict() takes ``base * rate**2 * slow`` seconds of the test's clock per mini-batch, like a sliced
    network's compute; ``slow`` makes the full width slower than the worker's profile says."""

    def __init__(self, clock: _Clock, base: float, slow: float = 1.0) -> None:
        self.clock, self.base, self.slow = clock, base, slow

    def predict(self, queries, rate):  # noqa: ANN001, ANN201
        self.clock.now += self.base * rate * rate * (self.slow if rate == 1.0 else 1.0)
        return [[rate, 1 - rate] for _ in range(len(queries))]


class _Stream:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def xadd(self, _stream, fields, **_kwargs) -> None:  # noqa: ANN001
        self.entries.append(decode_entry(fields["m"]))

    def answers(self) -> list[tuple[int, str, float | None]]:
        """(index, status, rate) of every instance answered, in the order answered."""
        return [(i, e.status, e.rate) for e in self.entries for start, count in e.ranges
                for i in range(start, start + count)]


def _serve_one_task(policy: str, deadline_s: float, slow: float = 1.0,
                    metrics: WorkerMetrics | None = None) -> tuple[list[tuple], dict, OffsetTracker]:
    from inference_worker.model import ServedModel
    from inference_worker.service import Executor, WorkerConfig

    clock = _Clock(time.time())  # starts at the wall clock, so the book's own checks agree with it
    rates, accuracies, times = (1.0, 0.5, 0.25), (0.9, 0.8, 0.6), (0.02, 0.005, 0.00125)
    model = ServedModel(_TimedTemplate(clock, 0.02, slow), rates, accuracies, times)  # type: ignore[arg-type]
    offsets = OffsetTracker()
    book = TaskBook(offsets)
    stream = _Stream()
    config = WorkerConfig(job_id="j", worker_id="w", topic="t", batch_size=4, policy=policy, margin_s=0.0)
    live = LivePolicy(policy, rates, accuracies, times, clock=clock, min_interval_s=3600)
    metrics = metrics if metrics is not None else WorkerMetrics(rates)
    executor = Executor(config, model, live, book, offsets, stream, metrics,  # type: ignore[arg-type]
                        clock=clock, timer=clock)
    # The book purges expired tasks by the wall clock: restart the test's clock there only now, after the set-up
    # above (which a busy machine can make last longer than a whole 6 ms deadline).
    clock.now = time.time()
    deadline = clock.now + deadline_s
    n = 30  # 8 mini-batches (the last of 2): 20 ms each at full width, 5 ms at half, 1.25 ms at a quarter
    held = [_held("task", start, deadline, n, offset=k, count=min(4, n - start))
            for k, start in enumerate(range(0, n, 4))]
    for h in held:
        offsets.received(0, h.offset)
    book.add(held)
    executor.run_group(book.take(0))
    answers = stream.answers()
    assert sorted(i for i, _, _ in answers) == list(range(n)), "every instance answered exactly once"
    assert offsets.committable() == {0: len(held)}, "and every offset may be committed"
    assert stream.entries[-1].report is not None and all(e.report is None for e in stream.entries[:-1])
    return answers, stream.entries[-1].report, offsets


def _served(answers: list[tuple]) -> list[float]:
    return [rate for _, status, rate in answers if status == SERVED]


def test_executor_serves_all_at_full_width_when_time_allows() -> None:
    answers, report, _ = _serve_one_task("scheduler", 5.0)
    assert _served(answers) == [1.0] * 30 and report["replans"] == 0


def test_executor_narrows_to_fit_and_answers_in_time() -> None:
    answers, report, _ = _serve_one_task("scheduler", 0.08)
    served = _served(answers)
    assert len(served) == 30 and min(served) < 1.0 and report["dropped"] == 0


def test_executor_drops_what_cannot_fit_even_at_the_fastest_width() -> None:
    # 6 ms: four quarter-width mini-batches (5 ms); the rest can only be dropped.
    answers, report, _ = _serve_one_task("scheduler", 0.006)
    assert report["served"] == 16 and report["dropped"] == 14 and set(_served(answers)) == {0.25}


def test_executor_replans_when_the_full_width_runs_slower_than_planned() -> None:
    # 0.16 s fits 8 full-width mini-batches at the profiled 20 ms; they take 40 ms, so after the first the
    # clock is behind the plan and the rest is planned again, narrower: nothing is dropped or late.
    answers, report, _ = _serve_one_task("scheduler", 0.16, slow=2.0)
    assert report["replans"] >= 1 and report["dropped"] == 0
    assert min(_served(answers)) < 1.0


def test_the_executor_counts_what_its_plans_expected_against_what_ran() -> None:
    # The full width planned at 20 ms takes 40 ms: the plan's seconds of the mini-batches run fall short of the
    # recorded ones, and the share's wall time holds them all (the test's clock moves only inside the model).
    metrics = WorkerMetrics((1.0, 0.5, 0.25))
    _answers, report, _ = _serve_one_task("scheduler", 0.16, slow=2.0, metrics=metrics)
    sample = metrics.registry.get_sample_value
    recorded = sum(sample("easel_worker_batch_seconds_sum", {"rate": r}) or 0.0 for r in ("1", "0.5", "0.25"))
    planned = sample("easel_worker_planned_batch_seconds_total")
    run = sum(sample("easel_worker_minibatches_total", {"rate": r}) or 0.0 for r in ("1", "0.5", "0.25"))
    assert run == 8 and report["served"] == 30
    assert planned < recorded and sample("easel_worker_share_seconds_total") == pytest.approx(recorded)
    # ... and all of it in the model call: the answers took no time on this clock.
    assert sample("easel_worker_predict_seconds_total") == pytest.approx(recorded)
    assert sample("easel_worker_answer_seconds_total") == pytest.approx(0.0)


def test_a_fixed_width_never_starts_a_mini_batch_after_the_deadline() -> None:
    # Full width, 80 ms: mini-batches start at 0, 20, 40 and 60 ms; the fifth would start at the deadline.
    answers, report, _ = _serve_one_task("fixed:1", 0.08)
    assert report["served"] == 16 and report["dropped"] == 14


def test_clipper_drops_up_front_what_its_plan_cannot_fit() -> None:
    answers, report, _ = _serve_one_task("clipper", 0.07)
    assert report["served"] == 12 and report["dropped"] == 18 and set(_served(answers)) == {1.0}


def test_calibration_times_each_width_only_after_its_warm_up_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first calls of a width are slow (allocation; on a GPU kernel loading, library handles, the caching
    allocator growing): calibration runs ``WARMUP_ROUNDS`` of every width untimed, then keeps the fastest timed
    run. A clock that only moves inside ``predict`` makes that exact: warm-up calls take 1 s, later ones 1 ms."""
    import inference_worker.model as served

    class Clock:
        now = 0.0

        def perf_counter(self) -> float:
            return self.now

    clock = Clock()
    calls: list[float] = []

    class FirstCallsSlow:
        def predict(self, queries, slice_rate):  # noqa: ANN001, ANN202
            calls.append(slice_rate)
            warm = calls.count(slice_rate) > served.WARMUP_ROUNDS
            clock.now += 0.001 if warm else 1.0
            return [0] * len(queries)

    monkeypatch.setattr(served, "time", clock)
    model = served.ServedModel(FirstCallsSlow(), [1.0, 0.5], [0.9, 0.8], [0.5, 0.5])  # type: ignore[arg-type]
    assert model.calibrate((2,), batch_size=4, repeats=2) == pytest.approx([0.001, 0.001])
    assert len(calls) == (served.WARMUP_ROUNDS + 2) * 2 and calls[:4] == [1.0, 0.5, 1.0, 0.5], "interleaved"
    assert model.last_device_s is None, "no GPU time without CUDA"
