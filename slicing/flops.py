"""Parameter and FLOP counts of a sub-model at a given slice rate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .layers import active_param_count
from .module import get_slice_rate, slice_rate


def count_params(model: nn.Module, rate: float | None = None) -> int:
    """Parameters the sub-model at ``rate`` (default: the current rate) actually uses."""
    with slice_rate(model, get_slice_rate(model) if rate is None else rate):
        return active_param_count(model)


def count_flops(model: nn.Module, input_shape: Sequence[int], rate: float | None = None) -> int:
    """Multiply-accumulates of conv and linear layers for ONE instance of ``input_shape`` at ``rate``.

    The convention of the ResNet and Model Slicing papers ("FLOPs" = multiply-adds); norms,
    activations and pooling are left out. Measured by running one zero instance through the model.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        cin = inputs[0].shape[1] // m.groups
        total += out[0].numel() * cin * kh * kw

    def linear_hook(m: nn.Linear, inputs: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        total += out[0].numel() * inputs[0].shape[-1]

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    device = next(model.parameters()).device
    was_training = model.training
    try:
        model.eval()  # one-instance batch: BatchNorm needs eval mode, and running stats must not move
        with slice_rate(model, get_slice_rate(model) if rate is None else rate), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
