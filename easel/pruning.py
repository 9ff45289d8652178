"""Pruners: whether a trial should stop after an epoch, judged against the scores other trials reported there.

Pure logic (no Redis, no database), one small interface with several rules behind it, in the manner of
Optuna's pruners. The train worker asks the job's pruner after each epoch (``EARLY_STOP`` policy on); the
scores of the sub-job's trials per epoch travel on Redis (:meth:`easel.tuning.TuningChannel.scores_at`).

* :class:`MedianPruner` — stop when below the median of the others at the same epoch.
* :class:`SuccessiveHalvingPruner` — asynchronous successive halving (ASHA, Li et al. 2020): epochs
  ``min_epochs · ηᵏ`` are *rungs*; a trial reaching a rung goes on only while its score is among the best
  ``1/η`` of every score recorded at that rung so far (itself included). Until a rung has η scores, only
  its best goes on (a running trial cannot be paused and promoted later).
* :class:`NoPruner` — never stops a trial.

The *promoting* ASHA (budget ``PRUNER`` ``"asha_promote"``) is no per-epoch rule a worker applies: its advisor
pauses every trial at its rungs and resumes the best (:mod:`advisor.promotions`, :mod:`advisor.promoting`).

Scores are maximised (validation accuracy).
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence


class Pruner(ABC):
    @abstractmethod
    def should_prune(self, epoch: int, score: float, others: Sequence[float]) -> bool:
        """True when a trial that scored ``score`` at ``epoch`` should stop; ``others`` are the scores the
        sub-job's other trials reported at that epoch."""


class NoPruner(Pruner):
    def should_prune(self, epoch: int, score: float, others: Sequence[float]) -> bool:  # noqa: ARG002
        return False


class MedianPruner(Pruner):
    def __init__(self, min_trials: int = 3) -> None:
        if min_trials < 1:
            raise ValueError(f"min_trials must be >= 1, got {min_trials}")
        self.min_trials = min_trials

    def should_prune(self, epoch: int, score: float, others: Sequence[float]) -> bool:  # noqa: ARG002
        return len(others) >= self.min_trials and score < statistics.median(others)


class SuccessiveHalvingPruner(Pruner):
    def __init__(self, min_epochs: int = 1, reduction_factor: int = 3) -> None:
        if min_epochs < 1:
            raise ValueError(f"min_epochs must be >= 1, got {min_epochs}")
        if reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
        self.min_epochs, self.eta = min_epochs, reduction_factor

    def rung(self, epoch: int) -> int | None:
        """The rung ``k`` whose epoch is ``min_epochs · ηᵏ``, or None when ``epoch`` is not a rung."""
        k, at = 0, self.min_epochs
        while at < epoch:
            k, at = k + 1, at * self.eta
        return k if at == epoch else None

    def should_prune(self, epoch: int, score: float, others: Sequence[float]) -> bool:
        if self.rung(epoch) is None:
            return False
        competing = sorted([*others, score], reverse=True)
        promoted = max(1, len(competing) // self.eta)  # the best 1/η go on (at least the best one)
        return score < competing[promoted - 1]


PRUNERS = ("median", "asha", "none")


def make_pruner(name: str, *, reduction_factor: int = 3, min_epochs: int = 1) -> Pruner:
    if name == "median":
        return MedianPruner()
    if name == "asha":
        return SuccessiveHalvingPruner(min_epochs=min_epochs, reduction_factor=reduction_factor)
    if name == "none":
        return NoPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


__all__ = ["PRUNERS", "MedianPruner", "NoPruner", "Pruner", "SuccessiveHalvingPruner", "make_pruner"]
