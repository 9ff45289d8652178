"""What the *order* of assignments alone can buy in the multi-tenant benchmark (:mod:`benchmarks.multitenant`):
replay each user's recorded sequence of trials (its k-th trial's cost and score, as the rows recorded them) on
the pool's workers under a given order of assignments, and compare orders.

With equal budgets every trial runs under every policy, so a policy changes only *when* each user's trials run.
Holding each user's k-th trial fixed (its outcome comes from that user's own seeded GP; the replay ignores that a
different interleaving could change what the GP proposes), the replay gives, per seed:

* ``round_robin`` — the pool's own allocator with the benchmark's baseline policy, users in turn as each free
  worker finds them ready (its closeness to the recorded round-robin run calibrates the replay);
* ``cost_aware`` — the pool's own allocator deciding on bids made from the replayed results (the load of the
  machine, which swamps the recorded runs' differences, is the same for both replays);
* ``regret_rate`` — the same with the pool's ``regret_rate`` policy (causal as well: it sees only the results that
  have arrived, each user's trials running, and which users' advisors are still starting — a user is "starting"
  until its recorded first proposal, and a worker the policy holds for it tries again then);
* ``greedy`` — hindsight greedy: each free worker goes to the user whose next recorded trial raises that user's
  best the most per second of its cost (users whose next trial raises nothing are served in turn);
* ``searched`` — the best order found by local search (move one assignment elsewhere in the order, keep the move
  if total regret drops; from round-robin, greedy and a few random orders). An achievable order: its regret is
  *at least* the optimum's;
* ``lower_bound`` — every user alone on all the workers (nobody else's trial delays any of its own): no order
  can do better, so ``round_robin / lower_bound`` bounds from above what any allocator can gain over turns.

All pure (no I/O) but :func:`main`: :func:`ordering_bounds` takes the benchmark's recorded runs;
``python benchmarks/tenant_replay.py benchmarks/results/multitenant.json`` recomputes them from a results file.
"""

from __future__ import annotations

import heapq
import json
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Curve = list[tuple[float, float]]
HELD = "\0held"  # a worker the allocator held for a starting user (no user is named so)


@dataclass(frozen=True)
class Step:
    """One recorded trial of a user: its seconds on a worker, and its score (None: it errored)."""

    cost_s: float
    score: float | None


def regret(curve: Curve, reachable: float, horizon: float) -> float:
    """∫₀^horizon (reachable − best so far) dt: the best so far is a step function of the completion times."""
    total, last_t, best = 0.0, 0.0, 0.0
    for at, score in sorted(curve):
        at = min(at, horizon)
        total += (reachable - best) * (at - last_t)
        last_t, best = at, max(best, score)
    return total + (reachable - best) * max(0.0, horizon - last_t)


@dataclass(frozen=True)
class Setting:
    """One seed's replay inputs: each user's trials in start order, when each user's first trial could start
    (its advisor's first proposal), the workers and the seconds between a worker freeing and its next start."""

    steps: Mapping[str, Sequence[Step]]
    ready_s: Mapping[str, float]
    workers: int
    gap_s: float
    reachable: Mapping[str, float]
    horizon_s: float

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, not {self.workers}")
        if self.gap_s < 0:
            raise ValueError(f"gap_s must be >= 0, not {self.gap_s}")

    def total_regret(self, curves: Mapping[str, Curve]) -> float:
        horizon = max([self.horizon_s, *(at for curve in curves.values() for at, _ in curve)])
        return sum(regret(curves[user], self.reachable[user], horizon) for user in self.steps)


def replay(setting: Setting, order: Sequence[str]) -> dict[str, Curve]:
    """Each user's (completion time, score) points when the workers take the assignments in ``order``."""
    free = [0.0] * setting.workers
    taken = dict.fromkeys(setting.steps, 0)
    curves: dict[str, Curve] = {user: [] for user in setting.steps}
    for user in order:
        step = setting.steps[user][taken[user]]
        taken[user] += 1
        start = max(heapq.heappop(free) + setting.gap_s, setting.ready_s[user])
        heapq.heappush(free, start + step.cost_s)
        if step.score is not None:
            curves[user].append((start + step.cost_s, step.score))
    return curves


def round_robin_order(setting: Setting) -> list[str]:
    """Users in turn (in the benchmark's user order), skipping those with no trial left."""
    left = {user: len(steps) for user, steps in setting.steps.items()}
    order: list[str] = []
    while any(left.values()):
        for user in setting.steps:
            if left[user]:
                order.append(user)
                left[user] -= 1
    return order


def greedy_order(setting: Setting) -> list[str]:
    """Hindsight greedy: the next assignment goes to the ready user whose next trial raises its best the most per
    second; when none raises anything, the user served longest ago."""
    free = [0.0] * setting.workers
    taken = dict.fromkeys(setting.steps, 0)
    best = dict.fromkeys(setting.steps, 0.0)
    served = dict.fromkeys(setting.steps, -1)
    order: list[str] = []
    total = sum(len(steps) for steps in setting.steps.values())
    while len(order) < total:
        now = heapq.heappop(free) + setting.gap_s
        left = [user for user in setting.steps if taken[user] < len(setting.steps[user])]
        ready = [user for user in left if setting.ready_s[user] <= now]
        if not ready:
            now = min(setting.ready_s[user] for user in left)
            ready = [user for user in left if setting.ready_s[user] <= now]

        def gain_per_s(user: str) -> tuple[float, int]:
            step = setting.steps[user][taken[user]]
            gain = max(0.0, (step.score or 0.0) - best[user])
            return gain / max(step.cost_s, 1e-9), -served[user]

        user = max(ready, key=gain_per_s)
        step = setting.steps[user][taken[user]]
        taken[user] += 1
        best[user] = max(best[user], step.score or 0.0)
        served[user] = len(order)
        order.append(user)
        heapq.heappush(free, now + step.cost_s)
    return order


def allocator_order(setting: Setting, policy: str) -> list[str]:
    """The order the pool's own allocator (:class:`easel.allocation.Allocator`) makes when each user's bid comes
    from its replayed results so far, as ``advisor/bidding.py`` makes it while the GP is in its initial random
    points: EI and UCB under the mean and spread of the scores seen, cost the mean of the finished trials' (the
    GP's posterior of later trials is approximated the same way). Cold until two scores, as there. Users whose
    first proposal is still to come are candidates that are not ready (only ``regret_rate`` waits for them)."""
    from easel.allocation import Allocator, Candidate, expected_improvement, optimistic_regret

    allocator = Allocator(policy, workers=setting.workers)
    free = [(0.0, "", -1, worker) for worker in range(setting.workers)]  # (free at, user, its trial's index, worker)
    taken = dict.fromkeys(setting.steps, 0)
    done: dict[str, list[tuple[float, Step]]] = {user: [] for user in setting.steps}  # (ended at, step)
    order: list[str] = []
    total = sum(len(steps) for steps in setting.steps.values())
    running: list[tuple[float, str, Step]] = []
    clock = 0.0
    while len(order) < total:
        at, _user, _index, worker = heapq.heappop(free)
        now = at + setting.gap_s if order and _user != HELD else at
        left = [user for user in setting.steps if taken[user] < len(setting.steps[user])]
        if not any(setting.ready_s[user] <= now for user in left):
            now = min(setting.ready_s[user] for user in left)
        now = clock = max(now, clock)  # a held worker's retry may fall within the gap of one freed before it
        for ended, user, step in [r for r in running if r[0] <= now]:
            done[user].append((ended, step))
            running.remove((ended, user, step))
        candidates = []
        for i, user in enumerate(setting.steps):
            if user not in left:
                continue
            scores = [step.score for _, step in done[user] if step.score is not None]
            costs = [step.cost_s for _, step in done[user]]
            gain = regret_left = mean = spread = None
            if len(scores) >= 2:
                mean, spread = sum(scores) / len(scores), _stdev(scores)
                gain = expected_improvement(mean, spread, max(scores))
                regret_left = optimistic_regret(mean, spread, max(scores))
            candidates.append(Candidate(user, user, user, float(i), gain, sum(costs) / len(costs) if costs else None,
                                        regret_left, mean, spread, max(scores) if scores else None, len(scores),
                                        sum(1 for _, who, _ in running if who == user),
                                        ready=setting.ready_s[user] <= now))
        choice = allocator.choose(candidates, now=now, held=sum(1 for _, who, _, _ in free if who == HELD),
                                  worker=str(worker))
        if choice is None:  # held for a user whose advisor is starting: the worker tries again when it is ready
            later = [setting.ready_s[user] for user in left if setting.ready_s[user] > now]
            assert later, "the allocator held a worker with nobody starting"
            heapq.heappush(free, (min(later), HELD, -1, worker))
            continue
        user = choice.candidate.user_id
        step = setting.steps[user][taken[user]]
        start = max(now, setting.ready_s[user])
        taken[user] += 1
        order.append(user)
        running.append((start + step.cost_s, user, step))
        heapq.heappush(free, (start + step.cost_s, user, taken[user] - 1, worker))
    return order


def _stdev(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def local_search(setting: Setting, starts: Sequence[Sequence[str]], restarts: int = 3,
                 seed: int = 0) -> tuple[list[str], float]:
    """Best order found by moving one assignment at a time while total regret drops (first improvement), from
    each of ``starts`` and ``restarts`` random orders."""
    rng = random.Random(seed)
    pool = [list(order) for order in starts]
    for _ in range(restarts):
        shuffled = list(starts[0])
        rng.shuffle(shuffled)
        pool.append(shuffled)
    best_order, best_cost = list(starts[0]), setting.total_regret(replay(setting, starts[0]))
    for order in pool:
        cost = setting.total_regret(replay(setting, order))
        improved = True
        while improved:
            improved = False
            for i in range(len(order)):
                for j in range(len(order)):
                    if i == j or order[i] == order[j]:
                        continue
                    moved = order[:i] + order[i + 1:]
                    moved.insert(j, order[i])
                    moved_cost = setting.total_regret(replay(setting, moved))
                    if moved_cost < cost - 1e-12:
                        order, cost, improved = moved, moved_cost, True
                        break
                if improved:
                    break
        if cost < best_cost:
            best_order, best_cost = order, cost
    return best_order, best_cost


def lower_bound(setting: Setting) -> float:
    """Σ over users of the regret it would have alone on all the workers: its trials start no later than under
    any shared order, so its best so far is pointwise no lower, and its regret no higher."""
    total = 0.0
    for user in setting.steps:
        alone = Setting({user: setting.steps[user]}, setting.ready_s, setting.workers, setting.gap_s,
                        setting.reachable, setting.horizon_s)
        total += alone.total_regret(replay(alone, [user] * len(setting.steps[user])))
    return total


def setting_from_runs(runs: Sequence[Mapping[str, Any]], seed: int, reachable: Mapping[str, float],
                      horizon_s: float, workers: int, source_policy: str = "round_robin") -> Setting:
    """One seed's setting from the benchmark's recorded runs: the steps of ``source_policy``'s run, each user
    ready when its advisor first proposed (earliest over the policies; runs that did not record it: the earliest
    first start — which also counts any wait for a free worker), the gap as the recorded workers' idle time
    between trials of ``source_policy``'s run (spread evenly over its assignments)."""
    mine = [run for run in runs if run["seed"] == seed]
    source = next(run for run in mine if run["policy"] == source_policy)
    steps = {user: [Step(t["ended_s"] - t["started_s"], t["score"] if t["status"] == "COMPLETED" else None)
                    for t in trials] for user, trials in source["sequences"].items()}

    def ready_at(run: Mapping[str, Any], user: str) -> float:
        proposed = run.get("first_trial_timeline", {}).get(user, {}).get("first_proposal")
        return proposed if proposed is not None else run["sequences"][user][0]["started_s"]

    ready = {user: min(ready_at(run, user) for run in mine) for user in steps}
    trials = [t for seq in source["sequences"].values() for t in seq]
    span = max(t["ended_s"] for t in trials) - min(t["started_s"] for t in trials)
    busy = sum(t["ended_s"] - t["started_s"] for t in trials)
    gap = max(0.0, (workers * span - busy) / max(1, len(trials) - workers))
    return Setting(steps, ready, workers, gap, reachable, horizon_s)


def ordering_bounds(runs: Sequence[Mapping[str, Any]], reachable: Mapping[str, float],
                    horizons: Mapping[Any, float], workers: int) -> dict[str, Any]:
    """Per seed (runs that recorded their trial sequences): the recorded and replayed round-robin regret, the
    hindsight greedy and searched orders' regret, the lower bound, and what each ratio to round-robin is."""
    per_seed = {}
    for seed in sorted({run["seed"] for run in runs if "sequences" in run}):
        if not any(run["seed"] == seed and run["policy"] == "round_robin" for run in runs):
            continue
        horizon = horizons.get(seed, horizons.get(str(seed), 0.0))
        setting = setting_from_runs(runs, seed, reachable, horizon, workers)
        rr = allocator_order(setting, "round_robin")
        greedy = greedy_order(setting)
        _searched, searched_cost = local_search(setting, [rr, round_robin_order(setting), greedy], seed=seed)
        replayed = {"round_robin": setting.total_regret(replay(setting, rr)),
                    "cost_aware": setting.total_regret(replay(setting, allocator_order(setting, "cost_aware"))),
                    "regret_rate": setting.total_regret(replay(setting, allocator_order(setting, "regret_rate"))),
                    "greedy": setting.total_regret(replay(setting, greedy)), "searched": searched_cost,
                    "lower_bound": lower_bound(setting)}
        recorded = {run["policy"]: setting.total_regret(run["curves"]) for run in runs if run["seed"] == seed}
        unavoidable = sum(reachable[user] * (setting.ready_s[user] + setting.steps[user][0].cost_s)
                          for user in setting.steps)
        per_seed[seed] = {
            "gap_s": round(setting.gap_s, 3), "ready_s": {u: round(v, 3) for u, v in setting.ready_s.items()},
            "recorded_regret": {k: round(v, 3) for k, v in recorded.items()},
            "replayed_regret": {k: round(v, 3) for k, v in replayed.items()},
            "regret_before_any_first_trial_can_end": round(unavoidable, 3),
            "round_robin_over": {k: round(replayed["round_robin"] / v, 3) for k, v in replayed.items() if v > 0},
        }
    return per_seed


def bound_summary(per_seed: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """Over seeds: each replayed order's mean regret, round-robin's mean over each, and the share of round-robin's
    regret that accrues before any user's first trial can end (no order changes that part)."""
    if not per_seed:
        return {}
    rows = list(per_seed.values())
    means = {k: sum(row["replayed_regret"][k] for row in rows) / len(rows) for k in rows[0]["replayed_regret"]}
    before = sum(row["regret_before_any_first_trial_can_end"] for row in rows) / len(rows)
    return {"seeds": len(rows), "mean_replayed_regret": {k: round(v, 3) for k, v in means.items()},
            "round_robin_over_mean": {k: round(means["round_robin"] / v, 3) for k, v in means.items() if v > 0},
            "share_before_any_first_trial_can_end": round(before / means["round_robin"], 3)}


def main(argv: Sequence[str]) -> None:
    with open(argv[0]) as file:
        results = json.load(file)
    bounds = ordering_bounds(results["runs"], results["best_reachable"], results["horizon_s"],
                             int(results["setup"]["workers"]))
    print(json.dumps({"per_seed": bounds, "summary": bound_summary(bounds)}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["Setting", "Step", "allocator_order", "bound_summary", "greedy_order", "local_search", "lower_bound", "ordering_bounds", "regret",
           "replay", "round_robin_order", "setting_from_runs"]
