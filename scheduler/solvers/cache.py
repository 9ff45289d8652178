"""Plan cache: in-process LRU keyed by (profile, quantised deadline, N_mb), and precomputed plan tables.

A cell is the deadlines ``[k q, (k + 1) q)`` of one quantum ``q``. Its entry is the plan solved for the
cell's floor ``k q``: no larger than any deadline in the cell, so feasible for all of them. What it can lose
is bounded and checked when the entry is made. The optimum is non-decreasing in the deadline, so for every
``D`` in the cell ``OPT(D) <= OPT((k + 1) q) <= top + top.gap`` (the plan solved at the cell's top, plus its
proven gap). If that bound is within ``max_loss`` effective accuracy of the floor plan, the entry serves the
whole cell; otherwise the cell is marked *sensitive* (``None``) and every request in it is solved at its
own deadline. Hence the cache's contract, tested: **a plan it returns is feasible for the real deadline and
at most ``max_loss`` (default 0.001) below the exact optimum for it.** Cells that straddle a step of the
optimum — N = 1 with D = t_min, a budget held at N t_min — are exactly the sensitive ones, so they are
served exactly.
"""

from __future__ import annotations

import json
import math
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from scheduler.checks import count, positive, real, seconds
from scheduler.gc_pause import gc_paused
from scheduler.plan import Plan, feasible_plan, within_deadline
from scheduler.profile import Profile
from scheduler.solvers.solve import DEFAULT_TIME_BUDGET, check_request, solve

DEFAULT_QUANTUM = 0.001  # seconds: the deadline resolution the platform cares about
DEFAULT_MAX_LOSS = 0.001  # effective accuracy a cached plan may lose against the exact optimum
# The cell's top is solved a hair above (k + 1) q, so that float rounding in quantise_down can never
# put a deadline of the cell above it.
_TOP_SLACK = 1e-12


def quantise_down(deadline: float, quantum: float) -> int:
    """Largest integer k with ``k * quantum <= deadline`` (never rounds up)."""
    k = math.floor(deadline / quantum)
    while k > 0 and k * quantum > deadline:
        k -= 1
    return max(k, 0)


def _check_quantum(quantum: float) -> float:
    return positive("quantum", quantum)


def cell_top(k: int, quantum: float) -> float:
    return (k + 1) * quantum * (1.0 + _TOP_SLACK)


def cell_loss(floor: Plan, top: Plan) -> float:
    """Most effective accuracy ``floor`` can lose, in its cell, against the exact optimum (see above)."""
    return max(0.0, top.effective_accuracy + top.gap - floor.effective_accuracy)


class PlanCache:
    """In-process LRU cache of plans, each within ``max_loss`` of the exact optimum (module docstring).

    ``get`` is the hot path (a quantisation and a dict lookup); ``plan`` is get-or-solve: on a miss it
    solves the cell's floor and top (each within half of ``time_budget``) and stores the entry.
    """

    def __init__(
        self,
        quantum: float = DEFAULT_QUANTUM,
        maxsize: int = 100_000,
        solver: Callable[[Profile, int, float], Plan] | None = None,
        max_loss: float = DEFAULT_MAX_LOSS,
        time_budget: float | None = DEFAULT_TIME_BUDGET,
    ) -> None:
        if count("maxsize", maxsize) < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.quantum = _check_quantum(quantum)
        self.max_loss = real("max_loss", max_loss)
        if not 0.0 <= self.max_loss <= 1.0:
            raise ValueError(f"max_loss must be in [0, 1] (effective accuracy), got {max_loss!r}")
        self.maxsize = int(maxsize)
        if time_budget is not None:
            time_budget = positive("time_budget", time_budget) / 2
        self._solver = solver or partial(solve, time_budget=time_budget)
        # None marks a sensitive cell: no one plan serves it within max_loss.
        self._plans: OrderedDict[tuple[str, int, int], Plan | None] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.sensitive = 0  # requests answered by a solve at their own deadline

    def __len__(self) -> int:
        return len(self._plans)

    def key(self, profile: Profile, n_mb: int, deadline: float) -> tuple[str, int, int]:
        return (profile.key, quantise_down(deadline, self.quantum), n_mb)

    def get(self, profile: Profile, n_mb: int, deadline: float) -> Plan | None:
        """The cached plan for this request, or None (not cached, or a sensitive cell)."""
        try:
            ok = 0.0 <= deadline < math.inf and type(n_mb) is int and n_mb >= 0
        except TypeError:
            ok = False
        if not ok:  # the careful path names the bad argument (or accepts numpy numbers)
            n_mb, deadline = count("n_mb", n_mb), seconds("deadline", deadline)
        q = self.quantum
        k = int(deadline / q)  # the same arithmetic as quantise_down, inlined for speed
        if k * q > deadline:  # float rounding: take the careful path
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
        """Store a plan as its cell's entry, after the same loss check as ``plan`` (a solve of the top)."""
        k = quantise_down(plan.deadline, self.quantum)
        top = self._solver(profile, plan.n_mb, cell_top(k, self.quantum))
        self._store(profile, k, plan, top)

    def _store(self, profile: Profile, k: int, plan: Plan, top: Plan) -> Plan | None:
        if plan.late or not within_deadline(plan.total_time, k * self.quantum):
            raise ValueError("only plans that fit their (quantised) deadline can be cached")
        entry = plan if cell_loss(plan, top) <= self.max_loss else None
        key = (profile.key, k, plan.n_mb)
        self._plans[key] = entry
        self._plans.move_to_end(key)
        while len(self._plans) > self.maxsize:
            self._plans.popitem(last=False)
        return entry

    @gc_paused
    def plan(self, profile: Profile, n_mb: int, deadline: float) -> Plan:
        n_mb, deadline = check_request(n_mb, deadline)
        q = self.quantum
        k = quantise_down(deadline, q)
        key = (profile.key, k, n_mb)
        if key in self._plans:
            entry = self._plans[key]
            self._plans.move_to_end(key)
            if entry is not None:
                self.hits += 1
                return entry
        else:
            self.misses += 1
            floor = self._solver(profile, n_mb, k * q)
            entry = self._store(profile, k, floor, self._solver(profile, n_mb, cell_top(k, q)))
            if entry is not None:
                return entry
        self.sensitive += 1
        return self._solver(profile, n_mb, deadline)

    def load(self, table: PlanTable, profile: Profile) -> int:
        """Insert every entry of a precomputed table (its quantum and loss bound must match); how many."""
        if table.profile_key != profile.key:
            raise ValueError("the table was computed for a different profile")
        if table.quantum != self.quantum:
            raise ValueError(f"table quantum {table.quantum} != cache quantum {self.quantum}")
        if table.max_loss > self.max_loss:
            raise ValueError(f"table max_loss {table.max_loss} > cache max_loss {self.max_loss}")
        for (k, n), counts in table.entries.items():
            key = (profile.key, k, n)
            self._plans[key] = None if counts is None else feasible_plan(
                profile, counts, n, k * self.quantum, "table"
            )
            self._plans.move_to_end(key)
        while len(self._plans) > self.maxsize:
            self._plans.popitem(last=False)
        return len(table.entries)


@dataclass(frozen=True, slots=True)
class PlanTable:
    """Precomputed cells of a grid of (quantised deadline, N_mb): plain data, JSON/bytes-serialisable.

    ``entries[(k, n_mb)]`` holds the counts solved for deadline ``k * quantum``, or None for a sensitive cell
    (one whose floor plan could lose more than ``max_loss``; see the module docstring).
    """

    profile: dict[str, list[float]]
    profile_key: str
    quantum: float
    entries: dict[tuple[int, int], tuple[int, ...] | None]
    max_loss: float = DEFAULT_MAX_LOSS

    def lookup(self, profile: Profile, n_mb: int, deadline: float) -> Plan | None:
        """The plan for the largest tabled deadline ``<= deadline`` with this exact n_mb, if any.

        Feasible for ``deadline``; within ``max_loss`` of its optimum only when ``deadline`` falls in a
        tabled cell (a coarser grid trades accuracy for size). Sensitive cells are skipped.
        """
        if profile.key != self.profile_key:
            raise ValueError("the table was computed for a different profile")
        n_mb, deadline = check_request(n_mb, deadline)
        ks = sorted(
            k
            for (k, n), c in self.entries.items()
            if n == n_mb and c is not None and k * self.quantum <= deadline
        )
        if not ks:
            return None
        k = ks[-1]
        counts = self.entries[(k, n_mb)]
        assert counts is not None
        return feasible_plan(profile, counts, n_mb, k * self.quantum, "table")

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 2,
                "profile": self.profile,
                "profile_key": self.profile_key,
                "quantum": self.quantum,
                "max_loss": self.max_loss,
                "entries": [
                    [k, n, None if c is None else list(c)] for (k, n), c in sorted(self.entries.items())
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PlanTable:
        data = json.loads(text)
        if data.get("version") != 2:
            raise ValueError(f"unsupported plan table version {data.get('version')!r}")
        profile = Profile.from_dict(data["profile"])
        if profile.key != data["profile_key"]:
            raise ValueError("plan table's profile does not match its key")
        entries = {
            (int(k), int(n)): None if counts is None else tuple(int(c) for c in counts)
            for k, n, counts in data["entries"]
        }
        return cls(
            profile.to_dict(), profile.key, _check_quantum(data["quantum"]), entries, real("max_loss", data["max_loss"])
        )

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
    max_loss: float = DEFAULT_MAX_LOSS,
) -> PlanTable:
    """Solve every cell of a grid offline — exactly, HiGHS finishing the rare hard search — into a table."""
    quantum = _check_quantum(quantum)
    ks = sorted({quantise_down(seconds("deadline", d), quantum) for d in deadlines})
    ns = sorted({count("n_mb", n) for n in n_mbs})
    entries: dict[tuple[int, int], tuple[int, ...] | None] = {}
    for k in ks:
        for n in ns:
            floor = solve(profile, n, k * quantum, method, fallback="milp", time_budget=None)
            top = solve(profile, n, cell_top(k, quantum), method, fallback="milp", time_budget=None)
            entries[(k, n)] = floor.counts if cell_loss(floor, top) <= max_loss else None
    return PlanTable(profile.to_dict(), profile.key, quantum, entries, max_loss)
