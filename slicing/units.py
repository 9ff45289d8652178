"""Training in units: one pass over some data from a saved training state, and that state as tensors.

A trial trained unit by unit (an epoch, or a sub-epoch on one shard of the data) must train exactly as if it
had run in one piece: :class:`UnitTrainer` keeps everything that carries over between units — the weights,
the SGD momentum buffers, the cosine schedule's position, the shuffling generator and the rate sampler's
random state — and :meth:`UnitTrainer.state` / :meth:`UnitTrainer.load_state` move it as ``{name: tensor}``
plus string metadata (what safetensors stores; no pickle). Training shard A then shard B through a saved
state equals training A then B without one, step for step.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import Tensor, nn

from .device import resolve_device
from .module import model_rates
from .sampler import MinMaxRandomSampler, RateSampler
from .train import EpochStats, GradientRegularizer, batches, train_epoch

_MODEL, _OPTIM, _SHUFFLE = "model.", "optim.", "rng.shuffle"


class UnitTrainer:
    """SGD with momentum and a cosine learning rate over ``total_steps``, trained one data slice at a time."""

    def __init__(self, model: nn.Module, *, total_steps: int, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 5e-4, seed: int = 0, sampler: RateSampler | None = None,
                 regularizer: GradientRegularizer | None = None, device: torch.device | str = "auto") -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total_steps)
        self.sampler = sampler or MinMaxRandomSampler(model_rates(model), k=1, seed=seed)
        self.regularizer = regularizer
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0

    def run(self, x: Tensor, y: Tensor, batch_size: int) -> EpochStats:
        """One shuffled pass over ``(x, y)`` (the unit's data), continuing the state."""
        stats = train_epoch(self.model, batches(x, y, batch_size, shuffle=True, generator=self.generator),
                            self.optimizer, self.sampler, device=self.device, regularizer=self.regularizer,
                            start_step=self.step, scheduler=self.schedule)
        self.step = stats.next_step
        return stats

    def state(self) -> tuple[dict[str, Tensor], dict[str, str]]:
        """Everything the next unit needs, as tensors and string metadata."""
        tensors = {f"{_MODEL}{name}": value for name, value in self.model.state_dict().items()}
        optim = self.optimizer.state_dict()
        for index, entry in optim["state"].items():
            for name, value in entry.items():
                if isinstance(value, Tensor):
                    tensors[f"{_OPTIM}{index}.{name}"] = value
        tensors[_SHUFFLE] = self.generator.get_state()
        meta = {
            "step": str(self.step),
            "param_groups": json.dumps(optim["param_groups"]),
            "schedule": json.dumps(self.schedule.state_dict()),
            "sampler": json.dumps(self.sampler.get_state()),
        }
        return tensors, meta

    def load_state(self, tensors: dict[str, Tensor], meta: dict[str, str]) -> None:
        """Continue from what :meth:`state` returned (raises ``ValueError`` when it does not fit the model)."""
        try:
            model_state = {k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)}
            self.model.load_state_dict(model_state)
            optim_state: dict[int, dict[str, Any]] = {}
            for key, value in tensors.items():
                if key.startswith(_OPTIM):
                    index, _, name = key[len(_OPTIM):].partition(".")
                    optim_state.setdefault(int(index), {})[name] = value
            self.optimizer.load_state_dict({"state": optim_state, "param_groups": json.loads(meta["param_groups"])})
            self.schedule.load_state_dict(json.loads(meta["schedule"]))
            self.sampler.set_state(json.loads(meta["sampler"]))
            self.generator.set_state(tensors[_SHUFFLE])
            self.step = int(meta["step"])
        except (KeyError, RuntimeError, json.JSONDecodeError) as error:
            raise ValueError(f"training state does not fit this model: {error}") from error


__all__ = ["UnitTrainer"]
