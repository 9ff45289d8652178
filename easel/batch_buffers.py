"""Where a mini-batch lives when the template gets it, and how long the device spent on it.

Both processes that hand a template its mini-batches use this: the inference worker (a trusted built-in in
its own process) and the sandbox child (uploaded code). A mini-batch arrives as a read-only view (of its
Kafka message, of the sandbox's shared memory); :class:`BatchBuffers` copies it into a buffer made once per
(dtype, instance shape) and reused for every mini-batch. Where the process serves on a GPU the buffers are
*pinned* (page-locked) host memory, so a template's ``x.to("cuda", non_blocking=True)`` is one DMA that does
not stage through a bounce buffer. :class:`DeviceTimer` measures a model call on the GPU with CUDA events —
the device's own time, beside the wall time the scheduler plans with.

Nothing here imports torch: it is used only when a template already has (a CPU worker never pays for it).
"""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType
from typing import Any

import numpy as np

log = logging.getLogger("easel.batch_buffers")

DEVICE_ENV = "EASEL_DEVICE"  # slicing.device's setting: "cpu" keeps a process off the GPU


class QueryBatch(np.ndarray):
    """A stacked mini-batch that is also a well-behaved ``Sequence`` of queries (truthiness = non-empty).

    Templates receive it as ``queries``: ``torch.as_tensor`` takes it without a copy, where a list of
    per-instance lists would cost milliseconds per mini-batch to convert.
    """

    def __bool__(self) -> bool:
        return self.shape[0] > 0


def _torch() -> Any:
    """torch if this process has imported it (a template that uses it has), else None."""
    return sys.modules.get("torch")


def serving_on_gpu() -> bool:
    """Whether this process's template runs on CUDA: torch is loaded, a GPU is visible (a sandbox sees one only
    when its worker may use it) and the device setting does not say ``cpu``."""
    torch = _torch()
    if torch is None or os.environ.get(DEVICE_ENV, "auto").strip().lower() == "cpu":
        return False
    return bool(torch.cuda.is_available())


def _pinned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """A numpy view of a new page-locked host tensor, or None where torch has no such dtype."""
    torch = _torch()
    try:
        torch_dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    except (TypeError, RuntimeError):
        return None
    return torch.empty(shape, dtype=torch_dtype, pin_memory=True).numpy()


class BatchBuffers:
    """Preallocated mini-batch arrays, one per (dtype, instance shape), reused for every mini-batch.

    :meth:`load` copies a mini-batch into the buffer (one memcpy) rather than allocating a fresh array per
    batch, and hands the template a writable :class:`QueryBatch`. One mini-batch is in flight at a time, so
    one buffer per shape suffices; it is one thread's alone (not thread-safe). A template must not keep
    ``queries`` past its call. ``pinned``: page-locked buffers (True), plain ones (False), or decide at the
    first mini-batch (None: pinned when :func:`serving_on_gpu` — the template has loaded torch by then).
    """

    def __init__(self, capacity: int, *, pinned: bool | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.pinned = pinned
        self._buffers: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
        self.allocations = 0  # how many buffers were made (a count the tests read: one per shape)

    def load(self, array: np.ndarray) -> QueryBatch:
        key = (array.dtype.str, tuple(array.shape[1:]))
        buffer = self._buffers.get(key)
        if buffer is None or len(buffer) < len(array):
            buffer = self._buffers[key] = self._allocate((max(self.capacity, len(array)), *key[1]), array.dtype)
        view = buffer[:len(array)]
        np.copyto(view, array)
        return view.view(QueryBatch)

    def _allocate(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if self.pinned is None:
            self.pinned = serving_on_gpu()
        self.allocations += 1
        buffer = None
        if self.pinned:
            try:
                buffer = _pinned_empty(shape, dtype)
            except RuntimeError as error:  # no driver, or the host cannot lock more memory: serve unpinned
                log.warning("serving from unpinned host memory: pinning a %s buffer failed (%s)", shape, error)
                self.pinned = False
        return buffer if buffer is not None else np.empty(shape, dtype=dtype)


class DeviceTimer:
    """``with DeviceTimer() as timer: model(x)`` → ``timer.seconds``: the GPU's time for what the block queued on
    the current CUDA stream (CUDA events, read after the end event completes), or None where this process has
    not initialised CUDA or the block raised. Costs nothing on a CPU worker."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self._events: tuple[Any, Any] | None = None

    def __enter__(self) -> DeviceTimer:
        self.seconds, self._events = None, None
        torch = _torch()
        if torch is not None and torch.cuda.is_initialized():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self._events = (start, end)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if self._events is None or exc_type is not None:
            return
        start, end = self._events
        end.record()
        end.synchronize()  # the template's outputs are usually on the host already, so this returns at once
        self.seconds = start.elapsed_time(end) / 1000.0
