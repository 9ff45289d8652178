"""Sliced layers: each keeps its full parameters and, at slice rate r, uses only the leading groups.

The slicing ``groups`` are named ``slice_groups`` here because ``nn.Conv2d``/``nn.GroupNorm`` already
use ``groups`` for something else (grouped convolution, normalisation groups).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor, nn

from .rates import (
    DEFAULT_RATES,
    active_groups,
    check_distinct_widths,
    check_divisible,
    match_rate,
    normalize_rates,
    sliced_width,
)


class SlicedLayer:
    """Mixin for a layer that runs at one of its declared slice rates (full width after construction)."""

    slice_groups: int
    rates: tuple[float, ...]
    _slice_rate: float

    def _init_slicing(self, slice_groups: int, rates: Iterable[float]) -> None:
        self.rates = normalize_rates(rates)
        check_distinct_widths(slice_groups, self.rates)
        self.slice_groups = slice_groups
        self._slice_rate = self.rates[0]

    @property
    def slice_rate(self) -> float:
        return self._slice_rate

    def set_slice_rate(self, rate: float) -> None:
        self._slice_rate = match_rate(rate, self.rates)

    def width(self, channels: int) -> int:
        """Active part of a ``channels``-wide dimension at the current rate."""
        return sliced_width(channels, self.slice_groups, self._slice_rate)

    def active_param_count(self) -> int:
        raise NotImplementedError


def _check_width(layer: str, got: int, expected: int, rate: float) -> None:
    if got != expected:
        raise ValueError(f"{layer} expects {expected} input channels at slice rate {rate}, got {got}")


class SlicedLinear(nn.Linear, SlicedLayer):
    """``nn.Linear`` whose input and/or output features shrink with the slice rate."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        slice_groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        slice_in: bool = True,
        slice_out: bool = True,
    ) -> None:
        super().__init__(in_features, out_features, bias)
        self._init_slicing(slice_groups, rates)
        self.slice_in, self.slice_out = slice_in, slice_out
        if slice_in:
            check_divisible(in_features, slice_groups)
        if slice_out:
            check_divisible(out_features, slice_groups)

    def active_in(self) -> int:
        return self.width(self.in_features) if self.slice_in else self.in_features

    def active_out(self) -> int:
        return self.width(self.out_features) if self.slice_out else self.out_features

    def forward(self, x: Tensor) -> Tensor:
        i, o = self.active_in(), self.active_out()
        _check_width("SlicedLinear", x.shape[-1], i, self._slice_rate)
        if o == self.out_features and i == self.in_features:
            return F.linear(x, self.weight, self.bias)  # full width: skip the slicing (and its backward)
        bias = self.bias[:o] if self.bias is not None else None
        return F.linear(x, self.weight[:o, :i], bias)

    def active_param_count(self) -> int:
        o = self.active_out()
        return o * self.active_in() + (o if self.bias is not None else 0)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, slice_groups={self.slice_groups}, rates={self.rates}"


class SlicedConv2d(nn.Conv2d, SlicedLayer):
    """``nn.Conv2d`` (dense, zero padding) whose input and/or output channels shrink with the rate."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        *,
        slice_groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        slice_in: bool = True,
        slice_out: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)
        self._init_slicing(slice_groups, rates)
        self.slice_in, self.slice_out = slice_in, slice_out
        if slice_in:
            check_divisible(in_channels, slice_groups)
        if slice_out:
            check_divisible(out_channels, slice_groups)

    def active_in(self) -> int:
        return self.width(self.in_channels) if self.slice_in else self.in_channels

    def active_out(self) -> int:
        return self.width(self.out_channels) if self.slice_out else self.out_channels

    def forward(self, x: Tensor) -> Tensor:
        i, o = self.active_in(), self.active_out()
        _check_width("SlicedConv2d", x.shape[1], i, self._slice_rate)
        weight, bias = self.weight, self.bias
        if o != self.out_channels or i != self.in_channels:
            weight, bias = weight[:o, :i], (bias[:o] if bias is not None else None)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation)

    def active_param_count(self) -> int:
        o = self.active_out()
        kh, kw = self.kernel_size
        return o * self.active_in() * kh * kw + (o if self.bias is not None else 0)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, slice_groups={self.slice_groups}, rates={self.rates}"


class SlicedGroupNorm(nn.GroupNorm, SlicedLayer):
    """GroupNorm whose normalisation groups nest inside the slicing groups.

    Each slicing group holds ``norm_per_slice`` normalisation groups, so the statistics of a kept
    channel never depend on channels that a narrower rate drops: one set of parameters serves all rates.
    """

    def __init__(
        self,
        num_channels: int,
        *,
        slice_groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        norm_per_slice: int = 1,
        eps: float = 1e-5,
        affine: bool = True,
    ) -> None:
        check_divisible(num_channels, slice_groups * norm_per_slice)
        super().__init__(slice_groups * norm_per_slice, num_channels, eps, affine)
        self._init_slicing(slice_groups, rates)
        self.norm_per_slice = norm_per_slice

    def forward(self, x: Tensor) -> Tensor:
        c = self.width(self.num_channels)
        _check_width("SlicedGroupNorm", x.shape[1], c, self._slice_rate)
        g = active_groups(self.slice_groups, self._slice_rate) * self.norm_per_slice
        weight, bias = self.weight, self.bias
        if c != self.num_channels:
            weight = weight[:c] if weight is not None else None
            bias = bias[:c] if bias is not None else None
        return F.group_norm(x, g, weight, bias, self.eps)

    def active_param_count(self) -> int:
        return 2 * self.width(self.num_channels) if self.affine else 0


class _AnyDimBatchNorm(nn.BatchNorm2d):
    """BatchNorm over channel dim 1 for (N, C), (N, C, L) or (N, C, H, W) inputs."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (2, 3, 4):
            raise ValueError(f"expected a 2D, 3D or 4D input, got {input.dim()}D")


class SlicedBatchNorm2d(nn.Module, SlicedLayer):
    """One private BatchNorm per declared rate: batch statistics differ between widths, so sharing
    running means across rates would mis-normalise every sub-model but one (cf. slimmable networks)."""

    def __init__(
        self,
        num_features: int,
        *,
        slice_groups: int = 8,
        rates: Iterable[float] = DEFAULT_RATES,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self._init_slicing(slice_groups, rates)
        check_divisible(num_features, slice_groups)
        self.num_features = num_features
        self.bns = nn.ModuleList(
            _AnyDimBatchNorm(sliced_width(num_features, slice_groups, r), eps, momentum, affine)
            for r in self.rates
        )

    def _current(self) -> nn.BatchNorm2d:
        return self.bns[self.rates.index(self._slice_rate)]

    def forward(self, x: Tensor) -> Tensor:
        bn = self._current()
        _check_width("SlicedBatchNorm2d", x.shape[1], bn.num_features, self._slice_rate)
        return bn(x)

    def active_param_count(self) -> int:
        return sum(p.numel() for p in self._current().parameters())


def make_norm(kind: str, channels: int, *, slice_groups: int, rates: Iterable[float]) -> nn.Module:
    """Normalisation layer by name: ``"group"`` (default of the zoo), ``"batch"`` or ``"none"``."""
    if kind == "group":
        return SlicedGroupNorm(channels, slice_groups=slice_groups, rates=rates)
    if kind == "batch":
        return SlicedBatchNorm2d(channels, slice_groups=slice_groups, rates=rates)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose 'group', 'batch' or 'none'")


def sliced_layers(module: nn.Module) -> list[SlicedLayer]:
    """All sliced layers of ``module``, itself included, without descending into them."""
    found: list[SlicedLayer] = []

    def walk(m: nn.Module) -> None:
        if isinstance(m, SlicedLayer):
            found.append(m)
            return
        for child in m.children():
            walk(child)

    walk(module)
    return found


def active_param_count(module: nn.Module) -> int:
    """Parameters in use at the current rate: sliced layers count their active slice only."""
    if isinstance(module, SlicedLayer):
        return module.active_param_count()
    own = sum(p.numel() for p in module.parameters(recurse=False))
    return own + sum(active_param_count(child) for child in module.children())


__all__ = [
    "SlicedLayer",
    "SlicedLinear",
    "SlicedConv2d",
    "SlicedGroupNorm",
    "SlicedBatchNorm2d",
    "make_norm",
    "sliced_layers",
    "active_param_count",
]
