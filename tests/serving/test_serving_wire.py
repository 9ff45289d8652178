"""The mini-batch wire without servers: messages, their corruptions, the dealing of a task into messages, the
predictor's one-pass instance checks, and the waiter's first-answer-wins over mini-batch results."""

from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from easel.batch_buffers import BatchBuffers
from easel.serving import DROPPED, SERVED, deal_mini_batches, mini_batches_per_message, split_mini_batches
from easel.serving_wire import (
    CorruptMessage,
    decode_entry,
    decode_mini_batch,
    encode_mini_batch,
    encode_results,
    message_key,
    parse_key,
)
from predictor.app import JobInfo, build_response, parse_body
from predictor.gather import ResultRouter
from predictor.instances import InvalidInstance, InvalidTensor, from_tensor, to_batch

X = np.arange(4 * 64, dtype=np.float32).reshape(4, 1, 8, 8)


def test_a_mini_batch_is_its_raw_bytes_behind_a_small_header() -> None:
    raw = encode_mini_batch("t" * 32, 8, 100.0, 30, 14, 99.0, X)
    assert len(raw) - X.nbytes < 160, "the header stays small"
    batch = decode_mini_batch(raw)
    assert batch.array.base is not None and not batch.array.flags.writeable, "a view of the message, no copy"
    assert (batch.start, batch.count, batch.stop) == (8, 4, 12) and np.array_equal(batch.array, X)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda raw: b"XX" + raw[2:], "bad magic"),
    (lambda raw: raw[:2] + b"\x09" + raw[3:], "format version 9"),
    (lambda raw: raw[:14] + bytes([raw[14] ^ 0xFF]) + raw[15:], "checksum"),
    (lambda raw: raw[:-3], "body of"),
    (lambda raw: raw[:5], "shorter than"),
    (lambda raw: raw[:3] + (10 ** 6).to_bytes(4, "little") + raw[7:], "header length"),
])
def test_a_corrupt_message_is_refused_saying_why(damage, reason) -> None:  # noqa: ANN001
    raw = encode_mini_batch("task", 0, 100.0, 4, 4, 99.0, X)
    with pytest.raises(CorruptMessage, match=reason):
        decode_mini_batch(damage(raw))


def test_a_header_that_lies_about_its_range_is_refused() -> None:
    import struct
    import zlib

    header = msgpack.packb({"task": "t", "start": 8, "count": 4, "n": 10, "n_part": 10, "deadline_at": 1.0,
                            "sent_at": 0.0, "dtype": "<f4", "shape": [4, 1, 8, 8]})
    raw = struct.pack("<2sBII", b"EZ", 1, len(header), zlib.crc32(header)) + header + X.tobytes()
    with pytest.raises(CorruptMessage, match="does not fit a task of 10"):
        decode_mini_batch(raw)


def test_the_key_names_the_range_without_the_value() -> None:
    assert parse_key(message_key("9f1c", 64, 32)) == ("9f1c", 64, 32)
    for bad in (None, b"\xff\xfe", b"task", b"task/1", b"task/-1+4", b"/0+4", b"t/0+0"):
        assert parse_key(bad) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 5), st.integers(1, 64), st.integers(0, 9))
def test_a_task_is_dealt_in_whole_mini_batches_even_when_they_do_not_divide(n, parts, size, offset) -> None:  # noqa: ANN001
    messages = deal_mini_batches(n, list(range(parts)), size, offset)
    covered = [i for _part, start, stop, _share in messages for i in range(start, stop)]
    assert covered == list(range(n)), "every instance in exactly one message, in order"
    assert len(messages) == -(-n // size), "no extra partial mini-batch"
    partial = [m for m in messages if m[2] - m[1] < size]
    assert len(partial) <= 1 and all(m[2] - m[1] <= size for m in messages)
    for part, share in zip(range(parts), split_mini_batches(n, parts, size, offset), strict=True):
        mine = [m for m in messages if m[0] == part]
        assert sum(stop - start for _p, start, stop, _s in mine) == share and all(m[3] == share for m in mine)
        if partial and partial[0][0] == part:
            assert mine[-1] == partial[0], "the partial mini-batch is the last of its share"


def test_instances_are_stacked_in_one_pass_and_mixed_dtypes_refused() -> None:
    good = to_batch(X.tolist(), (1, 8, 8))
    assert good.dtype == np.float32 and np.array_equal(good, X)
    mixed = {
        "instance 1: holds booleans, not numbers (mixed dtypes": [X[0].tolist(), [[[True] * 8] * 8]],
        "instance 2: holds text, not numbers (mixed dtypes": [X[0].tolist(), X[1].tolist(), [[["a"] * 8] * 8]],
        "instance 3: contains a value that is not a finite number": [*X[:3].tolist(), [1e300] * 64],
    }
    for message, instances in mixed.items():
        with pytest.raises(InvalidInstance, match=message.replace("(", r"\(")):
            to_batch(instances, (1, 8, 8))


def test_a_tensor_body_is_taken_as_is_or_refused() -> None:
    body = parse_body(msgpack.packb({"instances": {"dtype": "<f8", "shape": [4, 64], "data": X.astype("<f8").tobytes()},
                                     "deadline_s": 1.0}), binary=True)
    assert body.count() == 4
    batch = from_tensor(body.instances.dtype, body.instances.shape, body.instances.data, (1, 8, 8))
    assert batch.dtype == np.float32 and batch.shape == (4, 1, 8, 8) and np.array_equal(batch, X)
    for dtype, shape, data, message in (("|O", [4, 64], b"", "not a little-endian number type"),
                                        ("<f4", [4, 64], b"\0" * 12, "bytes of data"),
                                        ("<f4", [4, 63], b"\0" * 4 * 4 * 63, "shaped 63")):
        with pytest.raises(InvalidTensor, match=message):
            from_tensor(dtype, shape, data, (1, 8, 8))
    nan = X.copy()
    nan[2, 0, 3, 3] = np.nan
    with pytest.raises(InvalidInstance, match="instance 2: contains a value that is not a finite number"):
        from_tensor("<f4", [4, 64], nan.tobytes(), (1, 8, 8))


def test_batch_buffers_are_allocated_once_per_shape() -> None:
    buffers = BatchBuffers(4)
    seen = set()
    for count in (4, 3, 4, 1):
        view = buffers.load(X[:count])
        assert view.flags.writeable and np.array_equal(view, X[:count])
        seen.add(view.__array_interface__["data"][0])
    assert buffers.allocations == 1 and len(seen) == 1, "the same memory for every mini-batch"


def test_mini_batch_results_answer_each_instance_once() -> None:
    """A mini-batch answered twice (redelivered after its worker died) and a drop for answered instances:
    the first answer of each instance wins, the rest are counted as duplicates."""
    router = ResultRouter(client=None, stream="s")  # type: ignore[arg-type]
    waiter = router.open("t", 10, time.perf_counter())
    rows = np.eye(10, dtype=np.float32)
    router.dispatch(encode_results("t", "w1", 0.0, SERVED, [(0, 4)], 1.0, rows[0:4]))
    router.dispatch(encode_results("t", "w2", 0.0, SERVED, [(0, 4)], 0.5, rows[0:4]))  # the redelivered copy
    router.dispatch(encode_results("t", "w2", 0.0, SERVED, [(4, 4)], 0.5, rows[4:8]))
    router.dispatch(encode_results("t", "w2", 0.0, DROPPED, [(6, 4)], report={"worker": "w2", "served": 4}))
    assert waiter.remaining == 0 and waiter.event.is_set() and waiter.duplicates == 6
    info = JobInfo("job", "trial", 2, 4, (10,), [f"c{k}" for k in range(10)], {1.0: 0.9, 0.5: 0.8})
    body = build_response("t", waiter, info, 1.0, 0.5)
    answers = [(p["index"], p["status"], p["slice_rate"], p["worker"]) for p in body["predictions"]]
    assert answers == ([(i, SERVED, 1.0, "w1") for i in range(4)] + [(i, SERVED, 0.5, "w2") for i in range(4, 8)]
                       + [(i, DROPPED, None, "w2") for i in (8, 9)])
    assert [p["prediction"]["label"] for p in body["predictions"][:8]] == [f"c{k}" for k in range(8)]
    assert body["totals"]["by_rate"] == {"1": 4, "0.5": 4} and body["totals"]["duplicates"] == 6
    assert decode_entry(msgpack.packb({"kind": "future"})) is None, "a kind this reader does not know is skipped"
    with pytest.raises(ValueError, match="malformed results entry"):
        decode_entry(msgpack.packb({"kind": "results", "task": "t"}))
    with pytest.raises(ValueError, match="3 outputs for 4 instances"):
        decode_entry(encode_results("t", "w", 0.0, SERVED, [(0, 4)], 1.0, rows[:3]))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 5), st.integers(1, 64), st.integers(0, 9), st.integers(1, 8))
def test_a_message_carries_consecutive_whole_mini_batches_of_one_share(n, parts, size, offset, per) -> None:  # noqa: ANN001
    single = deal_mini_batches(n, list(range(parts)), size, offset)
    packed = deal_mini_batches(n, list(range(parts)), size, offset, per_message=per)
    assert [i for _p, start, stop, _s in packed for i in range(start, stop)] == list(range(n))
    cut = [(part, start, min(start + size, stop), share) for part, start, stop, share in packed
           for start in range(start, stop, size)]
    assert cut == single, "cut at the mini-batch size again, a packed task is the same mini-batches"
    assert all(stop - start <= per * size for _p, start, stop, _s in packed)
    for part in range(parts):
        mine = [m for m in single if m[0] == part]
        assert len([m for m in packed if m[0] == part]) == -(-len(mine) // per)


def test_mini_batches_per_message_fill_the_byte_budget() -> None:
    assert mini_batches_per_message(32, 256, 256 << 10) == 32
    assert mini_batches_per_message(32, 3 * 224 * 224 * 4, 256 << 10) == 1, "a big mini-batch travels alone"
    assert mini_batches_per_message(32, 256, 0) == 1, "0: one mini-batch per message"
    with pytest.raises(ValueError, match="message_bytes"):
        mini_batches_per_message(32, 256, -1)
    with pytest.raises(ValueError, match="per_message"):
        deal_mini_batches(10, [0], 4, per_message=0)


def test_a_message_splits_into_mini_batches_that_view_its_bytes() -> None:
    x = np.arange(10 * 6, dtype=np.float32).reshape(10, 6)
    batch = decode_mini_batch(encode_mini_batch("t", 20, 9.0, 40, 10, 1.0, x))
    pieces = batch.split(4)
    assert [(p.start, p.count) for p in pieces] == [(20, 4), (24, 4), (28, 2)]
    assert all(np.array_equal(p.array, x[p.start - 20:p.stop - 20]) for p in pieces)
    assert all(p.array.base is not None for p in pieces), "views, not copies"
    assert all((p.task, p.n, p.n_part, p.deadline_at) == ("t", 40, 10, 9.0) for p in pieces)
    assert batch.split(10) == [batch]
    values = decode_mini_batch(encode_mini_batch("t", 0, 9.0, 3, 3, 1.0, ["a", "b", "c"])).split(2)
    assert [p.values for p in values] == [["a", "b"], ["c"]]


def test_adjacent_ranges_travel_as_one_and_answer_the_same_instances() -> None:
    """A results entry merges runs of adjacent mini-batches (the predictor's work is per range); outputs keep
    their order, so every instance gets its own row."""
    rows = np.arange(12 * 2, dtype=np.float32).reshape(12, 2)
    raw = encode_results("t", "w", 0.0, SERVED, [(0, 4), (4, 4), (10, 2)], 1.0, rows[[*range(8), 10, 11]])
    entry = decode_entry(raw)
    assert entry.ranges == [(0, 8), (10, 2)]
    router = ResultRouter(client=None, stream="s")  # type: ignore[arg-type]
    waiter = router.open("t", 12, time.perf_counter())
    router.dispatch(raw)
    answered = np.flatnonzero(waiter.status)
    assert answered.tolist() == [*range(8), 10, 11]
    got = np.concatenate([b.outputs for b in waiter.blocks])
    assert np.array_equal(got, rows[answered])
