"""The plan executor: plan → run → observe → re-plan or drop, for one task share on one worker.

One piece of pure code, run by the inference worker (real clock, real mini-batches) and by the simulator
(simulated clock, profiled times), so the simulator's numbers are those of the loop the workers run.

A share is ``n_mb`` mini-batches in run order (full ones first, the partial one last, so a drop costs the
fewest instances). The executor asks the policy for a plan with the time left and the backlog behind it,
then runs the planned mini-batches one by one in the plan's order (fastest width first). Between two
mini-batches it compares the clock with the plan, as the policy's attributes say (``Policy.replans``,
``Policy.late_rule``, raised to the executor's ``floor``):

* a re-planning policy whose remaining plan no longer fits the time left, or leaves at least one fastest
  mini-batch of time unused, is asked again for the rest with the time actually left (an overrun narrows
  or drops the tail; a pessimistic estimate gives its time back to wider models or to dropped work);
* ``LateRule.FIT``: the tail that no longer fits the time left at its planned times is dropped (Clipper);
* ``LateRule.START`` (and FIT): nothing is started once the deadline has passed;
* ``LateRule.RUN``: everything planned runs; late answers count 0 for whoever scores them.

Mini-batches the plan does not run are answered as dropped — at once for policies that do not re-plan,
at the end for those that do (a re-plan may yet run them). Every mini-batch is answered exactly once, run
or dropped, and the last answer is flagged ``last`` (the worker attaches its report to it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from scheduler.plan import Plan
from scheduler.policies.base import LateRule, Policy


class ShareRunner(Protocol):
    """What executes a share's mini-batches: the worker's model and results stream, or the simulator."""

    def planned(self, plan: Plan, first: bool) -> None:
        """A plan was made: the first one, or a re-plan that changed the remaining work."""

    def run(self, index: int, model: int, last: bool) -> float | None:
        """Run mini-batch ``index`` on sub-model ``model`` and answer it; returns the seconds it took, or None
        if it could not run (then the runner has answered it as dropped, and there is nothing to learn)."""
        ...

    def drop(self, indices: Sequence[int], last: bool) -> None:
        """Answer mini-batches ``indices`` as dropped (``indices`` may be empty when ``last`` is set)."""


@dataclass(slots=True)
class ShareOutcome:
    """What happened to one share."""

    plan: Plan  # the first plan
    ran: int = 0
    dropped: int = 0
    replans: int = 0  # re-plans that changed the remaining work


class PlanExecutor:
    """Runs shares for one policy (see the module docstring).

    Args:
        policy: what plans; its ``replans``/``late_rule`` attributes are read once per share.
        clock: the time now, in the unit of ``deadline_at`` (the worker: UNIX seconds; the simulator: its
            simulated clock, advanced by the runner).
        floor: the least strict ``LateRule`` applied whatever the policy declares (the worker: START; a
            fair comparison: FIT for every policy).
        full_size: instances in a full mini-batch; only full ones are reported to ``policy.observe`` (a
            partial mini-batch's time says little about a full one's).
    """

    def __init__(
        self, policy: Policy, clock: Callable[[], float], floor: LateRule = LateRule.RUN, full_size: int = 1
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.floor = LateRule(floor)
        self.full_size = full_size

    def run_share(
        self,
        sizes: Sequence[int],
        deadline_at: float,
        runner: ShareRunner,
        backlog: Callable[[float], Sequence[tuple[int, float]]] = lambda _now: (),
        margin: float = 0.0,
    ) -> ShareOutcome:
        """Serve one share of ``len(sizes)`` mini-batches (``sizes[i]`` instances each) by ``deadline_at``.

        Plans aim at ``deadline_at - margin`` (room for publishing the answers); the start rule uses
        ``deadline_at`` itself. ``backlog(now)`` lists the work queued behind the share.
        """
        policy = self.policy
        replans = policy.replans
        rule = max(self.floor, policy.late_rule)
        end = deadline_at - margin
        if not sizes:
            raise ValueError("a share has at least one mini-batch")
        now = self.clock()
        behind = backlog(now)
        queued = _queued(behind)  # work waiting behind the share when it was last planned
        plan = policy.decide(len(sizes), end - now, behind, now)
        outcome = ShareOutcome(plan)
        runner.planned(plan, True)
        # The plan still to run is ``models[k:]``, for ``pending[k:]`` (an index, not a slice per mini-batch), and
        # ``left`` keeps its planned seconds exactly (``_PlannedTime``: the float ``math.fsum`` of those times
        # gives) in O(1) per mini-batch; only a re-plan, which is far dearer, costs O(n).
        left = _PlannedTime(policy.profile.batch_times)  # what the plan was made with
        models = list(plan.iter_models())
        left.plan(plan.order)
        pending = list(range(len(sizes)))
        k = 0
        if not replans:  # a final plan: answer its drops at once
            unplanned = pending[len(models):]
            pending = pending[: len(models)]
            if unplanned or not pending:
                runner.drop(unplanned, not pending)
                outcome.dropped += len(unplanned)
        replanned = False
        while k < len(pending):
            now = self.clock()
            if rule >= LateRule.START and now >= deadline_at:  # out of time: the rest can only be late
                self._drop(runner, outcome, pending[k:], last=True)
                return outcome
            if replans and not replanned:
                slack = end - now - left.seconds()
                behind = backlog(now)
                grew = _queued(behind) > queued
                if slack < 0 or slack >= left.fastest or grew:
                    queued = _queued(behind)
                    plan = policy.decide(len(pending) - k, end - now, behind, now)
                    again = list(plan.iter_models())
                    if policy.profile.batch_times != left.times:  # a policy rebuilt on new times
                        left = _PlannedTime(policy.profile.batch_times)
                    left.plan(plan.order)
                    if again != models[k:]:
                        outcome.replans += 1
                        runner.planned(plan, False)
                    models, pending, k = again, pending[k:], 0
                    replanned = True
            elif rule >= LateRule.FIT and not replans:
                times = left.times
                slack = end - now - left.seconds()
                cut = 0
                while cut < len(models) - k and slack < 0:
                    slack += times[models[len(models) - 1 - cut]]
                    cut += 1
                if cut:
                    tail = pending[len(pending) - cut:]
                    for model in models[len(models) - cut:]:
                        left.ran(model)  # no longer planned
                    pending, models = pending[: len(pending) - cut], models[: len(models) - cut]
                    self._drop(runner, outcome, tail, last=k == len(pending))
                    continue
            if k >= len(models):  # the plan runs nothing more: the rest is dropped
                self._drop(runner, outcome, pending[k:], last=True)
                return outcome
            index, model = pending[k], models[k]
            k += 1
            left.ran(model)
            seconds = runner.run(index, model, k == len(pending))
            if seconds is None:
                outcome.dropped += 1
            else:
                outcome.ran += 1
                if sizes[index] >= self.full_size:
                    policy.observe(model, seconds)
            replanned = False
        return outcome

    @staticmethod
    def _drop(runner: ShareRunner, outcome: ShareOutcome, indices: list[int], last: bool) -> None:
        runner.drop(indices, last)
        outcome.dropped += len(indices)


class _PlannedTime:
    """The planned seconds of the mini-batches a plan has yet to run, kept exactly.

    Each time is a binary fraction, so over a common power-of-two denominator the remaining total is an integer
    sum; dividing two ints rounds correctly in Python, as ``math.fsum`` does, so :meth:`seconds` is the float
    ``math.fsum`` of the remaining times would give, updated in O(1) as a mini-batch runs instead of summed
    again in O(n) before each one."""

    def __init__(self, times: Sequence[float]) -> None:
        self.times = times
        self.fastest = min(times)
        ratios = [float(t).as_integer_ratio() for t in times]  # ValueError for a time that is not finite
        self._denominator = max(den for _num, den in ratios)
        self._scaled = [num * (self._denominator // den) for num, den in ratios]
        self._numerator = 0

    def plan(self, order: Sequence[tuple[int, int]]) -> None:
        """The remaining work is ``order``'s runs of ``(model, count)``."""
        self._numerator = sum(count * self._scaled[model] for model, count in order)

    def ran(self, model: int) -> None:
        self._numerator -= self._scaled[model]

    def seconds(self) -> float:
        return self._numerator / self._denominator


def _queued(backlog: Sequence[tuple[int, float]]) -> int:
    """Mini-batches waiting behind a share."""
    return sum(n for n, _ in backlog)
