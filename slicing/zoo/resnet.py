"""Sliceable ResNets: CIFAR-style basic-block nets (6n+2 layers) and bottleneck ResNet-50/101/152."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import SlicedConv2d, SlicedLinear, make_norm
from ..module import SlicedModule
from ..rates import DEFAULT_RATES
from .common import check_num_classes, image_shape, init_weights

BOTTLENECK_LAYERS: dict[int, tuple[int, ...]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class _Slicing:
    """The slicing arguments every layer of one network shares (one rule for all widths)."""

    def __init__(self, groups: int, rates: tuple[float, ...], norm: str) -> None:
        self.groups, self.rates, self.norm = groups, rates, norm

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, *, slice_in: bool = True) -> SlicedConv2d:
        return SlicedConv2d(
            cin,
            cout,
            k,
            stride,
            padding=k // 2,
            bias=False,
            slice_groups=self.groups,
            rates=self.rates,
            slice_in=slice_in,
        )

    def bn(self, channels: int) -> nn.Module:
        return make_norm(self.norm, channels, slice_groups=self.groups, rates=self.rates)

    def shortcut(self, cin: int, cout: int, stride: int) -> nn.Module:
        if stride == 1 and cin == cout:
            return nn.Identity()
        return nn.Sequential(self.conv(cin, cout, 1, stride), self.bn(cout))


class SlicedBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int, s: _Slicing) -> None:
        super().__init__()
        self.conv1, self.bn1 = s.conv(in_ch, ch, 3, stride), s.bn(ch)
        self.conv2, self.bn2 = s.conv(ch, ch, 3), s.bn(ch)
        self.shortcut = s.shortcut(in_ch, ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SlicedBottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int, s: _Slicing) -> None:
        super().__init__()
        out_ch = ch * self.expansion
        self.conv1, self.bn1 = s.conv(in_ch, ch, 1), s.bn(ch)
        self.conv2, self.bn2 = s.conv(ch, ch, 3, stride), s.bn(ch)
        self.conv3, self.bn3 = s.conv(ch, out_ch, 1), s.bn(out_ch)
        self.shortcut = s.shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class SlicedResNet(SlicedModule):
    """Stem -> stages of ``block`` (widths ``width * 2**i``, stride 2 from the second stage) -> pool -> FC.

    The stem is CIFAR-style (3x3, stride 1) for inputs up to 64 pixels and ImageNet-style
    (7x7 stride 2 + max-pool) above.
    """

    def __init__(
        self,
        block: type[SlicedBasicBlock] | type[SlicedBottleneck],
        layers: Sequence[int],
        *,
        num_classes: int,
        input_shape: Sequence[int],
        width: int,
        groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        norm: str = "group",
    ) -> None:
        super().__init__(rates, groups)
        check_num_classes(num_classes)
        in_ch, h, w = image_shape(input_shape)
        s = _Slicing(groups, self.rates, norm)
        if max(h, w) <= 64:
            self.stem = nn.Sequential(
                s.conv(in_ch, width, 3, slice_in=False), s.bn(width), nn.ReLU(inplace=True)
            )
        else:
            self.stem = nn.Sequential(
                s.conv(in_ch, width, 7, 2, slice_in=False),
                s.bn(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        stages: list[nn.Module] = []
        channels = width
        for i, n_blocks in enumerate(layers):
            ch = width * 2**i
            blocks: list[nn.Module] = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(channels, ch, stride, s))
                channels = ch * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = SlicedLinear(
            channels, num_classes, slice_groups=groups, rates=self.rates, slice_out=False
        )
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))).flatten(1))


def sliced_resnet(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
    width: int | None = None,
    depth: int = 20,
    groups: int = 8,
    rates: Iterable[float] = DEFAULT_RATES,
    norm: str = "group",
) -> SlicedResNet:
    """ResNet-``depth``: 6n+2 (20, 32, 44, 56, 110) basic-block CIFAR nets, or 50/101/152 bottleneck nets.

    ``width`` is the first stage's channels; it defaults to 16 (basic) or 64 (bottleneck), as in the papers.
    """
    common = dict(num_classes=num_classes, input_shape=input_shape, groups=groups, rates=rates, norm=norm)
    if depth in BOTTLENECK_LAYERS:
        return SlicedResNet(SlicedBottleneck, BOTTLENECK_LAYERS[depth], width=width or 64, **common)
    if depth >= 8 and (depth - 2) % 6 == 0:
        n = (depth - 2) // 6
        return SlicedResNet(SlicedBasicBlock, (n, n, n), width=width or 16, **common)
    raise ValueError(
        f"ResNet depth {depth} is neither 6n+2 (20, 32, 56, ...) nor one of {sorted(BOTTLENECK_LAYERS)}"
    )
