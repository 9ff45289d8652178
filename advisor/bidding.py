"""What a sub-job's advisor tells the shared train pool's allocator (:mod:`easel.pool`): how much it expects
its next proposal to improve on its best, and what a trial costs it.

The gain is the expected improvement (EI) of the next queued proposal over the sub-job's best score, under
the GP's posterior at that point; the regret is the optimistic distance still to win there (the upper
confidence bound minus the best), by which a sub-job whose GP sees nothing left yields its turn. While the GP
is still in its initial random points the proposals are random draws, so their score is taken to be
distributed like the scores seen so far (their mean and spread); with fewer than two scores the gain is
unknown (the allocator treats the sub-job as cold). The belief itself (mean, spread) is published too, for the
``regret_rate`` policy, which weighs it against the other users' on one scale. The cost is the mean duration of
its finished trials, as their rows recorded them.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from advisor.samplers import Sampler
from easel.allocation import expected_improvement, optimistic_regret
from easel.db.enums import TrialStatus
from easel.db.models import Trial
from easel.pool import Bid


def trial_cost_s(trials: Sequence[Trial]) -> float | None:
    """Mean seconds of the trials that ran to an end (completed or errored), None before the first."""
    spans = [(t.stopped_at - t.started_at).total_seconds() for t in trials
             if t.status in (TrialStatus.COMPLETED, TrialStatus.ERRORED) and t.started_at and t.stopped_at]
    return statistics.fmean(spans) if spans else None


def make_bid(trials: Sequence[Trial], sampler: Sampler, next_knobs: dict[str, Any] | None, open_trials: int) -> Bid:
    scores = [float(t.score) for t in trials if t.status == TrialStatus.COMPLETED and t.score is not None]
    best = max(scores) if scores else None
    gain = regret = belief = None
    if best is not None and next_knobs is not None:
        belief = sampler.posterior(next_knobs)
        if belief is None and len(scores) >= 2:
            belief = statistics.fmean(scores), statistics.stdev(scores)
        if belief is not None:
            gain = expected_improvement(belief[0], belief[1], best)
            regret = optimistic_regret(belief[0], belief[1], best)
    return Bid(open=open_trials, gain=gain, cost_s=trial_cost_s(trials), best=best, observed=len(scores),
               regret=regret, mean=None if belief is None else belief[0], std=None if belief is None else belief[1])


__all__ = ["make_bid", "trial_cost_s"]
