"""Who gets the train pool's next free worker: pure allocation policy (no I/O), after ease.ml (Karlaš et al.,
PVLDB'18) — give the next unit of compute to the user whose expected quality gain per unit cost is highest.

A *candidate* is one sub-train-job with work waiting for a worker. Its advisor publishes the expected
improvement (EI, in score units: accuracy points as a fraction) of its next proposal over its current best,
from its own GP, and the expected cost of a trial (the mean duration of its finished trials). Its *rate* is
EI / cost. A candidate that has not yet two observations (no GP, no spread) is *cold*: its rate is unknown and
taken as infinite, so every job gets its first trials at once (in turn).

Policies:

* ``cost_aware`` — the candidate with the highest rate. Users compete, not jobs: a user's bid is its best
  candidate, so more jobs buy no more weight. **Fairness floor**: with ``U`` users having work waiting, a user
  that has waited ``U + 1`` assignments or more is served before any rate is compared (the longest waiter
  first). At most ``U - 1`` users can wait at that threshold together and each assignment serves one of them,
  so no waiting user ever waits more than ``2U - 1`` assignments: every user with work waiting gets at least
  one of any ``2U`` consecutive assignments (a share of at least ``1/(2U)``), however steep another user's
  curve.
* ``fifo`` — the oldest job first (job order), the platform's behaviour before the pool.
* ``round_robin`` — users in turn (the longest waiter first), each user's oldest job first.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

POLICIES = ("cost_aware", "fifo", "round_robin")
MIN_COST_S = 0.05  # a trial costs at least this much: a clock too coarse to see it must not make it free


def expected_improvement(mean: float, std: float, best: float) -> float:
    """E[max(0, Y - best)] for Y ~ N(mean, std²) (maximising); ``std`` 0 gives the sure improvement."""
    if not (math.isfinite(mean) and math.isfinite(std) and math.isfinite(best)) or std < 0:
        raise ValueError(f"mean, std and best must be finite and std >= 0; got {mean!r}, {std!r}, {best!r}")
    if std == 0:
        return max(0.0, mean - best)
    z = (mean - best) / std
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    return max(0.0, (mean - best) * cdf + std * pdf)


@dataclass(frozen=True)
class Candidate:
    sub_train_job_id: str
    train_job_id: str
    user_id: str
    submitted: float  # when its job was created (UNIX seconds): the FIFO order
    gain: float | None = None  # EI of its next proposal over its best; None: cold (fewer than two observations)
    cost_s: float | None = None  # expected seconds of one trial; None: none finished yet

    @property
    def rate(self) -> float:
        """Expected gain per second of a worker (infinite while cold)."""
        if self.gain is None or self.cost_s is None:
            return math.inf
        return max(0.0, self.gain) / max(self.cost_s, MIN_COST_S)


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    reason: str  # "cold start", "highest gain per second", "fairness floor", "fifo", "round robin"
    waited: int  # assignments its user had waited


@dataclass
class Allocator:
    """The allocation state of one pool: how long each waiting user has waited, in assignments."""

    policy: str = "cost_aware"
    waits: dict[str, int] = field(default_factory=dict)
    assignments: int = 0
    by_user: Counter[str] = field(default_factory=Counter)
    floors: Counter[str] = field(default_factory=Counter)  # assignments the floor forced, per user

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}")

    def choose(self, candidates: Sequence[Candidate]) -> Choice | None:
        """The next assignment among ``candidates`` (None when there is none), and the state moved on."""
        if not candidates:
            return None
        order = sorted(candidates, key=lambda c: (c.submitted, c.sub_train_job_id))
        users = list(dict.fromkeys(c.user_id for c in order))  # in order of their oldest job
        self.waits = {user: self.waits.get(user, 0) for user in users}  # a user without work stops waiting
        longest = max(users, key=lambda user: (self.waits[user], -users.index(user)))
        if self.policy == "fifo":
            chosen, reason = order[0], "fifo"
        elif self.policy == "round_robin":
            chosen, reason = next(c for c in order if c.user_id == longest), "round robin"
        elif len(users) > 1 and self.waits[longest] >= len(users) + 1:
            chosen, reason = self._best(c for c in order if c.user_id == longest), "fairness floor"
            self.floors[longest] += 1
        else:
            chosen = self._best(order)
            reason = "cold start" if math.isinf(chosen.rate) else "highest gain per second"
        waited = self.waits[chosen.user_id]
        for user in users:
            self.waits[user] = 0 if user == chosen.user_id else self.waits[user] + 1
        self.assignments += 1
        self.by_user[chosen.user_id] += 1
        return Choice(chosen, reason, waited)

    def _best(self, candidates: Iterable[Candidate]) -> Candidate:
        """The highest rate; among equals (cold ones) the longest-waiting user's, then the oldest job."""
        return max(candidates, key=lambda c: (c.rate, self.waits.get(c.user_id, 0), -c.submitted))


__all__ = ["MIN_COST_S", "POLICIES", "Allocator", "Candidate", "Choice", "expected_improvement"]
