"""Which trial hops to which worker next (model hopper parallelism; Cerebro's randomized scheduler).

Pure logic: the advisor feeds it what the trials table and Redis say and sends the units it returns. Each
worker owns one shard; a unit is one pass of one trial over one shard. The rules (Kumar et al., CIDR 2021):
a trial trains at most one unit at a time, and visits every shard exactly once per epoch, in any order. For
each idle worker (in random order) a random idle trial that has not yet visited that worker's shard in its
current epoch is placed there; a worker no trial can use stays idle until one can.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HopState:
    """One unfinished trial as the scheduler sees it."""

    trial_id: str
    units_done: int
    visited: frozenset[int]  # shards visited in the current epoch
    busy: bool  # a unit of it is queued or running


def place_units(idle_workers: Mapping[str, int], trials: Sequence[HopState],
                rng: random.Random) -> list[tuple[str, str, int]]:
    """``(trial_id, worker_id, shard)`` for each unit to place now; ``idle_workers`` maps worker → its shard."""
    free = [t for t in trials if not t.busy]
    workers = sorted(idle_workers.items())
    rng.shuffle(workers)
    placed = []
    for worker, shard in workers:
        candidates = [t for t in free if shard not in t.visited]
        if not candidates:
            continue
        pick = rng.choice(candidates)
        free.remove(pick)
        placed.append((pick.trial_id, worker, shard))
    return placed


__all__ = ["HopState", "place_units"]
