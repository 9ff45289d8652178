"""Training with slice rates (gradients of several widths, one optimiser step) and per-rate evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.types import as_tensors, is_tensor_data
from .device import resolve_device
from .module import model_rates, slice_rate
from .sampler import MinMaxRandomSampler, RateSampler

Batches = Iterable[tuple[Tensor, Tensor]]
LossFn = Callable[[Tensor, Tensor], Tensor]


class GradientRegularizer(Protocol):
    """Adds its term to ``.grad`` of the parameters it watches; called once per optimiser step."""

    def apply(self, step: int) -> None: ...


def batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches by tensor indexing — much cheaper than a per-sample DataLoader for in-memory data."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]


def _iter_batches(data: Any, batch_size: int) -> Batches:
    if is_tensor_data(data):
        x, y = as_tensors(data)
        return list(batches(x, y, batch_size))
    return data  # a re-iterable of (x, y) batches, e.g. a DataLoader


@dataclass
class EpochStats:
    loss: float  # mean loss over every (mini-batch, rate) pair trained
    batches: int
    samples: int
    next_step: int  # global step counter to pass to the next epoch


def train_epoch(
    model: nn.Module,
    data: Batches,
    optimizer: torch.optim.Optimizer,
    sampler: RateSampler,
    *,
    device: torch.device | str = "auto",
    loss_fn: LossFn = F.cross_entropy,
    regularizer: GradientRegularizer | None = None,
    start_step: int = 0,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> EpochStats:
    """One pass over ``data``: per mini-batch, sum the gradients of every sampled rate, then one step.

    Summing (not averaging) keeps the full-width gradient as large as in ordinary training, so the
    same learning rate works for sliced and unsliced models.
    """
    device = resolve_device(device)
    model.train()
    total_loss, pairs, n_batches, n_samples, step = 0.0, 0, 0, 0, start_step
    for x, y in data:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        for rate in sampler.sample(step):
            with slice_rate(model, rate):
                loss = loss_fn(model(x), y)
            loss.backward()
            total_loss += loss.item()
            pairs += 1
        if regularizer is not None:
            regularizer.apply(step)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()  # per-step schedules (cosine over all steps)
        n_batches += 1
        n_samples += len(y)
        step += 1
    return EpochStats(total_loss / max(pairs, 1), n_batches, n_samples, step)


@torch.no_grad()
def evaluate_rates(
    model: nn.Module,
    data: Any,
    *,
    rates: Iterable[float] | None = None,
    device: torch.device | str = "auto",
    batch_size: int = 512,
) -> dict[float, float]:
    """Top-1 accuracy at every rate (default: all the model's rates), in eval mode; restores the mode."""
    device = resolve_device(device)
    chosen = tuple(rates) if rates is not None else model_rates(model)
    data = _iter_batches(data, batch_size)
    was_training = model.training
    model.eval()
    result: dict[float, float] = {}
    try:
        for rate in chosen:
            correct = total = 0
            with slice_rate(model, rate):
                for x, y in data:
                    pred = model(x.to(device)).argmax(1)
                    correct += int((pred == y.to(device)).sum())
                    total += len(y)
            if total == 0:
                raise ValueError("evaluation data is empty")
            result[rate] = correct / total
    finally:
        model.train(was_training)
    return result


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per epoch
    accuracies: dict[float, float] = field(default_factory=dict)  # last evaluation, per rate
    steps: int = 0


def fit(
    model: nn.Module,
    train_data: Any,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    sampler: RateSampler | None = None,
    regularizer: GradientRegularizer | None = None,
    val_data: Any = None,
    eval_every: int = 0,
    device: torch.device | str = "auto",
    seed: int = 0,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train with SGD + cosine learning rate for ``epochs``; evaluate per rate on ``val_data``.

    ``eval_every`` = 0 evaluates only after the last epoch. ``on_epoch`` receives each history entry
    (the train worker reports it as a per-epoch score).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    device = resolve_device(device)
    model.to(device)
    x, y = as_tensors(train_data)
    sampler = sampler or MinMaxRandomSampler(model_rates(model), k=1, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    result = FitResult()
    for epoch in range(1, epochs + 1):
        stats = train_epoch(
            model,
            batches(x, y, batch_size, shuffle=True, generator=generator),
            optimizer,
            sampler,
            device=device,
            regularizer=regularizer,
            start_step=result.steps,
            scheduler=schedule,
        )
        result.steps = stats.next_step
        entry: dict[str, Any] = {"epoch": epoch, "loss": stats.loss}
        last = epoch == epochs
        if val_data is not None and (last or (eval_every and epoch % eval_every == 0)):
            accs = evaluate_rates(model, val_data, device=device)
            entry["accuracy"] = {str(r): a for r, a in accs.items()}
            result.accuracies = accs
        result.history.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
    return result
