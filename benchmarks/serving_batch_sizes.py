"""Issue #15 target (d): the mini-batch size as a decision per width — joint ``(n_i, b_i)`` vs fixed b = 32.

Section (d) of ``benchmarks/serving.py`` (run inside its full run with the trained model, or alone with
``serving.py --only-d``: the same network untrained, for its times, and the accuracies of the last full run's
``serving.json``). Writes ``benchmarks/results/serving-batch-sizes.json``.

What it measures, all in one run and interleaved so that the machine's load hits both alike:
1. ``t_i(b)`` for b in {8, 16, 32, 64} at every width, one torch thread (as a worker runs), in interleaved rounds;
   every sample is kept.
2. At the (b) sweep's three highest loads (one task of N every D, dealt to two workers as the predictor deals
   them at S_mb = 32), each worker's share is planned twice with the whole time left (D less the transit to the
   worker and the answer margin): ``scheduler.plan_batch_sizes`` (joint) and the exact method at b = 32
   (``scheduler.fixed_size_plan``). Each plan is then *replayed* on batch times drawn from the measured samples
   of its own (width, b) — the same draws for both where they run the same mini-batch — in its run order, with
   the worker's rule (a mini-batch that no longer fits its planned time is not started; one that ends after the
   deadline counts 0). Mean ± SE over 3 windows of tasks. Both are run twice: as planned (z = 0) and with the
   workers' safety reserve (z = 1 standard deviation of the plan's total time kept free, the spread pooled from
   the samples: ``EASEL_SERVING_SAFETY_SIGMAS``), since a planner that fills its budget more finely also
   overruns more often.

What it does not measure: the data path. The replay charges model time only; a worker that re-cut messages per
width would also pay per mini-batch what ``in_situ_overhead_s`` adds (publishing each mini-batch's answers).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any

import numpy as np

GRID = (8, 16, 32, 64)
FIXED = 32


def grid_timings(template: Any, rates: list[float], input_shape: tuple[int, ...], repeats: int) -> dict[int, dict[float, list[float]]]:
    """Seconds per mini-batch of every size of the grid at every rate: ``repeats`` interleaved rounds."""
    import torch

    from easel.batch_buffers import QueryBatch

    torch.set_num_threads(1)
    batches = {b: np.zeros((b, *input_shape), np.float32).view(QueryBatch) for b in GRID}
    for b in GRID:  # warm-up: first calls allocate
        for rate in rates:
            template.predict(batches[b], rate)
    samples: dict[int, dict[float, list[float]]] = {b: {r: [] for r in rates} for b in GRID}
    for _ in range(repeats):
        for b in GRID:
            for rate in rates:
                began = time.perf_counter()
                template.predict(batches[b], rate)
                samples[b][rate].append(time.perf_counter() - began)
    return samples


def _replay(order: list[tuple[int, int, int]], times: list[float], samples: dict[int, dict[float, list[float]]],
            rates: list[float], accuracy: list[float], budget: float, end: float, overhead: float,
            rng: np.random.Generator) -> float:
    """Expected correct instances of a plan's mini-batches ``(width, size, instances)`` run in order on sampled
    times; ``times[k]`` is the time the plan believed for mini-batch k."""
    clock, value = 0.0, 0.0
    for (width, size, count), planned in zip(order, times, strict=True):
        if clock + planned > budget:  # the worker's FIT rule: no start for what no longer fits
            continue
        pool = samples[size][rates[width]]
        clock += pool[int(rng.integers(len(pool)))] + overhead
        if clock <= end:
            value += count * accuracy[width]
    return value


def _mini_batches(plan: Any) -> list[tuple[int, int, int]]:
    """``(width, size, instances)`` per mini-batch in run order; the task's partial one is the last run."""
    out = []
    for width, n in plan.order:
        size, left = plan.batch_sizes[width], plan.instances[width]
        for _ in range(n):
            out.append((width, size, min(size, left)))
            left -= min(size, left)
    return out


PLANNERS = ("joint", "fixed_32", "fixed_64")  # fixed b = 64: context (is one larger size all it takes?)
SAFETY = (0.0, 1.0)


def _plan(profile: Any, name: str, share: int, budget: float, safety: float, cv: float) -> Any:
    """The planner's plan, re-planned inside the reserve as ``SchedulerPolicy(safety=...)`` does."""
    from scheduler import fixed_size_plan, plan_batch_sizes

    def make(b: float) -> Any:
        if name == "joint":
            return plan_batch_sizes(profile, share, b)
        return fixed_size_plan(profile, int(name.removeprefix("fixed_")), share, b)

    plan = make(budget)
    if safety and any(plan.counts):
        times = [profile.batch_times[profile.batch_sizes.index(b)][w] for w, b in enumerate(plan.batch_sizes)]
        spread = cv * math.sqrt(math.fsum(n * t * t for n, t in zip(plan.counts, times, strict=True)))
        floor = min(budget, -(-share // FIXED) * min(profile.at(FIXED).batch_times))
        tighter = max(budget - safety * spread, floor)
        if plan.total_time > budget - safety * spread and tighter < budget:
            plan = make(tighter)
    return plan


def measure(template: Any, rates: list[float], accuracy: list[float], input_shape: tuple[int, ...], sizes: list[int],
            deadline: float, transit_s: float, margin_s: float, quick: bool, overhead_s: float = 0.0,
            workers: int = 2, windows: int = 3) -> dict[str, Any]:
    from easel.serving import split_mini_batches
    from scheduler import BatchProfile

    began = time.perf_counter()
    load_before = [round(v, 2) for v in os.getloadavg()]
    samples = grid_timings(template, rates, input_shape, 8 if quick else 20)
    # The planners believe the mean (what a worker's EWMA settles on), plus the per-mini-batch overhead.
    mean_t = {b: [statistics.fmean(samples[b][r]) + overhead_s for r in rates] for b in GRID}
    profile = BatchProfile(tuple(rates), tuple(accuracy), GRID, tuple(tuple(mean_t[b]) for b in GRID))
    # The relative spread of one mini-batch's time, pooled over sizes and widths (TimeNoise's estimate).
    cv = math.sqrt(statistics.fmean((x / statistics.fmean(pool) - 1.0) ** 2
                                    for row in samples.values() for pool in row.values() for x in pool))
    tasks = 6 if quick else 20
    rng = np.random.default_rng(0)
    variants = [(name, z) for z in SAFETY for name in PLANNERS]
    label = {v: f"{v[0]}@z{v[1]:g}" for v in variants}
    points = []
    for n in sizes:
        shares = [s for s in split_mini_batches(n, workers, FIXED) if s]
        budget = deadline - transit_s - margin_s
        per_window: dict[str, list[float]] = {label[v]: [] for v in variants}
        planned: dict[str, list[float]] = {label[v]: [] for v in variants}
        decide_ms: dict[str, list[float]] = {label[v]: [] for v in variants}
        chosen: dict[str, int] = {}
        for _ in range(windows):
            values = dict.fromkeys(per_window, 0.0)
            for _task in range(tasks):
                for share in shares:
                    seed = int(rng.integers(1 << 31))  # the same draws for every variant of this share
                    for variant in variants:
                        name, z = variant
                        t0 = time.perf_counter()
                        plan = _plan(profile, name, share, budget, z, cv)
                        decide_ms[label[variant]].append((time.perf_counter() - t0) * 1e3)
                        planned[label[variant]].append(plan.effective_accuracy)
                        batches = _mini_batches(plan)
                        believed = [profile.batch_times[GRID.index(size)][w] for w, size, _ in batches]
                        values[label[variant]] += _replay(batches, believed, samples, rates, accuracy, budget,
                                                          deadline - transit_s, overhead_s,
                                                          np.random.default_rng(seed))
                        if name == "joint":
                            for w, size in enumerate(plan.batch_sizes):
                                if plan.counts[w]:
                                    key = f"z{z:g}:{rates[w]:g}@{size}"
                                    chosen[key] = chosen.get(key, 0) + plan.counts[w]
            for key, value in values.items():
                per_window[key].append(value / (n * tasks))
        point: dict[str, Any] = {"n": n, "workload": n / deadline, "shares": shares,
                                 "effective_accuracy": {k: _mean_se(v) for k, v in per_window.items()},
                                 "planned": {k: statistics.fmean(v) for k, v in planned.items()},
                                 "decision_ms": {k: {"mean": statistics.fmean(v), "p99": float(np.quantile(v, 0.99))}
                                                 for k, v in decide_ms.items()},
                                 "joint_mini_batches_by_width_at_size": dict(sorted(chosen.items()))}
        ea = point["effective_accuracy"]
        point["joint_wins"] = {}
        for z in SAFETY:
            joint, fixed = ea[f"joint@z{z:g}"], ea[f"fixed_32@z{z:g}"]
            point["joint_wins"][f"z{z:g}"] = joint["mean"] > fixed["mean"] + max(joint["se"], fixed["se"])
        points.append(point)
    return {"grid": list(GRID), "fixed_batch_size": FIXED, "deadline_s": deadline, "transit_s": transit_s,
            "margin_s": margin_s, "per_mini_batch_overhead_s": overhead_s, "tasks_per_window": tasks,
            "windows": windows, "workers": workers, "batch_time_cv": cv,
            "batch_time_s": {str(b): {f"{r:g}": {"mean": statistics.fmean(samples[b][r]),
                                                 "min": min(samples[b][r]), "n": len(samples[b][r])} for r in rates}
                             for b in GRID},
            "points": points, "load_average": {"start": load_before, "end": [round(v, 2) for v in os.getloadavg()]},
            "seconds": time.perf_counter() - began,
            # The feature's verdict: it must beat fixed b = 32 by a standard error at every point, with the reserve
            # the workers run with.
            "wins_at_every_point": all(p["joint_wins"]["z1"] for p in points)}


def _mean_se(values: list[float]) -> dict[str, float]:
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "se": se, "n": len(values)}


def table(result: dict[str, Any]) -> list[str]:
    lines = [f"(d) joint (n_i, b_i) vs fixed b = {result['fixed_batch_size']}: effective accuracy, mean±SE of "
             f"{result['windows']} windows replayed on measured t_i(b) (z: safety reserve); decision ms mean/p99"]
    names = [f"{name}@z{z:g}" for z in SAFETY for name in PLANNERS]
    lines.append(f"{'N':>6} " + " ".join(f"{k:>15}" for k in names) + "  wins(z0,z1)  " + " ".join(
        f"{'ms ' + k:>14}" for k in names))
    for p in result["points"]:
        ea, ms = p["effective_accuracy"], p["decision_ms"]
        cells = " ".join(f"{ea[k]['mean']:>8.4f}±{ea[k]['se']:.4f}" for k in names)
        wins = ",".join("yes" if w else "no" for w in p["joint_wins"].values())
        lines.append(f"{p['n']:>6} {cells}  {wins:>11}  " + " ".join(
            f"{ms[k]['mean']:>6.2f}/{ms[k]['p99']:<7.1f}" for k in names))
    return lines
