"""Plan cache: in-process LRU keyed by (profile, quantised deadline, N_mb), and precomputed plan tables.

The deadline is quantised *down* to a multiple of ``quantum`` (``floor``, then one more step down if
float rounding put the product above ``D``). A cached plan was therefore solved for a budget no larger
than the real one, so it is feasible for the real deadline. What it can lose is the accuracy that the
last fraction of a quantum would have bought; the cached plan is optimal for the quantised deadline.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.profile import Profile
from scheduler.solve import check_request, solve

DEFAULT_QUANTUM = 0.001  # seconds: the deadline resolution the platform cares about


def quantise_down(deadline: float, quantum: float) -> int:
    """Largest integer k with ``k * quantum <= deadline`` (never rounds up)."""
    k = math.floor(deadline / quantum)
    while k > 0 and k * quantum > deadline:
        k -= 1
    return max(k, 0)


def _check_quantum(quantum: float) -> float:
    quantum = float(quantum)
    if not math.isfinite(quantum) or quantum <= 0.0:
        raise ValueError(f"quantum must be a positive number of seconds, got {quantum!r}")
    return quantum


class PlanCache:
    """In-process LRU cache of plans.

    ``get`` is the hot path (a quantisation and a dict lookup); ``plan`` is get-or-solve: on a miss it
    solves at the quantised deadline and stores the result.
    """

    def __init__(
        self,
        quantum: float = DEFAULT_QUANTUM,
        maxsize: int = 100_000,
        solver: Callable[[Profile, int, float], Plan] = solve,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.quantum = _check_quantum(quantum)
        self.maxsize = maxsize
        self._solver = solver
        self._plans: OrderedDict[tuple[str, int, int], Plan] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._plans)

    def key(self, profile: Profile, n_mb: int, deadline: float) -> tuple[str, int, int]:
        return (profile.key, quantise_down(deadline, self.quantum), n_mb)

    def get(self, profile: Profile, n_mb: int, deadline: float) -> Plan | None:
        q = self.quantum
        k = int(deadline / q)  # the same arithmetic as quantise_down, inlined for speed
        if k * q > deadline or k < 0:  # float rounding or a negative deadline: take the careful path
            if deadline < 0.0:
                return None
            k = quantise_down(deadline, q)
        key = (profile.key, k, n_mb)
        plan = self._plans.get(key)
        if plan is None:
            self.misses += 1
            return None
        self._plans.move_to_end(key)
        self.hits += 1
        return plan

    def put(self, profile: Profile, plan: Plan) -> None:
        """Store a plan under its own (n_mb, quantised deadline); refuses plans that overrun it."""
        self._store(profile, quantise_down(plan.deadline, self.quantum), plan)

    def _store(self, profile: Profile, k: int, plan: Plan) -> None:
        if plan.late or not within_deadline(plan.total_time, k * self.quantum):
            raise ValueError("only plans that fit their (quantised) deadline can be cached")
        key = (profile.key, k, plan.n_mb)
        self._plans[key] = plan
        self._plans.move_to_end(key)
        while len(self._plans) > self.maxsize:
            self._plans.popitem(last=False)

    def plan(self, profile: Profile, n_mb: int, deadline: float) -> Plan:
        n_mb, deadline = check_request(n_mb, deadline)
        cached = self.get(profile, n_mb, deadline)
        if cached is not None:
            return cached
        k = quantise_down(deadline, self.quantum)
        plan = self._solver(profile, n_mb, k * self.quantum)
        self._store(profile, k, plan)
        return plan

    def load(self, table: PlanTable, profile: Profile) -> int:
        """Insert every plan of a precomputed table (its quantum must match); returns how many."""
        if table.profile_key != profile.key:
            raise ValueError("the table was computed for a different profile")
        if table.quantum != self.quantum:
            raise ValueError(f"table quantum {table.quantum} != cache quantum {self.quantum}")
        for (k, n), counts in table.entries.items():
            self._store(profile, k, feasible_plan(profile, counts, n, k * self.quantum, "table"))
        return len(table.entries)


@dataclass(frozen=True, slots=True)
class PlanTable:
    """Precomputed counts for a grid of (quantised deadline, N_mb): plain data, JSON/bytes-serialisable.

    ``entries[(k, n_mb)]`` holds the counts solved for deadline ``k * quantum``.
    """

    profile: dict[str, list[float]]
    profile_key: str
    quantum: float
    entries: dict[tuple[int, int], tuple[int, ...]]

    def lookup(self, profile: Profile, n_mb: int, deadline: float) -> Plan | None:
        """The plan for the largest tabled deadline ``<= deadline`` with this exact n_mb, if any."""
        if profile.key != self.profile_key:
            raise ValueError("the table was computed for a different profile")
        ks = sorted(k for k, n in self.entries if n == n_mb and k * self.quantum <= deadline)
        if not ks:
            return None
        k = ks[-1]
        return feasible_plan(profile, self.entries[(k, n_mb)], n_mb, k * self.quantum, "table")

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "profile": self.profile,
                "profile_key": self.profile_key,
                "quantum": self.quantum,
                "entries": [[k, n, list(c)] for (k, n), c in sorted(self.entries.items())],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PlanTable:
        data = json.loads(text)
        if data.get("version") != 1:
            raise ValueError(f"unsupported plan table version {data.get('version')!r}")
        profile = Profile.from_dict(data["profile"])
        if profile.key != data["profile_key"]:
            raise ValueError("plan table's profile does not match its key")
        entries = {(int(k), int(n)): tuple(int(c) for c in counts) for k, n, counts in data["entries"]}
        return cls(profile.to_dict(), profile.key, _check_quantum(data["quantum"]), entries)

    def to_bytes(self) -> bytes:
        """Compressed JSON, e.g. for a Redis value."""
        return zlib.compress(self.to_json().encode(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> PlanTable:
        return cls.from_json(zlib.decompress(blob))


def precompute_plans(
    profile: Profile,
    deadlines: Iterable[float],
    n_mbs: Iterable[int],
    quantum: float = DEFAULT_QUANTUM,
    method: str = "auto",
) -> PlanTable:
    """Solve every (deadline, n_mb) of a grid, each deadline first quantised down, into a PlanTable."""
    quantum = _check_quantum(quantum)
    ks = sorted({quantise_down(check_request(0, d)[1], quantum) for d in deadlines})
    ns = sorted({check_request(n, 0.0)[0] for n in n_mbs})
    entries = {}
    for k in ks:
        for n in ns:
            entries[(k, n)] = solve(profile, n, k * quantum, method).counts
    return PlanTable(profile.to_dict(), profile.key, quantum, entries)
