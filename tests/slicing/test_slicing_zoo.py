"""Zoo networks: shapes and widths at every rate, and parameters/FLOPs that scale about r squared."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from slicing import (
    DEFAULT_RATES,
    SlicedConv2d,
    SlicedLinear,
    build_model,
    count_flops,
    count_params,
    slice_rate,
    sliced_layers,
    sliced_mlp,
    sliced_resnet,
    sliced_vgg,
    sliced_width,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Every builder takes the same keywords; these configs are small enough for CI but keep the real topology.
ZOO = {
    "mlp": dict(arch="mlp", input_shape=(64,), width=512, depth=4, groups=8),
    "vgg11": dict(arch="vgg", input_shape=(3, 16, 16), width=16, depth=11, groups=8),
    "vgg16-bn": dict(arch="vgg", input_shape=(1, 8, 8), width=16, depth=16, groups=8, norm="batch"),
    "resnet20": dict(arch="resnet", input_shape=(3, 32, 32), depth=20, groups=8),
    "resnet32": dict(arch="resnet", input_shape=(3, 16, 16), depth=32, groups=8),
    "resnet56": dict(arch="resnet", input_shape=(3, 16, 16), depth=56, groups=8),
    "resnet50": dict(arch="resnet", input_shape=(3, 32, 32), width=16, depth=50, groups=8),
}


def _build(name: str, **extra) -> nn.Module:
    cfg = dict(ZOO[name])
    return build_model(cfg.pop("arch"), num_classes=7, **cfg, **extra)


@pytest.mark.parametrize("name", list(ZOO))
def test_every_rate_runs_with_the_expected_widths(name):
    torch.manual_seed(0)
    model = _build(name)
    shape = ZOO[name]["input_shape"]
    seen: dict[nn.Module, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: seen.__setitem__(mod, out.shape[1]))
        for m in model.modules()
        if isinstance(m, SlicedConv2d | SlicedLinear)
    ]
    model.eval()
    for rate in DEFAULT_RATES:
        seen.clear()
        with slice_rate(model, rate), torch.no_grad():
            out = model(torch.randn(2, *shape))
        assert out.shape == (2, 7)  # the classifier's outputs stay full at every rate
        for layer, width in seen.items():
            full = layer.out_channels if isinstance(layer, SlicedConv2d) else layer.out_features
            assert width == (sliced_width(full, 8, rate) if layer.slice_out else full)
    for h in hooks:
        h.remove()
    first = next(m for m in model.modules() if isinstance(m, SlicedConv2d | SlicedLinear))
    assert not first.slice_in  # the data's channels are never sliced


@pytest.mark.parametrize("name", list(ZOO))
def test_params_and_flops_scale_about_rate_squared(name):
    model = _build(name)
    shape = ZOO[name]["input_shape"]
    params = {r: count_params(model, r) for r in DEFAULT_RATES}
    flops = {r: count_flops(model, shape, r) for r in DEFAULT_RATES}
    for r in DEFAULT_RATES[1:]:
        for counts in (params, flops):
            ratio = counts[r] / counts[1.0]
            assert abs(ratio - r * r) <= 0.15 * r * r, (name, r, ratio)


def test_flops_match_a_hand_count():
    model = sliced_mlp(num_classes=10, input_shape=(64,), width=32, depth=1, groups=4)
    assert count_flops(model, (64,), 1.0) == 64 * 32 + 32 * 10
    assert count_flops(model, (64,), 0.5) == 64 * 16 + 16 * 10
    conv = sliced_vgg(num_classes=3, input_shape=(1, 2, 2), width=8, depth=11, groups=8)
    # First conv 1->8 at 2x2 then pool to 1x1: every later 3x3 conv on a 1x1 map costs cin*cout*9.
    expected = 4 * 8 * 9 + 8 * 16 * 9 + 16 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 3 * 64 * 64 * 9 + 64 * 3
    assert count_flops(conv, (1, 2, 2), 1.0) == expected


def test_builders_share_keywords_and_build_from_a_config():
    common = dict(num_classes=5, width=16, groups=4, rates=(1.0, 0.5))
    mlp = sliced_mlp(input_shape=(20,), depth=1, **common)
    vgg = sliced_vgg(input_shape=(3, 8, 8), depth=11, **common)
    resnet = sliced_resnet(input_shape=(3, 8, 8), depth=8, **common)
    for model in (mlp, vgg, resnet):
        assert model.rates == (1.0, 0.5)
        assert all(layer.rates == (1.0, 0.5) for layer in sliced_layers(model))


def test_bottleneck_resnet50_layout():
    model = sliced_resnet(depth=50, input_shape=(3, 224, 224), num_classes=1000)
    assert [len(stage) for stage in model.stages] == [3, 4, 6, 3]
    assert model.classifier.in_features == 2048
    # ImageNet stem for large inputs: 7x7 stride-2 conv then max-pool.
    assert model.stem[0].kernel_size == (7, 7) and isinstance(model.stem[-1], nn.MaxPool2d)
    # Same parameters as torchvision's ResNet-50 (GroupNorm has BatchNorm's affine parameters).
    reference = torchvision.models.resnet50(weights=None)
    assert count_params(model, 1.0) == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize(
    ("builder", "kwargs", "message"),
    [
        (sliced_resnet, dict(depth=21), "neither 6n\\+2"),
        (sliced_vgg, dict(depth=12), "VGG depth 12"),
        (sliced_vgg, dict(input_shape=(32, 32)), "input_shape must be"),
        (sliced_mlp, dict(depth=0), "at least one hidden layer"),
        (sliced_mlp, dict(width=20, groups=8), "cannot be split"),
        (sliced_vgg, dict(norm="layer"), "unknown norm"),
    ],
)
def test_bad_configs_raise_clear_errors(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'alexnet'"):
        build_model("alexnet")
