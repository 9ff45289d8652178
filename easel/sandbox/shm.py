"""A shared-memory buffer (a sealed memfd) through which the parent hands input batches to the child.

The parent creates it, seals it against shrinking (a child that truncated it would make the parent's next
write fault), passes the descriptor into the sandbox and writes each batch at offset 0; the child maps the
same pages and copies the batch out. One call is in flight at a time, so one region suffices; it grows when a
batch does not fit. Nothing is read back from it: the child's answers come over the socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import mmap
import os
from typing import Any

import numpy as np

from easel.batch_buffers import BatchBuffers, QueryBatch
from easel.sandbox.wire import DTYPES, MAX_DIMS, ProtocolError, dtype_name

INITIAL_BYTES = 1 << 20
_DTYPES = {name: np.dtype(name) for name in DTYPES}  # np.dtype(name) costs more than the lookup, on every batch


class SharedBuffer:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map: mmap.mmap | None = None
        self._remap()

    @classmethod
    def create(cls, size: int = INITIAL_BYTES) -> SharedBuffer:
        fd = os.memfd_create("easel-sandbox-batch", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        return cls(fd)

    @property
    def size(self) -> int:
        return len(self._map) if self._map is not None else 0

    def _remap(self) -> None:
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self.fd, os.fstat(self.fd).st_size)

    def put(self, array: np.ndarray) -> dict[str, Any]:
        """Write ``array`` at offset 0 (growing the region if needed); the reference the child reads it by."""
        array = np.ascontiguousarray(array)
        name = dtype_name(array.dtype)
        if name is None:
            raise ValueError(f"queries of dtype {array.dtype} cannot go to a sandbox")
        if array.nbytes > self.size:
            os.ftruncate(self.fd, max(array.nbytes, 2 * self.size))
            self._remap()
        assert self._map is not None
        self._map[:array.nbytes] = array.view(np.uint8).reshape(-1).data
        return {"dtype": name, "shape": list(array.shape)}

    def load_into(self, ref: dict[str, Any], buffers: BatchBuffers) -> QueryBatch:
        """The array ``ref`` names (the child's side; the region grew if the parent says so), copied straight from
        the region into ``buffers`` (reused, pinned on a GPU): one copy, no allocation per batch. The region is viewed only for the copy (a live view would stop
        :meth:`_remap` from growing it)."""
        dtype, shape, nbytes = self._checked(ref)
        assert self._map is not None
        source = np.frombuffer(self._map, dtype=dtype, count=nbytes // dtype.itemsize).reshape(shape)
        try:
            return buffers.load(source)
        finally:
            del source  # the region's export ends with the view (refcount: at once)

    def _checked(self, ref: dict[str, Any]) -> tuple[np.dtype, list[int], int]:
        name, shape = ref.get("dtype"), ref.get("shape")
        dtype = _DTYPES.get(name) if isinstance(name, str) else None
        if (dtype is None or type(shape) is not list or not 1 <= len(shape) <= MAX_DIMS
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise ProtocolError("bad shared-memory reference")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.size:
            self._remap()
        if nbytes > self.size:
            raise ProtocolError(f"shared-memory reference of {nbytes} bytes past the region's {self.size}")
        return dtype, shape, nbytes

    def close(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        with contextlib.suppress(OSError):
            os.close(self.fd)
