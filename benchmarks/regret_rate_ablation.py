"""What each part of the pool's ``regret_rate`` allocator buys, in the multi-tenant replay
(:mod:`benchmarks.tenant_replay`: each user's recorded trials replayed under the allocator's causal choices) →
``benchmarks/results/regret_rate_ablation.json``.

For each results file of ``benchmarks/multitenant.py`` and each seed, round-robin's replayed total regret over that
of: ``cost_aware``; ``regret_rate`` whole; and ``regret_rate`` without one part at a time — the hold for users
whose advisor is starting, the score ceiling, the count of trials in flight (batch EI), the fairness floor, the
turn guard — and with another prior spread or turn slack; and each user's replayed time to target over
round-robin's, for the same variants. The parts are switched off by replacing them for the run (a diagnostic, not a setting).

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/regret_rate_ablation.py benchmarks/results/multitenant.json [...]``
(pure, about ten seconds per file and variant).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(ROOT)]

import easel.allocation as allocation  # noqa: E402 - after the path is set
from benchmarks.multitenant import time_to_target  # noqa: E402
from benchmarks.tenant_replay import allocator_order, replay, setting_from_runs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "regret_rate_ablation.json"
_regret_rate, _gain, _accrue = (allocation.Allocator._regret_rate, allocation.expected_gain,
                                allocation.Allocator._accrue)


def _no_hold(self: allocation.Allocator, order: Any, users: Any, starting: Any, held: int = 0) -> Any:
    return _regret_rate(self, order, users, set(), held)


def _no_floor(self: allocation.Allocator, users: list[str], now: float) -> None:
    _accrue(self, users, now)
    self.owed_s = dict.fromkeys(self.owed_s, -math.inf)  # never owed a trial


VARIANTS: dict[str, list[tuple[Any, str, Any]]] = {
    "regret_rate": [],
    "no hold": [(allocation.Allocator, "_regret_rate", _no_hold)],
    "no ceiling": [(allocation, "SCORE_CEILING", math.inf)],
    "no in-flight": [(allocation, "expected_gain",
                                  lambda mean, std, best, ceiling=math.inf, in_flight=0: _gain(mean, std, best, ceiling))],
    "no floor": [(allocation.Allocator, "_accrue", _no_floor)],
    "no turn guard": [(allocation, "TURN_SLACK", math.inf)],
    "turn slack 1": [(allocation, "TURN_SLACK", 1.0)],
    "prior std .05": [(allocation, "PRIOR_STD", 0.05)],
    "prior std .2": [(allocation, "PRIOR_STD", 0.2)],
}


@contextmanager
def patched(changes: list[tuple[Any, str, Any]]) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in changes]
    for owner, name, value in changes:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def ratios(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Round-robin's replayed regret over each variant's, summed over the seeds; and each user's replayed time to
    within 1 point of its best (the benchmark's definition), mean over the seeds, over round-robin's."""
    settings = [setting_from_runs(results["runs"], seed, results["best_reachable"], results["horizon_s"][str(seed)],
                                  int(results["setup"]["workers"]))
                for seed in sorted({run["seed"] for run in results["runs"] if "sequences" in run})]

    def replayed(policy: str) -> tuple[float, dict[str, float]]:
        total, times = 0.0, {user: 0.0 for user in results["best_reachable"]}
        for setting in settings:
            curves = replay(setting, allocator_order(setting, policy))
            total += setting.total_regret(curves)
            horizon = max([setting.horizon_s, *(at for curve in curves.values() for at, _ in curve)])
            for user in setting.steps:
                times[user] += time_to_target(curves[user], setting.reachable[user], horizon)[0] / len(settings)
        return total, times

    turns, turn_times = replayed("round_robin")

    def over(policy: str) -> tuple[float, dict[str, float]]:
        total, times = replayed(policy)
        return round(turns / total, 3), {u: round(times[u] / max(turn_times[u], 1e-9), 2) for u in times}

    regret, ttt = {}, {}
    regret["cost_aware"], ttt["cost_aware"] = over("cost_aware")
    for name, changes in VARIANTS.items():
        with patched(changes):
            regret[name], ttt[name] = over("regret_rate")
    return regret, ttt


def main(paths: list[str], write: Callable[[str], Any] = RESULTS.write_text) -> None:
    both = {Path(path).name: ratios(json.loads(Path(path).read_text())) for path in paths}
    table = {file: regret for file, (regret, _ttt) in both.items()}
    names = list(next(iter(table.values())))
    print("round-robin's replayed total regret over each variant's (higher is better)")
    print(f"{'results file':36s} " + " ".join(f"{n:>13s}" for n in names))
    for file, row in table.items():
        print(f"{file:36s} " + " ".join(f"{row[n]:13.3f}" for n in names))
    print("the worst user's replayed time to target over round-robin's (the limit is 1.25)")
    for file, (_regret, ttt) in both.items():
        print(f"{file:36s} " + " ".join(f"{max(ttt[n].values()):13.2f}" for n in names))
    write(json.dumps({"command": " ".join(["benchmarks/regret_rate_ablation.py", *paths]), "round_robin_over": table,
                      "time_to_target_over_round_robin": {file: ttt for file, (_regret, ttt) in both.items()}},
                     indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
