"""The sandbox's shared memory on the child's side: a batch the parent put is copied straight into the child's
reused batch buffers, the region still grows afterwards, and a reference that cannot be trusted is refused."""

from __future__ import annotations

import numpy as np
import pytest

from easel.batch_buffers import BatchBuffers
from easel.sandbox.shm import SharedBuffer
from easel.sandbox.wire import ProtocolError

X = np.arange(5 * 12, dtype=np.float32).reshape(5, 3, 4)


def test_the_child_copies_shared_memory_straight_into_its_buffers() -> None:
    """``load_into``: the parent's batch, one copy into the reused buffer; the region is not held afterwards,
    so a larger batch still grows it (a view left alive would make that fail with BufferError)."""
    region = SharedBuffer.create(size=4096)
    try:
        buffers = BatchBuffers(1)
        first = region.load_into(region.put(X[:2]), buffers)
        assert np.array_equal(first, X[:2]) and first.flags.writeable
        address = first.__array_interface__["data"][0]
        again = region.load_into(region.put(X[2:4]), buffers)
        assert np.array_equal(again, X[2:4]) and again.__array_interface__["data"][0] == address
        big = np.random.default_rng(0).random((64, 3, 4)).astype(np.float32)  # 3 KiB → then 12 KiB: grows
        big2 = np.random.default_rng(1).random((256, 3, 4)).astype(np.float32)
        for array in (big, big2):
            assert np.array_equal(region.load_into(region.put(array), buffers), array)
        assert region.size >= big2.nbytes
        assert len(region.load_into(region.put(X[:0]), buffers)) == 0
    finally:
        region.close()


@pytest.mark.parametrize("ref", [{"dtype": "object", "shape": [1]}, {"dtype": ["float32"], "shape": [1]},
                                 {"dtype": "float32", "shape": []}, {"dtype": "float32", "shape": [-1, 4]},
                                 {"dtype": "float32", "shape": ["2"]}, {"dtype": "float32", "shape": [1 << 30]},
                                 {"dtype": "float32"}])
def test_a_bad_shared_memory_reference_is_a_protocol_error(ref: dict) -> None:
    region = SharedBuffer.create(size=4096)
    try:
        with pytest.raises(ProtocolError):
            region.load_into(ref, BatchBuffers(1))
    finally:
        region.close()
