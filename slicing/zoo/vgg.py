"""Sliceable VGG-style CNN (CIFAR variant: global average pool + one linear classifier)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from ..layers import SlicedConv2d, SlicedLinear, make_norm
from ..module import SlicedModule
from ..rates import DEFAULT_RATES
from .common import check_num_classes, image_shape, init_weights

# depth -> convolutions per stage; stage widths are width * (1, 2, 4, 8, 8) as in Simonyan & Zisserman.
VGG_CONFIGS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
_STAGE_MULTIPLIERS = (1, 2, 4, 8, 8)


class SlicedVGG(SlicedModule):
    """Stages of 3x3 conv -> norm -> ReLU, each followed by 2x2 max-pool while the map is >= 2 pixels."""

    def __init__(
        self,
        stages: Sequence[tuple[int, int]],
        *,
        num_classes: int,
        input_shape: Sequence[int],
        groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        norm: str = "group",
    ) -> None:
        super().__init__(rates, groups)
        check_num_classes(num_classes)
        in_ch, h, w = image_shape(input_shape)
        layers: list[nn.Module] = []
        slice_in = False  # image channels are data, never sliced
        for channels, convs in stages:
            for _ in range(convs):
                layers += [
                    SlicedConv2d(
                        in_ch,
                        channels,
                        3,
                        padding=1,
                        bias=False,
                        slice_groups=groups,
                        rates=self.rates,
                        slice_in=slice_in,
                    ),
                    make_norm(norm, channels, slice_groups=groups, rates=self.rates),
                    nn.ReLU(inplace=True),
                ]
                in_ch, slice_in = channels, True
            # Small inputs (8x8 digits) run out of pixels before the stages run out: stop pooling then.
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = SlicedLinear(
            in_ch, num_classes, slice_groups=groups, rates=self.rates, slice_out=False
        )
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def sliced_vgg(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
    width: int = 64,
    depth: int = 11,
    groups: int = 8,
    rates: Iterable[float] = DEFAULT_RATES,
    norm: str = "group",
) -> SlicedVGG:
    """VGG-``depth`` (11, 13, 16 or 19) whose first stage has ``width`` channels."""
    if depth not in VGG_CONFIGS:
        raise ValueError(f"VGG depth {depth} is not one of {sorted(VGG_CONFIGS)}")
    stages = [(width * m, n) for m, n in zip(_STAGE_MULTIPLIERS, VGG_CONFIGS[depth], strict=True)]
    return SlicedVGG(
        stages, num_classes=num_classes, input_shape=input_shape, groups=groups, rates=rates, norm=norm
    )


def sliced_cnn(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 8, 8),
    width: int = 16,
    depth: int = 3,
    groups: int = 8,
    rates: Iterable[float] = DEFAULT_RATES,
    norm: str = "group",
) -> SlicedVGG:
    """A small VGG-style CNN for small images: ``depth`` stages of one 3x3 convolution each, widths
    ``width * (1, 2, 4, 4, ...)``, each stage pooled while the map is at least 2 pixels wide. Trains in
    seconds on 8x8 digits, and its widths differ in time (unlike an MLP's at this size)."""
    if not 1 <= depth <= 6:
        raise ValueError(f"CNN depth must be in 1..6, got {depth}")
    stages = [(width * min(2**i, 4), 1) for i in range(depth)]
    return SlicedVGG(
        stages, num_classes=num_classes, input_shape=input_shape, groups=groups, rates=rates, norm=norm
    )
