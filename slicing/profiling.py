"""Per-rate profiles (accuracy p_i, batch time t_i, params, FLOPs): what the scheduler consumes."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from .data.types import as_tensors
from .device import resolve_device
from .flops import count_flops, count_params
from .module import model_rates, slice_rate
from .train import evaluate_rates


@dataclass(frozen=True)
class SliceProfile:
    """One entry per rate, widest first, in parallel lists. JSON-safe through ``to_dict``."""

    rates: list[float]
    accuracies: list[float]
    mean_batch_time_s: list[float]
    p99_batch_time_s: list[float]
    params: list[int]
    flops: list[int]  # multiply-adds per instance
    batch_size: int
    device: str

    def __post_init__(self) -> None:
        n = len(self.rates)
        if n == 0:
            raise ValueError("a profile needs at least one rate")
        for f in ("accuracies", "mean_batch_time_s", "p99_batch_time_s", "params", "flops"):
            if len(getattr(self, f)) != n:
                raise ValueError(f"profile field {f!r} has {len(getattr(self, f))} entries for {n} rates")
        for f in ("accuracies", "mean_batch_time_s", "p99_batch_time_s"):
            if not all(math.isfinite(v) and v >= 0 for v in getattr(self, f)):
                raise ValueError(f"profile field {f!r} must hold finite non-negative numbers")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceProfile:
        names = {f.name for f in fields(cls)}
        missing = names - data.keys()
        if missing:
            raise ValueError(f"profile is missing {sorted(missing)}")
        return cls(
            rates=[float(v) for v in data["rates"]],
            accuracies=[float(v) for v in data["accuracies"]],
            mean_batch_time_s=[float(v) for v in data["mean_batch_time_s"]],
            p99_batch_time_s=[float(v) for v in data["p99_batch_time_s"]],
            params=[int(v) for v in data["params"]],
            flops=[int(v) for v in data["flops"]],
            batch_size=int(data["batch_size"]),
            device=str(data["device"]),
        )


def _timing_batch(x: Tensor, batch_size: int) -> Tensor:
    """The first ``batch_size`` rows, tiled if the set is smaller (timing needs a full mini-batch)."""
    reps = math.ceil(batch_size / len(x))
    return (x.repeat(reps, *([1] * (x.dim() - 1))) if reps > 1 else x)[:batch_size]


@torch.no_grad()
def time_rates(
    model: nn.Module, xb: Tensor, rates: Iterable[float], *, warmup: int = 3, repeats: int = 20
) -> dict[float, list[float]]:
    """Seconds per forward pass of ``xb`` at each rate. Rates are interleaved round by round so that
    background load on a shared machine spreads over all rates instead of skewing one."""
    rates = tuple(rates)
    cuda = xb.device.type == "cuda"
    times: dict[float, list[float]] = {r: [] for r in rates}
    for r in rates:
        with slice_rate(model, r):
            for _ in range(warmup):
                model(xb)
    for _ in range(repeats):
        for r in rates:
            with slice_rate(model, r):
                if cuda:
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    torch.cuda.synchronize(xb.device)
                    start.record()
                    model(xb)
                    end.record()
                    torch.cuda.synchronize(xb.device)
                    times[r].append(start.elapsed_time(end) / 1000.0)
                else:
                    t0 = time.perf_counter()
                    model(xb)
                    times[r].append(time.perf_counter() - t0)
    return times


def profile(
    model: nn.Module,
    data: Any,
    batch_size: int = 32,
    *,
    rates: Iterable[float] | None = None,
    device: torch.device | str = "auto",
    warmup: int = 3,
    repeats: int = 20,
) -> SliceProfile:
    """Accuracy on ``data`` (a validation set) and inference time per mini-batch of ``batch_size`` at
    every rate, plus parameters and FLOPs per instance. Moves ``model`` to ``device``; restores its
    train/eval mode and slice rate."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    dev = resolve_device(device)
    chosen = tuple(rates) if rates is not None else model_rates(model)
    x, y = as_tensors(data)
    if len(x) == 0:
        raise ValueError("profile data is empty")
    model.to(dev)
    was_training = model.training
    model.eval()
    try:
        acc = evaluate_rates(model, (x, y), rates=chosen, device=dev)
        times = time_rates(
            model, _timing_batch(x, batch_size).to(dev), chosen, warmup=warmup, repeats=repeats
        )
        shape = tuple(x.shape[1:])
        params = [count_params(model, r) for r in chosen]
        flops = [count_flops(model, shape, r) for r in chosen]
    finally:
        model.train(was_training)
    return SliceProfile(
        rates=list(chosen),
        accuracies=[acc[r] for r in chosen],
        mean_batch_time_s=[sum(times[r]) / len(times[r]) for r in chosen],
        p99_batch_time_s=[float(torch.tensor(times[r], dtype=torch.float64).quantile(0.99)) for r in chosen],
        params=params,
        flops=flops,
        batch_size=batch_size,
        device=str(dev),
    )
