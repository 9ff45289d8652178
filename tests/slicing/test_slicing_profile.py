"""Per-rate profiles for the scheduler, and device resolution."""

from __future__ import annotations

import json

import pytest
import torch
from sample_digits import load_digits

from slicing import (
    SliceProfile,
    count_flops,
    evaluate_rates,
    profile,
    resolve_device,
    sliced_mlp,
    sliced_resnet,
)
from slicing.profiling import _timing_batch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_profile_reports_every_rate_and_round_trips_through_json():
    torch.manual_seed(0)
    _, val = load_digits(as_image=True).split(0.2, seed=0)
    model = sliced_resnet(input_shape=(1, 8, 8), depth=8, width=16)
    model.train()
    prof = profile(model, val, batch_size=16, device="cpu", warmup=1, repeats=3)
    assert prof.rates == [1.0, 0.75, 0.5, 0.25]
    assert prof.batch_size == 16 and prof.device == "cpu"
    assert prof.accuracies == [evaluate_rates(model, val, device="cpu")[r] for r in prof.rates]
    assert prof.params == sorted(prof.params, reverse=True) and len(set(prof.params)) == 4
    assert prof.flops[0] == count_flops(model, (1, 8, 8), 1.0)
    assert prof.flops == sorted(prof.flops, reverse=True)
    assert all(0 < m <= p for m, p in zip(prof.mean_batch_time_s, prof.p99_batch_time_s, strict=True))
    assert model.training  # mode restored
    restored = SliceProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert restored == prof


def test_profile_validation():
    good = dict(
        rates=[1.0, 0.5],
        accuracies=[0.9, 0.8],
        mean_batch_time_s=[0.02, 0.01],
        p99_batch_time_s=[0.03, 0.01],
        params=[100, 30],
        flops=[1000, 260],
        batch_size=32,
        device="cpu",
    )
    assert SliceProfile.from_dict(good).flops == [1000, 260]
    with pytest.raises(ValueError, match="missing"):
        SliceProfile.from_dict({k: v for k, v in good.items() if k != "flops"})
    with pytest.raises(ValueError, match="'accuracies' has 1 entries for 2 rates"):
        SliceProfile.from_dict({**good, "accuracies": [0.9]})
    with pytest.raises(ValueError, match="finite"):
        SliceProfile.from_dict({**good, "mean_batch_time_s": [float("nan"), 0.01]})


def test_timing_batch_tiles_a_small_validation_set():
    x = torch.arange(3.0).reshape(3, 1)
    assert _timing_batch(x, 7).flatten().tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert _timing_batch(x, 2).shape == (2, 1)


def test_profile_on_flat_features():
    x, y = torch.randn(40, 12), torch.randint(0, 3, (40,))
    model = sliced_mlp(num_classes=3, input_shape=(12,), width=16, depth=1, groups=4)
    prof = profile(model, (x, y), batch_size=64, device="cpu", warmup=0, repeats=2)
    assert prof.flops == [12 * 16 + 16 * 3, 12 * 12 + 12 * 3, 12 * 8 + 8 * 3, 12 * 4 + 4 * 3]


def test_resolve_device(monkeypatch):
    monkeypatch.delenv("EASEL_DEVICE", raising=False)
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected_auto
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("EASEL_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")  # the platform setting is the default
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
        monkeypatch.setenv("EASEL_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device()
