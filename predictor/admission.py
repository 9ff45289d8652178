"""Admission control: the predictor accepts only work its workers can get to, and refuses the rest at once.

Every accepted task holds, until it is answered, its *expected compute time*: its mini-batches at the
profile's fastest width, shared by the live workers (the least the scheduler can spend on it). A task that
would take the total over ``max_work_s``, or the instances held over ``max_instances`` (the memory bound),
is refused with 429 and a Retry-After of the excess in seconds — rather than accepted and left to rot past
its deadline, which under a 10× burst once kept a million instances and 4.7 GB in the predictor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from easel.api_errors import Overloaded


@dataclass(frozen=True, slots=True)
class Ticket:
    work_s: float
    instances: int


class Admission:
    def __init__(self, max_work_s: float, max_instances: int, batch_size: int, fastest_batch_s: float | None) -> None:
        if max_work_s <= 0 or max_instances < 1 or batch_size < 1:
            raise ValueError("admission needs max_work_s > 0, max_instances >= 1 and batch_size >= 1")
        self.max_work_s = max_work_s
        self.max_instances = max_instances
        self.batch_size = batch_size
        self.fastest_batch_s = fastest_batch_s if fastest_batch_s and fastest_batch_s > 0 else None
        self.work_s = 0.0
        self.instances = 0
        self.peak_instances = 0  # the most held at once: what the memory bound is checked against
        self.refused = 0

    def expected_work_s(self, n: int, workers: int) -> float:
        if self.fastest_batch_s is None:
            return 0.0
        return math.ceil(n / self.batch_size) * self.fastest_batch_s / max(1, workers)

    def refuse_if_full(self) -> None:
        """Raise :class:`Overloaded` when no task could be admitted now, whatever its size (checked before
        a request body is even parsed)."""
        if self.work_s >= self.max_work_s or self.instances >= self.max_instances:
            self.refused += 1
            retry = max(1, math.ceil(self.work_s - self.max_work_s)) if self.work_s >= self.max_work_s else 1
            raise Overloaded(f"the job is at its bound of queued work ({self.work_s:.1f} s of "
                             f"{self.max_work_s:g} s, {self.instances} of {self.max_instances} instances); "
                             f"retry in {retry} s", retry_after_s=retry)

    def admit(self, n: int, workers: int) -> Ticket:
        """Hold room for a task of ``n`` instances, or raise :class:`Overloaded` (nothing held)."""
        work = self.expected_work_s(n, workers)
        over_work = self.work_s + work - self.max_work_s if self.work_s > 0 else 0.0  # one task always fits
        over_instances = self.instances + n > self.max_instances and self.instances > 0
        if over_work > 0 or over_instances:
            self.refused += 1
            retry = max(1, math.ceil(over_work)) if over_work > 0 else 1
            raise Overloaded(f"the job has {self.work_s:.1f} s of queued work and {self.instances} instances in "
                             f"flight (bounds {self.max_work_s:g} s, {self.max_instances}); retry in {retry} s",
                             retry_after_s=retry)
        self.work_s += work
        self.instances += n
        self.peak_instances = max(self.peak_instances, self.instances)
        return Ticket(work, n)

    def release(self, ticket: Ticket) -> None:
        self.work_s = max(0.0, self.work_s - ticket.work_s)
        self.instances = max(0, self.instances - ticket.instances)


__all__ = ["Admission", "Ticket"]
