"""The serving wire format: how a mini-batch travels to a worker and how its answers come back.

The one owner of these bytes (the predictor and the workers never import each other; where the messages go —
topics, streams, the dealing rule — is :mod:`easel.serving`'s).

Requests — one Kafka message per run of consecutive mini-batches of one task's share on one partition
(``count`` instances with consecutive indices; a worker cuts it into mini-batches of S_mb, :meth:`MiniBatch.split`,
and counts its offset answered once every one of them is)::

    key:   b"<task>/<start>+<count>"          the task and index range, readable without the value
    value: MAGIC "EZ" | version u8 | header length u32 LE | CRC-32 of the header u32 LE | header | body

The header is a small msgpack map: ``task``, ``start``, ``count``, ``n`` (the task's instances), ``n_part``
(the task's instances on this message's partition, so a worker knows when it holds its whole share),
``deadline_at`` and ``sent_at`` (UNIX seconds), and either ``dtype`` + ``shape`` (the body is the tensor's raw
C-order bytes, ``shape[0] == count``) or ``values`` (the body is a msgpack list: instances of a model that
takes anything but arrays). No per-element serialisation: a worker views the body as an array in place.

A message whose header cannot be trusted (bad magic or version, CRC mismatch, missing or ill-typed fields, a
body of the wrong length) raises :class:`CorruptMessage`; the worker dead-letters it and answers the range its
key names as dropped (:func:`parse_key`), so the predictor need not wait for the deadline to learn it.

Results — Redis stream entries (field ``m``), msgpack maps, one per run of consecutive served mini-batches of one
width (their outputs one block, in range order) or per batch of drops::

    {"kind": "results", "task": "9f1c...", "worker": "w-1a2b", "at": 1718000000.2, "status": "served",
     "ranges": [[64, 32]], "rate": 0.5,
     "out": {"dtype": "<f4", "shape": [32, 10], "data": <bytes>}   # numeric outputs, one row per instance
     | "values": [...],                                           # any other outputs
     "report": {...},            # on a worker's last message for its share of the task
     "v": 3,                     # the registered model version that answered (absent: a trial deployed directly)
     "t": [polled, began, done]} # served mini-batches: when the worker polled the task, began and finished
    {"kind": "results", ..., "status": "dropped", "ranges": [[0, 32], [96, 8]]}
    {"kind": "ready", "worker": "w-1a2b"}
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from easel.serving import DROPPED, SERVED

MAGIC = b"EZ"
VERSION = 1
_PREFIX = struct.Struct("<2sBII")  # magic, version, header length, CRC-32 of the header
MAX_HEADER_BYTES = 64 << 10
# What a tensor body may hold: fixed-size numbers only (never objects, which would need pickle).
DTYPES = frozenset({"<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "|b1"})

class CorruptMessage(ValueError):
    """A request message that cannot be trusted; the text says what is wrong with it."""


# -- requests ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MiniBatch:
    """One message of a task — one mini-batch, or several consecutive ones before :meth:`split` — as a worker
    receives it."""

    task: str
    start: int  # the task index of its first instance
    count: int
    deadline_at: float
    n: int  # the task's instance count
    n_part: int  # the task's instances on this message's partition (this worker's share)
    sent_at: float
    array: np.ndarray | None  # (count, *input shape), a read-only view of the message's bytes
    values: list[Any] | None = None  # the instances of a model that takes other things than arrays

    @property
    def stop(self) -> int:
        return self.start + self.count

    @property
    def instances(self) -> Any:
        return self.array if self.array is not None else self.values

    def split(self, size: int) -> list[MiniBatch]:
        """This message's mini-batches of ``size`` (itself when it holds one): views of the same bytes, no copy."""
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if self.count <= size:
            return [self]
        task, start, count, deadline_at, n, n_part, sent_at = (self.task, self.start, self.count, self.deadline_at,
                                                                self.n, self.n_part, self.sent_at)
        array, values = self.array, self.values
        return [MiniBatch(task, start + k, min(size, count - k), deadline_at, n, n_part, sent_at,
                          None if array is None else array[k:k + size], None if values is None else values[k:k + size])
                for k in range(0, count, size)]


def message_key(task: str, start: int, count: int) -> bytes:
    return f"{task}/{start}+{count}".encode()


def parse_key(key: bytes | str | None) -> tuple[str, int, int] | None:
    """``(task, start, count)`` from a request message's key; None when it is not one."""
    try:
        text = key.decode() if isinstance(key, bytes) else key
        task, _, span = str(text).rpartition("/")
        start, _, count = span.partition("+")
        first, size = int(start), int(count)
    except (AttributeError, UnicodeDecodeError, ValueError):
        return None
    if not task or first < 0 or size < 1:
        return None
    return task, first, size


def encode_mini_batch(task: str, start: int, deadline_at: float, n: int, n_part: int, sent_at: float,
                      instances: np.ndarray | Sequence[Any]) -> bytes:
    """One request message; ``instances`` is an array ``(count, ...)`` (sent as its raw bytes) or a sequence
    of anything msgpack can carry."""
    header: dict[str, Any] = {"task": task, "start": start, "count": len(instances), "n": n, "n_part": n_part,
                              "deadline_at": deadline_at, "sent_at": sent_at}
    if isinstance(instances, np.ndarray):
        array = np.ascontiguousarray(instances)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        array = array.astype(dtype, copy=False)
        if dtype.str not in DTYPES:
            raise ValueError(f"instances: dtype {array.dtype} cannot travel; use one of {sorted(DTYPES)}")
        header["dtype"], header["shape"] = dtype.str, list(array.shape)
        body = array.tobytes()
    else:
        header["values"] = True
        body = msgpack.packb(list(instances), use_bin_type=True)
    packed = msgpack.packb(header, use_bin_type=True)
    return _PREFIX.pack(MAGIC, VERSION, len(packed), zlib.crc32(packed)) + packed + body


def _field(header: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = header.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CorruptMessage(f"header field {name!r} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def decode_mini_batch(raw: bytes) -> MiniBatch:
    """The mini-batch in ``raw`` (its array a view of ``raw``, no copy); :class:`CorruptMessage` otherwise."""
    if not isinstance(raw, bytes | bytearray | memoryview) or len(raw) < _PREFIX.size:
        raise CorruptMessage("shorter than the message prefix")
    magic, version, length, crc = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise CorruptMessage(f"bad magic {magic!r}")
    if version != VERSION:
        raise CorruptMessage(f"format version {version}, this worker reads {VERSION}")
    end = _PREFIX.size + length
    if length > MAX_HEADER_BYTES or end > len(raw):
        raise CorruptMessage(f"header length {length} does not fit the message")
    packed = bytes(raw[_PREFIX.size:end])
    if zlib.crc32(packed) != crc:
        raise CorruptMessage("header checksum mismatch")
    try:
        header = msgpack.unpackb(packed, raw=False)
    except Exception as error:  # noqa: BLE001 - any msgpack failure means the same
        raise CorruptMessage(f"header is not msgpack ({error})") from None
    if not isinstance(header, dict):
        raise CorruptMessage("header is not a map")
    task = _field(header, "task", str)
    start, count = _field(header, "start", int), _field(header, "count", int)
    n, n_part = _field(header, "n", int), _field(header, "n_part", int)
    deadline_at = float(_field(header, "deadline_at", int | float))
    sent_at = float(_field(header, "sent_at", int | float))
    if start < 0 or count < 1 or start + count > n or not count <= n_part <= n:
        raise CorruptMessage(f"index range {start}+{count} does not fit a task of {n} ({n_part} here)")
    body = memoryview(raw)[end:]
    if header.get("values"):
        try:
            values = msgpack.unpackb(body, raw=False)
        except Exception as error:  # noqa: BLE001
            raise CorruptMessage(f"body is not msgpack ({error})") from None
        if not isinstance(values, list) or len(values) != count:
            raise CorruptMessage(f"body holds no list of {count} instances")
        return MiniBatch(task, start, count, deadline_at, n, n_part, sent_at, None, values)
    dtype, shape = _field(header, "dtype", str), _field(header, "shape", list)
    if dtype not in DTYPES:
        raise CorruptMessage(f"dtype {dtype!r} is not one the wire carries")
    if not shape or shape[0] != count or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise CorruptMessage(f"shape {shape} is not ({count}, ...)")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if len(body) != expected:
        raise CorruptMessage(f"body of {len(body)} bytes, shape {shape} of {dtype} needs {expected}")
    array = np.frombuffer(body, dtype=dtype).reshape(shape)
    return MiniBatch(task, start, count, deadline_at, n, n_part, sent_at, array)


# -- results ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Results:
    """One results entry: a status for the instances of ``ranges`` (``(start, count)`` pairs)."""

    task: str
    worker: str
    at: float
    status: str
    ranges: list[tuple[int, int]]
    rate: float | None = None
    outputs: np.ndarray | list[Any] | None = None  # served: one row (or value) per instance of the ranges
    report: dict[str, Any] | None = None
    timing: list[float] | None = None
    version: int | None = None  # the registered model version that answered

    @property
    def count(self) -> int:
        return sum(count for _start, count in self.ranges)


@dataclass(frozen=True, slots=True)
class Ready:
    worker: str


def output_array(outputs: Any) -> np.ndarray | None:
    """``outputs`` as a float32 array when they are regular numbers (one row per instance), else None."""
    if isinstance(outputs, np.ndarray) and outputs.dtype.kind in "fiu":
        return outputs.astype("<f4", copy=False)
    if not isinstance(outputs, list | tuple) or not outputs:
        return None
    try:
        array = np.asarray(outputs)
    except (ValueError, TypeError):  # ragged
        return None
    return array.astype("<f4", copy=False) if array.dtype.kind in "fiu" and array.ndim >= 1 else None


def encode_results(task: str, worker: str, at: float, status: str, ranges: Sequence[tuple[int, int]],
                   rate: float | None = None, outputs: np.ndarray | Sequence[Any] | None = None,
                   report: dict[str, Any] | None = None, timing: Sequence[float] | None = None,
                   version: int | None = None) -> bytes:
    """``outputs`` (served only): an array (sent as raw bytes) or a sequence (msgpack), in range order;
    ``version``: the model version the worker serves."""
    if status not in (SERVED, DROPPED):
        raise ValueError(f"status must be {SERVED!r} or {DROPPED!r}, got {status!r}")
    body: dict[str, Any] = {"kind": "results", "task": task, "worker": worker, "at": at, "status": status,
                            "ranges": coalesced(ranges)}
    if status == SERVED:
        body["rate"] = rate
        array = output_array(outputs) if outputs is not None else None
        if array is not None:
            array = np.ascontiguousarray(array)
            body["out"] = {"dtype": array.dtype.str, "shape": list(array.shape), "data": array.tobytes()}
        elif outputs is not None:
            body["values"] = list(outputs)
    if report is not None:
        body["report"] = report
    if timing is not None:
        body["t"] = [float(t) for t in timing]
    if version is not None:
        body["v"] = int(version)
    return msgpack.packb(body, use_bin_type=True)


def coalesced(ranges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """``ranges`` with each run of adjacent ones merged (``(0, 32), (32, 32)`` → ``[0, 64]``), order kept: the
    outputs of consecutive mini-batches are one block, and the predictor's work is per range, not per mini-batch."""
    out: list[list[int]] = []
    for start, count in ranges:
        start, count = int(start), int(count)
        if out and out[-1][0] + out[-1][1] == start:
            out[-1][1] += count
        else:
            out.append([start, count])
    return out


def encode_ready(worker: str) -> bytes:
    return msgpack.packb({"kind": "ready", "worker": worker}, use_bin_type=True)


def decode_entry(raw: bytes) -> Results | Ready | None:
    """A results-stream entry; None for an entry of a kind this reader does not know. Raises ``ValueError``
    on a malformed one."""
    try:
        body = msgpack.unpackb(raw, raw=False)
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"results entry is not msgpack ({error})") from None
    if not isinstance(body, dict):
        raise ValueError("results entry is not a map")
    kind = body.get("kind")
    if kind == "ready":
        return Ready(str(body.get("worker")))
    if kind != "results":
        return None
    try:
        ranges = [(int(s), int(c)) for s, c in body["ranges"]]
        outputs: np.ndarray | list[Any] | None = body.get("values")
        out = body.get("out")
        if out is not None:
            outputs = np.frombuffer(out["data"], dtype=out["dtype"]).reshape(out["shape"])
        results = Results(str(body["task"]), str(body.get("worker")), float(body.get("at", 0.0)), str(body["status"]),
                          ranges, body.get("rate"), outputs, body.get("report"), body.get("t"),
                          int(body["v"]) if body.get("v") is not None else None)
        if outputs is not None and len(outputs) != results.count:
            raise ValueError(f"{len(outputs)} outputs for {results.count} instances")
        return results
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"malformed results entry ({error})") from None


__all__ = [
    "DTYPES", "MAGIC", "VERSION", "CorruptMessage", "MiniBatch", "Ready", "Results", "coalesced",
    "decode_entry", "decode_mini_batch", "encode_mini_batch", "encode_ready", "encode_results", "message_key",
    "output_array", "parse_key",
]
