"""Where a mini-batch lives when the template gets it (reused buffers; pinned host memory on a GPU) and the GPU
timer. The CPU parts run everywhere; the tests marked ``cuda`` run only where a GPU is visible (none was on the
machines this was written on: they are skipped there). This file needs only numpy and torch (no settings, no
servers), so a bare GPU machine runs it with ``pytest --noconftest`` (``benchmarks/gpu_check.sh``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from easel.batch_buffers import BatchBuffers, DeviceTimer, QueryBatch, serving_on_gpu

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible: the CUDA path is not exercised")
X = np.arange(5 * 12, dtype=np.float32).reshape(5, 3, 4)


def test_a_cpu_process_keeps_plain_buffers_and_times_nothing_on_a_device() -> None:
    buffers = BatchBuffers(4)
    batch = buffers.load(X[:4])
    assert isinstance(batch, QueryBatch) and np.array_equal(batch, X[:4])
    assert buffers.pinned is torch.cuda.is_available(), "decided at the first mini-batch"
    with DeviceTimer() as timer:
        torch.ones(8) @ torch.ones(8)
    if not torch.cuda.is_initialized():
        assert timer.seconds is None


def test_the_device_setting_cpu_keeps_buffers_unpinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_DEVICE", "cpu")
    assert not serving_on_gpu()
    buffers = BatchBuffers(2)
    buffers.load(X[:2])
    assert buffers.pinned is False


def test_buffers_that_cannot_be_pinned_are_plain_and_serving_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """Pinning needs the GPU driver and lockable memory; without either a worker serves from plain memory
    rather than failing every mini-batch (on a GPU machine this test pins for real and checks that)."""
    buffers = BatchBuffers(2, pinned=True)
    batch = buffers.load(X[:2])
    assert np.array_equal(batch, X[:2])
    if torch.cuda.is_available():
        assert buffers.pinned is True and torch.as_tensor(batch).is_pinned()
    else:
        assert buffers.pinned is False and "pinning a (2, 3, 4) buffer failed" in caplog.text
        assert np.array_equal(buffers.load(X[2:4]), X[2:4]) and buffers.allocations == 1


def test_a_larger_batch_grows_its_buffer_and_other_shapes_get_their_own() -> None:
    buffers = BatchBuffers(2)
    buffers.load(X[:2])
    assert np.array_equal(buffers.load(X), X) and buffers.allocations == 2
    other = np.ones((3, 7), dtype=np.int64)
    assert np.array_equal(buffers.load(other), other) and buffers.allocations == 3
    assert np.array_equal(buffers.load(X[:1]), X[:1]) and buffers.allocations == 3, "the grown buffer is reused"
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        BatchBuffers(0)


@cuda
def test_on_a_gpu_the_buffers_are_pinned_and_copies_to_the_device_are_asynchronous() -> None:
    buffers = BatchBuffers(4)
    batch = buffers.load(X[:4])
    assert buffers.pinned is True and torch.as_tensor(batch).is_pinned()
    on_device = torch.as_tensor(batch).to("cuda", non_blocking=True)
    torch.cuda.synchronize()
    assert torch.equal(on_device.cpu(), torch.as_tensor(X[:4]))


@cuda
def test_on_a_gpu_the_timer_reads_the_device_time_of_the_call() -> None:
    a = torch.randn(2048, 2048, device="cuda")
    with DeviceTimer() as timer:
        for _ in range(5):
            a = a @ a.T / 2048
    assert timer.seconds is not None and timer.seconds > 0


def test_the_builtin_template_predicts_from_the_buffers_as_from_a_plain_array(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Everywhere: the serving buffer in, the same probabilities out. On a GPU the buffer is pinned and the
    template's copy to the device asynchronous; the answer must equal the CPU's."""
    from builtin_templates.sliced import SlicedMLPTemplate
    from easel.model import default_knobs

    template = SlicedMLPTemplate(**{**default_knobs(SlicedMLPTemplate.get_knob_config()), "width": 64, "depth": 1})
    template._classes, template._input_shape = ("a", "b"), (3, 4)
    template._net = template._build(2, (3, 4))
    served = np.array(template.predict(BatchBuffers(5).load(X), 0.5))
    monkeypatch.setenv("EASEL_DEVICE", "cpu")
    on_cpu = np.array(template.predict(np.array(X).view(QueryBatch), 0.5))
    assert served.shape == (5, 2)
    np.testing.assert_allclose(served, on_cpu, rtol=1e-4, atol=1e-5)
