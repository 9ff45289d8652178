"""The sliced model zoo: builders with the same keyword arguments, and a registry by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..module import SlicedModule
from .mlp import SlicedMLP, sliced_mlp
from .resnet import BOTTLENECK_LAYERS, SlicedBasicBlock, SlicedBottleneck, SlicedResNet, sliced_resnet
from .vgg import VGG_CONFIGS, SlicedVGG, sliced_cnn, sliced_vgg

ARCHITECTURES: dict[str, Callable[..., SlicedModule]] = {
    "mlp": sliced_mlp,
    "cnn": sliced_cnn,
    "vgg": sliced_vgg,
    "resnet": sliced_resnet,
}


def build_model(arch: str, **kwargs: Any) -> SlicedModule:
    """Build a zoo network by name from a config dict (the keyword arguments of its builder)."""
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}") from None
    return builder(**kwargs)


__all__ = [
    "ARCHITECTURES",
    "BOTTLENECK_LAYERS",
    "VGG_CONFIGS",
    "SlicedBasicBlock",
    "SlicedBottleneck",
    "SlicedMLP",
    "SlicedResNet",
    "SlicedVGG",
    "build_model",
    "sliced_cnn",
    "sliced_mlp",
    "sliced_resnet",
    "sliced_vgg",
]
