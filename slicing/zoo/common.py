"""Shared argument checks and initialisation for the zoo builders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..layers import SlicedConv2d


def image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Validate a (C, H, W) input shape for a convolutional network."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {tuple(input_shape)}")
    return shape  # type: ignore[return-value]


def check_num_classes(num_classes: int) -> None:
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")


def init_weights(model: nn.Module) -> None:
    """He initialisation for convolutions (as torchvision's ResNet/VGG), unit/zero for norms."""
    for m in model.modules():
        if isinstance(m, SlicedConv2d | nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GroupNorm | nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
