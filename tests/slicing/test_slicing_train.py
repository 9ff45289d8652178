"""Rate samplers, slice-rate training on a real dataset (digits) and per-rate evaluation."""

from __future__ import annotations

import pytest
import torch
from sample_digits import load_digits

from slicing import (
    DEFAULT_RATES,
    FixedRateSampler,
    MinMaxRandomSampler,
    RandomSampler,
    RoundRobinSampler,
    evaluate_rates,
    fit,
    get_slice_rate,
    make_sampler,
    set_slice_rate,
    sliced_mlp,
    sliced_resnet,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits():
    return load_digits(as_image=False).split(0.2, seed=0)


def test_min_max_plus_k_always_has_both_ends_and_k_distinct_others():
    sampler = MinMaxRandomSampler(DEFAULT_RATES, k=1, seed=3)
    middles = set()
    for step in range(50):
        rates = sampler.sample(step)
        assert rates[0] == 1.0 and rates[-1] == 0.25 and len(rates) == 3
        middles.add(rates[1])
    assert middles == {0.75, 0.5}  # both inner widths get drawn
    assert MinMaxRandomSampler(DEFAULT_RATES, k=0).sample(0) == [1.0, 0.25]
    assert MinMaxRandomSampler(DEFAULT_RATES, k=5).sample(0) == list(DEFAULT_RATES)  # k capped


def test_round_robin_and_random_samplers():
    rr = RoundRobinSampler(DEFAULT_RATES)
    assert [rr.sample(s) for s in range(5)] == [[1.0], [0.75], [0.5], [0.25], [1.0]]
    rnd = RandomSampler(DEFAULT_RATES, n=2, seed=0)
    draws = [rnd.sample(s) for s in range(40)]
    assert all(len(d) == 2 and len(set(d)) == 2 and set(d) <= set(DEFAULT_RATES) for d in draws)
    assert {r for d in draws for r in d} == set(DEFAULT_RATES)
    assert FixedRateSampler(0.5).sample(7) == [0.5]
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("greedy")
    with pytest.raises(ValueError, match="not one of the declared rates"):
        FixedRateSampler(0.3)


def test_sliced_training_on_digits_is_accurate_at_every_rate(digits):
    train, val = digits
    torch.manual_seed(0)
    model = sliced_mlp(input_shape=(64,), width=128, depth=2)
    history = []
    result = fit(model, train, epochs=6, batch_size=32, val_data=val, device="cpu", on_epoch=history.append)
    acc = result.accuracies
    assert list(acc) == list(DEFAULT_RATES)
    assert min(acc.values()) > 0.85  # chance is 0.10
    for wide, narrow in zip(DEFAULT_RATES, DEFAULT_RATES[1:], strict=False):
        assert acc[narrow] <= acc[wide] + 0.02  # non-increasing as the network narrows, within noise
    assert [h["epoch"] for h in history] == list(range(1, 7))
    assert history[-1]["loss"] < history[0]["loss"] / 3


def test_slice_rate_training_is_what_makes_narrow_sub_models_work(digits):
    train, val = digits
    torch.manual_seed(0)
    full_only = sliced_mlp(input_shape=(64,), width=128, depth=2)
    fit(full_only, train, epochs=6, batch_size=32, sampler=FixedRateSampler(1.0), device="cpu")
    torch.manual_seed(0)
    sliced = sliced_mlp(input_shape=(64,), width=128, depth=2)
    fit(sliced, train, epochs=6, batch_size=32, device="cpu")
    acc_full_only = evaluate_rates(full_only, val, device="cpu")
    acc_sliced = evaluate_rates(sliced, val, device="cpu")
    assert acc_full_only[1.0] > 0.9
    assert acc_sliced[0.25] > acc_full_only[0.25] + 0.15


def test_cnn_with_group_norm_learns_digits_images():
    train, val = load_digits(as_image=True).split(0.2, seed=1)
    torch.manual_seed(0)
    model = sliced_resnet(input_shape=(1, 8, 8), depth=8, width=16, rates=(1.0, 0.5, 0.25))
    acc = fit(model, train, epochs=3, batch_size=64, val_data=val, device="cpu").accuracies
    assert min(acc.values()) > 0.8


def test_evaluate_restores_mode_and_rate(digits):
    _, val = digits
    model = sliced_mlp(input_shape=(64,), width=32, depth=1)
    model.train()
    set_slice_rate(model, 0.5)
    acc = evaluate_rates(model, val, rates=(1.0, 0.25), device="cpu")
    assert set(acc) == {1.0, 0.25} and all(0.0 <= a <= 1.0 for a in acc.values())
    assert model.training and get_slice_rate(model) == 0.5
    loader = torch.utils.data.DataLoader(val.tensor_dataset(), batch_size=100)
    assert evaluate_rates(model, loader, rates=(1.0,), device="cpu") == {1.0: acc[1.0]}
