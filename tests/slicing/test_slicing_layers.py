"""Sliced layers, the width rule and the one API that sets a model's slice rate."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from slicing import (
    DEFAULT_RATES,
    SlicedBatchNorm2d,
    SlicedConv2d,
    SlicedGroupNorm,
    SlicedLinear,
    active_groups,
    count_params,
    get_slice_rate,
    normalize_rates,
    set_slice_rate,
    slice_rate,
    sliced_mlp,
    sliced_width,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The CI machine is small and shared: one intra-op thread avoids OpenMP oversubscription stalls.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_width_rule_is_ceil_of_groups_and_robust_to_float_noise():
    assert [sliced_width(64, 8, r) for r in DEFAULT_RATES] == [64, 48, 32, 16]
    assert active_groups(8, 0.3) == 3  # ceil(2.4)
    assert active_groups(10, 0.3) == 3  # 10 * 0.3 == 3.0000000000000004 must not become 4
    assert active_groups(8, 0.01) == 1  # never zero channels


def test_rate_list_validation():
    assert normalize_rates([0.25, 1.0, 0.5, 1.0]) == (1.0, 0.5, 0.25)
    with pytest.raises(ValueError, match="full width 1.0"):
        normalize_rates([0.5, 0.25])
    with pytest.raises(ValueError, match="outside"):
        normalize_rates([1.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        normalize_rates([])


def test_layers_refuse_indivisible_channels_and_colliding_rates():
    with pytest.raises(ValueError, match="cannot be split"):
        SlicedLinear(16, 30, slice_groups=8)
    with pytest.raises(ValueError, match="both keep"):
        SlicedLinear(16, 16, slice_groups=2, rates=(1.0, 0.75))  # ceil(1.5) == 2 groups == full


def test_linear_uses_leading_slice_of_full_weights():
    layer = SlicedLinear(16, 8, slice_groups=4)
    x = torch.randn(3, 8)
    with slice_rate(layer, 0.5):
        out = layer(x)
    expected = x @ layer.weight[:4, :8].T + layer.bias[:4]
    assert out.shape == (3, 4)
    torch.testing.assert_close(out, expected)


def test_input_width_mismatch_is_a_clear_error():
    layer = SlicedConv2d(8, 8, 3, padding=1, slice_groups=4)
    set_slice_rate(layer, 0.5)
    with pytest.raises(ValueError, match="expects 4 input channels at slice rate 0.5, got 8"):
        layer(torch.randn(1, 8, 5, 5))


def test_set_slice_rate_rejects_undeclared_rate_and_leaves_model_untouched():
    model = sliced_mlp(input_shape=(8,), width=16, depth=2, groups=4)
    model.set_slice_rate(0.5)
    with pytest.raises(
        ValueError, match=r"0\.6 is not one of the declared rates \(1\.0, 0\.75, 0\.5, 0\.25\)"
    ):
        model.set_slice_rate(0.6)
    assert model.slice_rate == 0.5
    assert model.set_slice_rate(0.25 + 1e-12).slice_rate == 0.25  # float noise maps to the declared rate


def test_context_manager_restores_previous_rate_even_on_error():
    model = sliced_mlp(input_shape=(8,), width=16, depth=2, groups=4)
    set_slice_rate(model, 0.75)
    with pytest.raises(RuntimeError, match="boom"), slice_rate(model, 0.25):
        assert get_slice_rate(model) == 0.25
        raise RuntimeError("boom")
    assert get_slice_rate(model) == 0.75


def test_mixed_layer_rates_are_reported_not_guessed():
    model = sliced_mlp(input_shape=(8,), width=16, depth=2, groups=4)
    model.features[1].set_slice_rate(0.5)  # someone set one layer by hand
    with pytest.raises(RuntimeError, match="different rates"):
        get_slice_rate(model)


def test_plain_module_without_sliced_layers_is_refused():
    with pytest.raises(ValueError, match="no sliced layers"):
        set_slice_rate(nn.Linear(2, 2), 1.0)


def test_group_norm_statistics_do_not_depend_on_dropped_channels():
    # First conv (input not sliced) + aligned GroupNorm: a narrow sub-model computes exactly the leading
    # channels of the full model, because each norm group lies inside one slicing group.
    torch.manual_seed(0)
    block = nn.Sequential(
        SlicedConv2d(3, 16, 3, padding=1, slice_groups=4, slice_in=False),
        SlicedGroupNorm(16, slice_groups=4, norm_per_slice=2),
    )
    x = torch.randn(2, 3, 6, 6)
    full = block(x)
    for rate, channels in [(0.75, 12), (0.5, 8), (0.25, 4)]:
        with slice_rate(block, rate):
            narrow = block(x)
        assert narrow.shape[1] == channels
        torch.testing.assert_close(narrow, full[:, :channels])


def test_per_rate_batch_norm_keeps_separate_statistics():
    bn = SlicedBatchNorm2d(8, slice_groups=4)
    before = [b.running_mean.clone() for b in bn.bns]
    with slice_rate(bn, 0.5):
        bn(torch.randn(16, 4, 3, 3) + 5.0)
    moved = [not torch.equal(b.running_mean, old) for b, old in zip(bn.bns, before, strict=True)]
    assert moved == [False, False, True, False]
    assert bn.bns[2].num_features == 4
    bn.eval()
    with slice_rate(bn, 0.5):
        assert bn(torch.randn(2, 4)).shape == (2, 4)  # also works on (N, C) features


def test_active_params_at_full_rate_equal_all_parameters_for_shared_norms():
    model = sliced_mlp(input_shape=(12,), width=32, depth=2, groups=4, norm="group")
    assert count_params(model, 1.0) == sum(p.numel() for p in model.parameters())
    # 12*16+16 + 16*16+16 + 16*10+10 weights/biases, plus 2 * 16 GroupNorm affine per hidden layer.
    assert count_params(model, 0.5) == (12 * 16 + 16) + (16 * 16 + 16) + (16 * 10 + 10) + 2 * 2 * 16


@settings(max_examples=40, deadline=None)
@given(
    groups=st.integers(1, 8),
    multipliers=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    rates=st.lists(st.sampled_from([0.9, 0.8, 0.75, 0.6, 0.5, 0.4, 0.3, 0.25, 0.1]), max_size=4),
)
def test_consecutive_widths_agree_for_every_declared_rate(groups, multipliers, rates):
    rates = normalize_rates([1.0, *rates])
    assume(len({active_groups(groups, r) for r in rates}) == len(rates))
    dims = [groups * m for m in multipliers]
    layers = [
        SlicedLinear(dims[i], dims[i + 1], slice_groups=groups, rates=rates, slice_in=i > 0)
        for i in range(len(dims) - 1)
    ]
    net = nn.Sequential(*layers)
    for r in rates:
        with slice_rate(net, r):
            out = net(torch.randn(2, dims[0]))  # raises on any width mismatch
        assert out.shape[1] == sliced_width(dims[-1], groups, r)
