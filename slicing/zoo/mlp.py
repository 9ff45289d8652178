"""Sliceable multi-layer perceptron."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from ..layers import SlicedLinear, make_norm
from ..module import SlicedModule
from ..rates import DEFAULT_RATES
from .common import check_num_classes


class SlicedMLP(SlicedModule):
    """Flatten -> [sliced Linear -> norm -> ReLU] * len(hidden) -> sliced classifier (full outputs)."""

    def __init__(
        self,
        hidden: Sequence[int],
        *,
        num_classes: int,
        input_shape: Sequence[int],
        groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        norm: str = "none",
    ) -> None:
        super().__init__(rates, groups)
        check_num_classes(num_classes)
        if not hidden:
            raise ValueError("an MLP needs at least one hidden layer to slice (depth >= 1)")
        in_features = math.prod(int(s) for s in input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        slice_in = False  # the input features are data, never sliced
        for width in hidden:
            layers += [
                SlicedLinear(in_features, width, slice_groups=groups, rates=self.rates, slice_in=slice_in),
                make_norm(norm, width, slice_groups=groups, rates=self.rates),
                nn.ReLU(inplace=True),
            ]
            in_features, slice_in = width, True
        self.features = nn.Sequential(*layers)
        self.classifier = SlicedLinear(
            in_features, num_classes, slice_groups=groups, rates=self.rates, slice_out=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def sliced_mlp(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (64,),
    width: int = 256,
    depth: int = 2,
    groups: int = 8,
    rates: Iterable[float] = DEFAULT_RATES,
    norm: str = "none",
) -> SlicedMLP:
    """MLP with ``depth`` hidden layers of ``width`` units each."""
    return SlicedMLP(
        [width] * depth,
        num_classes=num_classes,
        input_shape=input_shape,
        groups=groups,
        rates=rates,
        norm=norm,
    )
