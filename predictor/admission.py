"""Admission control: the predictor accepts only work its workers can get to, and refuses the rest at once.

Every accepted task holds, until it is answered, its *expected compute time*: its mini-batches at the
profile's fastest width, shared by the live workers (the least the scheduler can spend on it). A task that
would take the total over ``max_work_s``, or the instances held over ``max_instances`` (the memory bound),
is refused with 429 and a Retry-After of the excess in seconds — rather than accepted and left to rot past
its deadline, which under a 10× burst once kept a million instances and 4.7 GB in the predictor.

Fair share between clients (API keys): while ``k`` keys hold work (counting the one asking), each is entitled
to ``1/k`` of both bounds. A key within its share is admitted even when others have filled the job — its
share is reserved for it — while a key beyond its share gets only room left under the job's bounds. So one
key cannot starve another, and a lone key may use everything; the reserved shares can take the totals past
the bounds, never past :data:`SHARE_CEILING` times them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from easel.api_errors import Overloaded

SHARE_CEILING = 2.0  # reserved shares may take the totals past the bounds, never past this multiple of them


@dataclass(frozen=True, slots=True)
class Ticket:
    work_s: float
    instances: int
    client: str | None = None


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
        self.held: dict[str, list[float]] = {}  # per client holding work: [work_s, instances]

    def count_work_in(self, fastest_batch_s: float) -> None:
        """From now on count a task's work in this quickest mini-batch time (the workers' measurement). Work
        already held keeps the amount it was admitted with, so releasing it stays exact."""
        if not fastest_batch_s > 0:
            raise ValueError(f"fastest_batch_s must be > 0, got {fastest_batch_s!r}")
        self.fastest_batch_s = fastest_batch_s

    def expected_work_s(self, n: int, workers: int) -> float:
        if self.fastest_batch_s is None:
            return 0.0
        return math.ceil(n / self.batch_size) * self.fastest_batch_s / max(1, workers)

    def _share(self, client: str | None) -> tuple[float, float, float, float]:
        """``client``'s holdings and its share of the bounds: (work_s, instances, work share, instance share)."""
        work, instances = self.held.get(client, (0.0, 0)) if client is not None else (0.0, 0)
        clients = len(self.held) + (client is not None and client not in self.held)
        clients = max(1, clients)
        return work, instances, self.max_work_s / clients, self.max_instances / clients

    def refuse_if_full(self, client: str | None = None) -> None:
        """Raise :class:`Overloaded` when no task of ``client`` could be admitted now, whatever its size
        (checked before a request body is even parsed)."""
        if client is not None:
            work, instances, work_share, instance_share = self._share(client)
            if work < work_share and instances < instance_share:
                return  # room reserved for it
        if self.work_s >= self.max_work_s or self.instances >= self.max_instances:
            self.refused += 1
            retry = max(1, math.ceil(self.work_s - self.max_work_s)) if self.work_s >= self.max_work_s else 1
            raise Overloaded(f"the job is at its bound of queued work ({self.work_s:.1f} s of "
                             f"{self.max_work_s:g} s, {self.instances} of {self.max_instances} instances); "
                             f"retry in {retry} s", retry_after_s=retry)

    def admit(self, n: int, workers: int, client: str | None = None) -> Ticket:
        """Hold room for a task of ``n`` instances of ``client``, or raise :class:`Overloaded` (nothing held)."""
        work = self.expected_work_s(n, workers)
        over_work = self.work_s + work - self.max_work_s if self.work_s > 0 else 0.0  # one task always fits
        over_instances = self.instances + n > self.max_instances and self.instances > 0
        if client is not None and (over_work > 0 or over_instances):
            mine_work, mine_instances, work_share, instance_share = self._share(client)
            within_share = mine_work + work <= work_share and mine_instances + n <= instance_share
            hard_cap = (self.work_s + work <= SHARE_CEILING * self.max_work_s
                        and self.instances + n <= SHARE_CEILING * self.max_instances)
            if within_share and hard_cap:
                over_work, over_instances = 0.0, False  # within its reserved share
        if over_work > 0 or over_instances:
            self.refused += 1
            retry = max(1, math.ceil(over_work)) if over_work > 0 else 1
            raise Overloaded(f"the job has {self.work_s:.1f} s of queued work and {self.instances} instances in "
                             f"flight (bounds {self.max_work_s:g} s, {self.max_instances}); retry in {retry} s",
                             retry_after_s=retry)
        self.work_s += work
        self.instances += n
        self.peak_instances = max(self.peak_instances, self.instances)
        if client is not None:
            mine = self.held.setdefault(client, [0.0, 0])
            mine[0] += work
            mine[1] += n
        return Ticket(work, n, client)

    def release(self, ticket: Ticket) -> None:
        self.work_s = max(0.0, self.work_s - ticket.work_s)
        self.instances = max(0, self.instances - ticket.instances)
        mine = self.held.get(ticket.client) if ticket.client is not None else None
        if mine is not None:
            mine[0] -= ticket.work_s
            mine[1] -= ticket.instances
            if mine[1] <= 0:  # every task of the client answered: it holds nothing
                del self.held[ticket.client]


__all__ = ["Admission", "Ticket"]
