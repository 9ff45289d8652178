"""The policy interface, and how a policy's plans are executed: behaviour declared once, as attributes.

A policy sees a task (``n_mb`` mini-batches, ``deadline`` = seconds left until the task's deadline) and
returns a Plan. What happens to that plan as real time passes is the executor's job
(``scheduler.simulation.executor``), steered by two attributes every policy declares:

* ``replans`` — ask the policy again, mid-task, when the clock runs behind or ahead of the plan (Easel's
  scheduler);
* ``late_rule`` — what happens to work that can no longer finish by the deadline (``LateRule``).

The worker and the simulator run the same executor, so a policy behaves the same in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Protocol, runtime_checkable

from scheduler.plan import Plan
from scheduler.profile import Profile


class LateRule(IntEnum):
    """What the executor does with mini-batches that would finish after the deadline (stricter = larger).

    ``RUN``: run every planned mini-batch; late answers count 0 (fixed widths and Model-Switching as
    published). ``START``: never start a mini-batch after the deadline (the worker's floor for every
    policy: such a mini-batch can only be late). ``FIT``: before each mini-batch, drop the plan's tail
    until the rest fits the time left at its planned times (Clipper's rule, and the shared drop rule that
    makes the baselines an honest comparison).
    """

    RUN = 0
    START = 1
    FIT = 2


@runtime_checkable
class Policy(Protocol):
    name: str
    profile: Profile
    replans: bool
    late_rule: LateRule

    def decide(
        self, n_mb: int, deadline: float, backlog: Sequence[tuple[int, float]] = (), now: float | None = None
    ) -> Plan:
        """Plan a task of ``n_mb`` mini-batches with ``deadline`` seconds left.

        ``backlog`` lists the tasks already waiting behind it on the same worker, in run order, as
        ``(n_mb, seconds left until their deadline)``; ``now`` is the clock the worker's arrivals are
        stamped with (``on_arrival``). Policies may ignore both.
        """
        ...

    def observe(self, model: int, batch_time: float) -> None:
        """Feedback: one full mini-batch of sub-model ``model`` took ``batch_time`` seconds."""
        ...

    def on_arrival(self, n_mb: int, now: float) -> None:
        """Feedback: a task of ``n_mb`` mini-batches joined this worker's queue at time ``now``."""
        ...


class BasePolicy:
    """Defaults: runs its plans as made (no re-planning, late work runs) and learns nothing."""

    name: str
    profile: Profile
    replans: bool = False
    late_rule: LateRule = LateRule.RUN

    def observe(self, model: int, batch_time: float) -> None:
        pass

    def on_arrival(self, n_mb: int, now: float) -> None:
        pass
