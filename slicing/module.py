"""Setting the slice rate of a whole model — the one API, explicit at every call site."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from torch import nn

from .layers import SlicedLayer, active_param_count, sliced_layers
from .rates import DEFAULT_RATES, match_rate, normalize_rates

M = TypeVar("M", bound=nn.Module)


def _layers_or_raise(model: nn.Module) -> list[SlicedLayer]:
    layers = sliced_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no sliced layers")
    return layers


def _common_rates(layers: list[SlicedLayer]) -> tuple[float, ...]:
    common = set(layers[0].rates)
    for layer in layers[1:]:
        common &= set(layer.rates)
    return tuple(sorted(common, reverse=True))


def model_rates(model: nn.Module) -> tuple[float, ...]:
    """Rates every sliced layer of ``model`` supports (the intersection, widest first)."""
    return _common_rates(_layers_or_raise(model))


def _set_all(layers: list[SlicedLayer], rate: float) -> None:
    # Validate against every layer before changing any, so a bad rate never half-slices a model.
    canonical = match_rate(rate, _common_rates(layers))
    for layer in layers:
        layer.set_slice_rate(canonical)


def set_slice_rate(model: M, rate: float) -> M:
    """Put every sliced layer of ``model`` at ``rate``; raise ``ValueError`` if it is not declared."""
    _set_all(_layers_or_raise(model), rate)
    return model


def get_slice_rate(model: nn.Module) -> float:
    """The rate the model runs at; raises if its layers disagree (set layer by layer by hand)."""
    rates = {layer.slice_rate for layer in _layers_or_raise(model)}
    if len(rates) != 1:
        raise RuntimeError(f"sliced layers are at different rates {sorted(rates)}; call set_slice_rate")
    return rates.pop()


@contextmanager
def slice_rate(model: M, rate: float) -> Iterator[M]:
    """Run a block at ``rate`` and restore every layer's previous rate afterwards, even on error."""
    layers = _layers_or_raise(model)
    previous = [layer.slice_rate for layer in layers]
    _set_all(layers, rate)
    try:
        yield model
    finally:
        for layer, prev in zip(layers, previous, strict=True):
            layer.set_slice_rate(prev)


class SlicedModule(nn.Module):
    """Base of the zoo networks: knows its declared rates and exposes ``set_slice_rate``."""

    def __init__(self, rates: Iterable[float] = DEFAULT_RATES, groups: int = 8) -> None:
        super().__init__()
        self.rates = normalize_rates(rates)
        self.groups = groups

    @property
    def slice_rate(self) -> float:
        return get_slice_rate(self)

    def set_slice_rate(self, rate: float) -> SlicedModule:
        return set_slice_rate(self, rate)

    def active_params(self) -> int:
        """Parameter count of the sub-model at the current rate."""
        return active_param_count(self)
