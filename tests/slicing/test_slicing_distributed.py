"""Distributed sliced training: 2 gloo worker processes on 127.0.0.1, periodic weight averaging."""

from __future__ import annotations

import functools

import pytest
import torch
from sample_digits import load_digits

from slicing import default_worker_rates, distributed_train, evaluate_rates, sliced_mlp


def test_default_worker_rates_deal_narrow_rates_and_keep_full_width():
    assert default_worker_rates((1.0, 0.75, 0.5, 0.25), 2) == [(1.0, 0.75, 0.25), (1.0, 0.5)]
    assert default_worker_rates((1.0,), 3) == [(1.0,), (1.0,), (1.0,)]


def test_two_gloo_workers_end_with_identical_merged_weights():
    train, val = load_digits(as_image=False).split(0.2, seed=0)
    # functools.partial of a zoo builder: picklable, so spawned workers can build the same model.
    build = functools.partial(sliced_mlp, input_shape=(64,), width=64, depth=1)
    result = distributed_train(
        build, train, world_size=2, epochs=2, batch_size=32, merge_every=5, device="cpu", seed=0
    )
    assert result.backend == "gloo"
    first, second = result.worker_states
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    # 1437 examples / 2 workers / batch 32 = 22 steps per epoch; 44 steps -> 8 merges + the final one.
    assert result.steps == 44 and result.merges == 9
    assert result.worker_rates == [(1.0, 0.75, 0.25), (1.0, 0.5)]
    model = build()
    model.load_state_dict(result.state_dict)
    acc = evaluate_rates(model, val, device="cpu")
    assert min(acc.values()) > 0.6  # the merged model works at every rate, including one each worker lacked


def test_too_little_data_is_refused_before_spawning():
    x, y = torch.randn(10, 4), torch.zeros(10, dtype=torch.int64)
    build = functools.partial(sliced_mlp, input_shape=(4,), width=8, depth=1, groups=4)
    with pytest.raises(ValueError, match="too few"):
        distributed_train(build, (x, y), world_size=2, batch_size=8, device="cpu")
