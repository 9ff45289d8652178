"""Scheduler benchmarks → ``benchmarks/results/scheduler.json`` (issue #14's targets, each recorded true/false).

(a) Decision time on the request path (``solve`` with its default 0.5 ms search budget), per profile family —
    realistic (monotone, like a sliced network's), random, degenerate (accuracy ∝ time, K up to 12) and
    near-tie (accuracy nearly affine in time) — timed twice: in a hot loop, and interleaved with batch work
    (a matrix product and a sweep over 8 MB between two decisions, as in a worker), with the garbage collector
    on as in a worker (decisions pause it themselves), wall time and CPU time side by side, in
    ``--timing-passes`` passes, each with the load average around it. Each answer is checked
    for feasibility; a subsample against HiGHS (exact answers must equal its optimum, the others must be
    within their stated gap). Beside it, the other solvers in a hot loop on the random family.
    Targets: p99.9 <= 2 ms interleaved on every family in every pass (wall time: on a busy machine it
    counts other processes' time-slices, so the CPU time is reported beside it, with the calls preempted
    for over 1 ms, and its p99.9 is held under 1 ms); 0 non-exact answers on the realistic family.
(b) Plan cache on the realistic family: the largest loss against the exact optimum (target <= 0.005;
    the cache's stated bound is its ``max_loss``, 0.001), hit rate, hit time hot and interleaved.
(c) Periodic tasks (tasks every D, each due D later: they never overlap), one worker: the default policy
    against the per-task ILP (``mode="myopic"``), after 3 warm-up tasks and over all tasks, on the paper's
    X-ray profile (D = 8 s) and on the serving benchmark's measured profiles (D = 0.5 s). Target >= 99.5 %.
(d) Overlapping load (Poisson and on/off bursts), X-ray, D = 8 s, 8 workers dealt by the platform's rule:
    the default policy against the per-task ILP and every baseline, the baselines both as published and
    with the shared drop rule. Targets: default >= myopic at every load; default >= every baseline with
    the shared drop rule at every load. The same on the serving profiles (2 workers, D = 0.5 s). Each point
    is repeated on ``--repeats`` workloads: "ours >= a baseline" means the mean is at least the baseline's
    mean minus one standard error of the paired difference. ``DIAGNOSIS_D`` records why the policy lost on
    the serving profiles before its fix.
(e) On demand (``--sections e``; issue #15 (b)): the worker's two reserves against lateness (rate confidence and
    safety sigmas, 1 and 1) against none and against Model-Switching, on the serving sweep's in-pipeline batch
    times, 2 workers, D = 0.5 s, the worker's late rule, 30 % log-normal batch-time noise, constant (the pipeline's
    sweep) and Poisson arrivals, from a third to twice the fastest width's capacity. Targets: the reserves change
    nothing past capacity (both are floored at every mini-batch at the fastest width, so they cannot add a drop to a
    plan that already drops); with them, ours >= Model-Switching everywhere (mean minus one SE of the paired
    difference).

Run: ``.venv/bin/python benchmarks/scheduler.py [--per-family 2000] [--horizon 200] [--repeats 3] [--sections abcd]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# One BLAS thread, as in a worker (EASEL_SERVING_THREADS=1): idle BLAS threads spinning after the batch work
# would otherwise compete with the decision being timed for this machine's two cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.optimize import Bounds, LinearConstraint, milp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, where this very file would shadow the scheduler
# package: put the project root first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from easel.serving import split_mini_batches  # noqa: E402
from scheduler import (  # noqa: E402
    DEFAULT_TIME_BUDGET,
    ClipperPolicy,
    FixedWidthPolicy,
    LateRule,
    ModelSwitchingPolicy,
    PlanCache,
    Policy,
    Profile,
    SchedulerPolicy,
    make_workload,
    milp_optimum,
    paper_xray_profile,
    simulate,
    solve,
    solve_bnb,
    solve_dp,
    within_deadline,
)

RESULTS = ROOT / "benchmarks" / "results"
TOL = 1e-9  # effective-accuracy agreement with milp
FAMILIES = ("realistic", "random", "degenerate", "near-tie")
MAX_TASKS = 1500  # per overlapping-load point: keeps the high-load points to a minute on 2 shared cores


@contextlib.contextmanager
def quiet_stdio() -> Iterator[None]:
    """Silence HiGHS, which prints debugging lines from C on some instances."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def machine_facts() -> dict[str, object]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# -- instances ---------------------------------------------------------------------------------------------
def _deadline(rng: np.random.Generator, n: int, ts: np.ndarray, i: int) -> float:
    u = float(rng.uniform())
    regime = i % 3  # the paper's three regimes: below N min t, between, above N max t
    if regime == 0:
        return u * n * ts.min()
    if regime == 1:
        return n * (ts.min() + u * (ts.max() - ts.min()))
    return n * ts.max() * (1.0 + u)


def make_family(family: str, count: int, seed: int) -> list[tuple[Profile, int, float]]:
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    out = []
    for i in range(count):
        if family == "realistic":  # a sliced network: wider is slower and more accurate, ms-scale times
            k = int(rng.integers(2, 9))
            ts = np.sort(np.exp(rng.uniform(np.log(5e-4), np.log(0.1), k)))
            ps = np.sort(rng.uniform(0.3, 0.95, k))
            n = int(rng.integers(1, 2001))
        elif family == "random":
            k = int(rng.integers(1, 9))
            ps, ts = rng.uniform(0.01, 1.0, k), rng.uniform(0.005, 0.1, k)
            if i % 2:
                ps, ts = np.sort(ps), np.sort(ts)
            n = int(rng.integers(1, 10_001))
        elif family == "degenerate":  # accuracy proportional to time: a subset-sum in disguise
            k = int(rng.integers(3, 13))
            ts = rng.uniform(0.01, 0.1, k)
            ps = np.minimum(1.0, ts / ts.max() * 0.9 * (1.0 + rng.uniform(-1e-9, 1e-9, k)))
            n = int(rng.integers(100, 10_001))
        else:  # near-tie: accuracy nearly affine in time, so hull slopes nearly tie
            k = int(rng.integers(3, 13))
            ts = np.sort(rng.uniform(0.005, 0.1, k))
            ps = np.clip(0.3 + 5.0 * ts + rng.normal(0.0, 1e-5, k), 0.01, 1.0)
            n = int(rng.integers(1, 10_001))
        profile = Profile(tuple(np.linspace(1.0, 1.0 / k, k)), tuple(ps), tuple(ts))
        out.append((profile, n, float(_deadline(rng, n, ts, i))))
    return out


# -- timing ------------------------------------------------------------------------------------------------
class BatchWork:
    """What a worker does between two decisions: a matrix product and a sweep over 8 MB of memory."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((192, 192)).astype(np.float32)
        self.buf = np.ones(2 << 20, dtype=np.float32)

    def __call__(self) -> None:
        self.a @ self.a
        self.buf += 1.0


def stats_us(ns: list[int]) -> dict[str, float]:
    arr = np.asarray(ns, dtype=float) / 1e3
    return {
        "calls": int(arr.size),
        "median_us": float(np.median(arr)),
        "p99_us": float(np.percentile(arr, 99)),
        "p99_9_us": float(np.percentile(arr, 99.9)),
        "max_us": float(arr.max()),
    }


CPU_NS: dict[int, list[int]] = {}  # id(wall-time list) -> the same calls' CPU time (thread time)


def time_calls(fn: Callable, args: list[tuple], between: Callable[[], None] | None = None) -> tuple[list[int], list]:
    """Wall time of each call (what the worker waits), and, in ``CPU_NS``, its CPU time: on a machine shared
    by other processes the wall time includes the time-slices others take, the CPU time does not."""
    for a in args[:20]:  # warm the code paths
        fn(*a)
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    ns, cpu_ns, out = [], [], []
    # The collector stays on, as in a worker: the decisions pause it themselves (scheduler.gc_pause).
    gc.collect()
    for a in args:
        if between is not None:
            between()
        s, c = clock(), cpu()
        r = fn(*a)
        cpu_ns.append(cpu() - c)
        ns.append(clock() - s)
        out.append(r)
    CPU_NS[id(ns)] = cpu_ns
    return ns, out


def stats_both(ns: list[int]) -> dict[str, object]:
    """Wall-time statistics, the same calls' CPU time, and how many calls lost over 1 ms to other processes
    (wall minus CPU time: time-slices the machine gave to someone else in the middle of the call)."""
    cpu_ns = CPU_NS[id(ns)]
    preempted = sum(w - c > 1_000_000 for w, c in zip(ns, cpu_ns, strict=True))
    return stats_us(ns) | {"cpu_time": stats_us(cpu_ns), "calls_preempted_over_1ms": preempted}


def value(profile: Profile, counts: tuple[int, ...]) -> float:
    return math.fsum(c * p for c, p in zip(counts, profile.accuracies, strict=True))


def highs(profile: Profile, n: int, d: float, time_limit: float) -> tuple[float, float, bool] | None:
    """HiGHS with a time limit: (value, proven bound, optimal) per mini-batch, or None if it found nothing."""
    k = len(profile)
    res = milp(
        -np.asarray(profile.accuracies),
        constraints=LinearConstraint(np.vstack([np.ones(k), np.asarray(profile.batch_times)]), -np.inf, [n, d]),
        integrality=np.ones(k),
        bounds=Bounds(0, np.inf),
        options={"mip_rel_gap": 0.0, "time_limit": time_limit},
    )
    if res.x is None:
        return None
    bound = -float(res.mip_dual_bound) if res.mip_dual_bound is not None else math.inf
    return -float(res.fun) / n, max(bound, -float(res.fun)) / n, res.status == 0


# -- (a) decision time -------------------------------------------------------------------------------------
def timing_pass(instances: dict[str, list], work: BatchWork) -> tuple[dict, dict[str, tuple[list, list]]]:
    """One pass of the decision-time measurement over every family, with the load average around it."""
    load_before = os.getloadavg()
    families, plans = {}, {}
    for family, insts in instances.items():
        hot_ns, hot_plans = time_calls(solve, insts)
        inter_ns, inter_plans = time_calls(solve, insts, work)
        families[family] = {"hot_loop": stats_both(hot_ns), "interleaved": stats_both(inter_ns)}
        plans[family] = (hot_plans, inter_plans)
    summary = {
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "worst_p99_9_interleaved_us": max(f["interleaved"]["p99_9_us"] for f in families.values()),
        "worst_cpu_time_p99_9_interleaved_us": max(
            f["interleaved"]["cpu_time"]["p99_9_us"] for f in families.values()
        ),
        "p99_9_interleaved_us": {k: f["interleaved"]["p99_9_us"] for k, f in families.items()},
        "cpu_time_p99_9_interleaved_us": {k: f["interleaved"]["cpu_time"]["p99_9_us"] for k, f in families.items()},
        "calls_preempted_over_1ms": {k: f["interleaved"]["calls_preempted_over_1ms"] for k, f in families.items()},
    }
    return {"families": families, "summary": summary}, plans


def section_a(per_family: int, check_every: int, seed: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    work = BatchWork()
    instances = {family: make_family(family, per_family, seed) for family in FAMILIES}
    timing = [timing_pass(instances, work) for _ in range(max(1, repeats))]
    first, first_plans = timing[0]
    families = {}
    for family, insts in instances.items():
        plans = first_plans[family][0]
        both = [plan for _, by_family in timing for timed in by_family[family] for plan in timed]
        infeasible = sum(
            not within_deadline(p.total_time, d) or sum(p.counts) > n
            for (_, n, d), p in zip(insts * (len(both) // len(insts)), both, strict=True)
        )
        inexact = [p for p in both if not p.exact]
        checked = mism = gap_broken = unverified = 0
        with quiet_stdio():
            for i in range(0, len(insts), check_every):
                profile, n, d = insts[i]
                ref = highs(profile, n, d, time_limit=3.0)
                if ref is None or (not ref[2] and plans[i].exact):
                    unverified += 1
                    continue
                checked += 1
                ours = value(profile, plans[i].counts) / n
                ref_value, ref_bound, _ = ref
                if ours > ref_bound + TOL:
                    mism += 1  # better than HiGHS's proven bound: impossible for a feasible plan
                elif plans[i].exact and ref[2] and ours < ref_value - TOL:
                    mism += 1
                elif not plans[i].exact and ref_value > ours + plans[i].gap + TOL:
                    gap_broken += 1
        families[family] = {
            "instances": len(insts),
            **first["families"][family],
            "infeasible_plans": infeasible,
            "non_exact_share": len(inexact) / len(both),
            "largest_gap": max((p.gap for p in inexact), default=0.0),
            "checked_against_highs": checked,
            "exact_answers_not_highs_optimum": mism,
            "answers_outside_their_gap": gap_broken,
            "highs_unfinished_in_3s": unverified,
        }
    # Every solver in a hot loop on the random family, against milp (as before this issue).
    insts = make_family("random", max(500, per_family // 2), seed + 7)
    solvers: dict[str, dict] = {}
    passes = {
        "solve": time_calls(solve, insts),
        "bnb": time_calls(solve_bnb, insts),
        "dp": time_calls(solve_dp, insts[::4]),
    }
    with quiet_stdio():
        passes["milp"] = time_calls(milp_optimum, insts)
    milp_med = stats_us(passes["milp"][0])["median_us"]
    for name, (ns, _) in passes.items():
        solvers[name] = stats_us(ns) | {"speedup_median_vs_milp": milp_med / stats_us(ns)["median_us"]}
    solvers["dp"]["note"] = "every 4th instance"
    solvers["milp"]["note"] = "scipy.optimize.milp (HiGHS), mip_rel_gap=0: offline and tests only"
    runs = [timed["summary"] for timed, _ in timing]
    worst_p999 = max(r["worst_p99_9_interleaved_us"] for r in runs)
    worst_cpu = max(r["worst_cpu_time_p99_9_interleaved_us"] for r in runs)
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "time_budget_s": DEFAULT_TIME_BUDGET,
        "families": families,
        "timing_passes": runs,
        "solvers_hot_loop_random_family": solvers,
        "targets": {
            # Every pass must meet it: a pass that misses it on a busy machine is not averaged away.
            "p99_9_interleaved_le_2ms_every_family": worst_p999 <= 2000.0,
            "worst_p99_9_interleaved_us": worst_p999,
            "passes_meeting_p99_9_le_2ms": sum(r["worst_p99_9_interleaved_us"] <= 2000.0 for r in runs),
            "passes": len(runs),
            "cpu_time_p99_9_interleaved_le_2ms_every_family": worst_cpu <= 2000.0,
            # Clearly under 1 ms of CPU, so that on a quiet machine the wall p99.9 is under 2 ms.
            "cpu_time_p99_9_interleaved_le_1ms_every_family": worst_cpu <= 1000.0,
            "worst_cpu_time_p99_9_interleaved_us": worst_cpu,
            "zero_non_exact_on_realistic": families["realistic"]["non_exact_share"] == 0.0,
            "no_infeasible_plan": all(f["infeasible_plans"] == 0 for f in families.values()),
            "exact_answers_equal_highs": all(f["exact_answers_not_highs_optimum"] == 0 for f in families.values()),
            "non_exact_within_stated_gap": all(f["answers_outside_their_gap"] == 0 for f in families.values()),
        },
    }


# -- (b) plan cache ----------------------------------------------------------------------------------------
def section_b(count: int, seed: int) -> dict:
    insts = make_family("realistic", count, seed + 11)
    cache = PlanCache()
    losses = []
    for profile, n, d in insts:
        plan = cache.plan(profile, n, d)
        best = solve(profile, n, d, fallback="milp", time_budget=None)
        losses.append(best.effective_accuracy - plan.effective_accuracy)
    # Hits: nearby deadlines of the same requests (same cells, mostly), timed as the worker sees them.
    rng = np.random.default_rng(seed)
    probes = [(p, n, d * (1.0 + float(rng.uniform(-1e-4, 1e-4)))) for p, n, d in insts]
    hits = [(p, n, d) for p, n, d in probes if cache.get(p, n, d) is not None]
    hot_ns, _ = time_calls(cache.get, hits)
    inter_ns, _ = time_calls(cache.get, hits, BatchWork())
    worst = float(max(losses))
    return {
        "instances": count,
        "quantum_s": cache.quantum,
        "max_loss_stated": cache.max_loss,
        "loss_vs_exact": {"max": worst, "mean": float(np.mean(losses)), "share_zero": float(np.mean(np.asarray(losses) <= TOL))},
        "sensitive_share": cache.sensitive / count,
        "hit_share_of_nearby_deadlines": len(hits) / len(probes),
        "hit_hot_loop": stats_both(hot_ns),
        "hit_interleaved": stats_both(inter_ns),
        "targets": {"max_loss_le_0.005": worst <= 0.005, "max_loss_within_stated_bound": worst <= cache.max_loss + TOL},
    }


# -- workloads on profiles ---------------------------------------------------------------------------------
def serving_profiles() -> dict[str, tuple[Profile, list[int]]]:
    """The serving benchmark's measured profiles (raw and in-situ batch times) and its task sizes."""
    data = json.loads((RESULTS / "serving.json").read_text())
    model, sweep = data["model"], data["b_sweep"]  # the serving benchmark's sweep of loads
    rates = tuple(float(r) for r in model["rates"])
    accs = tuple(float(a) for a in model["accuracy"])
    out = {}
    for name, times in (("serving raw", model["raw_batch_time_s"]), ("serving in-situ", sweep["in_situ_batch_time_s"])):
        ts = tuple(float(times[f"{r:g}"]) for r in rates)
        out[name] = (Profile(rates, accs, ts), [int(n) for n in sweep["sizes"]])
    return out


def factories(profile: Profile) -> dict[str, Callable[[], Policy]]:
    out: dict[str, Callable[[], Policy]] = {
        "scheduler": lambda: SchedulerPolicy(profile),
        "per-task ILP": lambda: SchedulerPolicy(profile, mode="myopic"),
    }
    for r in sorted(profile.rates, reverse=True):
        out[f"fixed r={r:g}"] = lambda r=r: FixedWidthPolicy(profile, r)
    out["model-switching"] = lambda: ModelSwitchingPolicy(profile)
    out["clipper"] = lambda: ClipperPolicy(profile)
    return out


def section_c(n_tasks: int) -> dict:
    """Periodic, non-overlapping tasks: ours against the per-task ILP."""
    cases: list[tuple[str, Profile, float, list[int], int]] = []
    xray = paper_xray_profile()
    for w in (250, 500, 1000, 1500, 2000, 3000, 4000):
        cases.append(("x-ray", xray, 8.0, [int(w * 8.0)], 1))
    for name, (profile, sizes) in serving_profiles().items():
        cases.append((name, profile, 0.5, sizes, 2))
    rows = []
    for label, profile, deadline, sizes, workers in cases:
        for size in sizes:
            tasks = make_workload("constant", size / deadline, n_tasks, size, deadline)
            row = {"profile": label, "D": deadline, "task_size": size, "workers": workers}
            for warm in (0, 3):
                acc = {}
                for name in ("scheduler", "per-task ILP", "model-switching"):
                    fac = factories(profile)[name]
                    acc[name] = simulate(profile, fac, tasks, n_workers=workers, deal=split_mini_batches,
                                         warmup=warm * deadline, late_rule=LateRule.FIT).effective_accuracy
                key = "after_3_warmup_tasks" if warm else "all_tasks"
                row[key] = acc | {"ratio": acc["scheduler"] / acc["per-task ILP"] if acc["per-task ILP"] else 1.0}
            rows.append(row)
    worst = min(r["after_3_warmup_tasks"]["ratio"] for r in rows)
    return {
        "tasks_per_point": n_tasks,
        "points": rows,
        "targets": {"ge_99_5pct_of_per_task_ilp_after_3_tasks_everywhere": worst >= 0.995, "worst_ratio": worst},
    }


def _overlap_run(profile: Profile, kind: str, w: float, size: int, deadline: float, workers: int,
                 horizon: float, seed: int) -> dict:
    n_tasks = min(MAX_TASKS, max(40, int(w * horizon / size)))
    tasks = make_workload(kind, float(w), n_tasks, size, deadline, seed=seed)
    span = tasks[-1].arrival
    warm, cool = min(60.0, span / 4), min(60.0, span / 4)
    out: dict = {"published": {}, "drop_rule": {}}
    for name, fac in factories(profile).items():
        for variant, rule in (("published", False), ("drop_rule", True)):
            if name in ("scheduler", "per-task ILP", "clipper") and variant == "published":
                continue  # these drop late work by their own rule: both variants are the same run
            r = simulate(profile, fac, tasks, n_workers=workers, deal=split_mini_batches, warmup=warm,
                         cooldown=cool, seed=seed, late_rule=LateRule.FIT if rule else None)
            out[variant][name] = r.effective_accuracy
    for name in ("scheduler", "per-task ILP", "clipper"):
        out["published"][name] = out["drop_rule"][name]
    return out


def _overlap_point(w: float, runs: list[dict]) -> dict:
    """One load point from its runs on ``repeats`` workloads: every policy's mean, and the standard error of
    each policy's paired difference from ours (the same workloads)."""
    repeats = len(runs)
    out: dict = {"W": w, "repeats": repeats}
    for variant in ("published", "drop_rule"):
        out[variant] = {n: float(np.mean([r[variant][n] for r in runs])) for n in runs[0][variant]}
        ours = np.asarray([r["drop_rule"]["scheduler"] for r in runs])
        out[f"{variant}_se_of_difference"] = {
            n: float(np.std(ours - [r[variant][n] for r in runs], ddof=1) / math.sqrt(repeats)) if repeats > 1 else 0.0
            for n in runs[0][variant]
        }
    return out


def _behind(p: dict, variant: str, name: str) -> bool:
    """Ours below ``name`` by more than one standard error of the paired difference (and float noise)."""
    return p["drop_rule"]["scheduler"] < p[variant][name] - p[f"{variant}_se_of_difference"][name] - TOL


# Why the priced policy lost to fixed r=0.25 / Model-Switching on the serving profiles (before this section's
# fix), as measured with tests/scheduler/test_scheduler_serving_profiles.py's reproducer.
DIAGNOSIS_D = {
    "profiles": "serving in-situ/raw: 7 mini-batches per worker per task, D = 0.5 s; r=0.5 alone needs 0.54 s "
                "for them (r=1 is slower than D for one), so a single task can fill its whole deadline, and a "
                "mini-batch dropped costs 0.77 while widening one from r=0.25 to r=0.5 buys 0.11",
    "cause_1_budget_blind_to_work_not_yet_arrived": "with nothing queued behind it a task got its whole deadline; "
                "Poisson arrivals then land while it runs (20-80 % of tasks at these loads) and must drop "
                "mini-batches, because the fair-share rule sees only work already queued",
    "cause_2_price_does_not_bound_spending": "the price of time is the hull slope at the affordable time per "
                "mini-batch: it makes the two models of that hull segment worth the same (ties going to the "
                "wider one), so it never stops a task spending its whole budget on the wider of the two",
    "cause_3_no_replan_on_arrival": "the executor re-planned only when the clock ran off the plan, so a task "
                "kept running wide mini-batches after work had arrived behind it",
    "ablation_serving_in_situ_seed_1": "ours vs fixed r=0.25 (effective accuracy, Poisson W = 610 / 1424, on-off "
                "W = 610): before 0.752 / 0.602 / 0.550 vs 0.770 / 0.699 / 0.626; re-plan on arrival only "
                "0.820 / 0.696 / 0.619; share cap (at the upper-bound rate) only 0.747 / 0.699 / 0.624; both 0.820 / 0.699 / 0.626",
    "cap_rate": "capping with the rate's upper bound (3 standard deviations) instead of the rate itself cost up to 3 "
                "points at light load (in-situ Poisson W = 610: 0.788 vs 0.820)",
    "fix": "the executor re-plans a share when work has arrived behind it since its last plan (the wide "
           "mini-batches run last, so they are the ones given back); the priced policy's budget is capped "
           "(SchedulerPolicy.arrival_cap) at the larger of the task's long-run share of the worker's time, "
           "n_mb x utilisation / arrival rate (the rate itself, not its upper bound; the burst rate under "
           "on-off traffic), and the deadline less a reserve for 3-sigma bursts of arrivals within it; a task "
           "alone (periodic load) still gets its whole deadline",
    "why_the_reserve": "the share cap alone cost the X-ray curves up to 7 points (Poisson W = 5000: 0.733 vs "
                       "0.794): with 8 s deadlines against 0.4 s of work per task, the queue absorbs bursts, "
                       "and a share estimated from a noisy rate at 96 % load kept tasks off full width",
}


def section_d(horizon: float, seed: int, repeats: int, jobs: int, profiles: str = "") -> dict:
    xray = paper_xray_profile()
    setups = [("x-ray", xray, 8.0, 2048, 8, [1000, 3000, 5000, 7000, 9000, 11000, 13000, 16000, 20000])]
    for name, (profile, _sizes) in serving_profiles().items():
        cap = 2 * 32 / min(profile.batch_times)  # instances/s two workers serve at the fastest width
        setups.append((name, profile, 0.5, 446, 2, [round(cap * f) for f in (0.1, 0.3, 0.5, 0.7, 0.9, 1.2)]))
    setups = [s for s in setups if profiles in s[0]]  # --profiles: a part of the curves (a quick look)
    # Every (curve, load, workload) run is independent: in ``jobs`` processes, collected in order.
    runs = {
        (label, kind, w, i): (profile, kind, w, size, deadline, workers, horizon, seed + i)
        for label, profile, deadline, size, workers, loads in setups
        for kind in ("poisson", "onoff") for w in loads for i in range(repeats)
    }
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {key: pool.submit(_overlap_run, *args) for key, args in runs.items()}
        done = {key: f.result() for key, f in futures.items()}
    seconds = round(time.perf_counter() - t0, 1)
    curves = []
    for label, _profile, deadline, size, workers, loads in setups:
        for kind in ("poisson", "onoff"):
            points = [_overlap_point(w, [done[(label, kind, w, i)] for i in range(repeats)]) for w in loads]
            baselines = [n for n in points[0]["drop_rule"] if n not in ("scheduler", "per-task ILP")]
            behind_myopic = [p["W"] for p in points if _behind(p, "drop_rule", "per-task ILP")]
            behind_base = [
                {"W": p["W"], "baseline": b, "margin": p["drop_rule"]["scheduler"] - p["drop_rule"][b],
                 "se_of_difference": p["drop_rule_se_of_difference"][b]}
                for p in points for b in baselines if _behind(p, "drop_rule", b)
            ]
            behind_pub = [p["W"] for p in points for b in baselines if _behind(p, "published", b)]
            worst = min(
                ((p["drop_rule"]["scheduler"] - max(p["drop_rule"][b] for b in baselines), p["W"]) for p in points),
                key=lambda m: m[0],
            )
            curves.append({
                "profile": label, "kind": kind, "D": deadline, "task_size": size, "workers": workers,
                "points": points,
                "ge_per_task_ilp_everywhere": not behind_myopic, "behind_per_task_ilp_at": behind_myopic,
                "ge_every_baseline_with_drop_rule": not behind_base, "behind_baselines": behind_base,
                "ge_every_published_baseline": not behind_pub,
                "smallest_margin_over_best_baseline": {"margin": worst[0], "W": worst[1]},
            })
    return {
        "horizon_s": horizon,
        "seed": seed,
        "repeats": repeats,
        "profiles": profiles or "all",
        "seconds": seconds,
        "jobs": jobs,
        "rule": "ours >= baseline when mean(ours) >= mean(baseline) - 1 standard error of the paired difference"
                " over the repeats (the same workloads for every policy)",
        "diagnosis": DIAGNOSIS_D,
        "curves": curves,
        "targets": {
            "ge_per_task_ilp_at_every_load": all(c["ge_per_task_ilp_everywhere"] for c in curves),
            "ge_every_baseline_with_shared_drop_rule_at_every_load": all(c["ge_every_baseline_with_drop_rule"] for c in curves),
        },
    }


# -- (e) the reserves past capacity (issue #15 (b)) -------------------------------------------------------------
# The worker's two reserves against lateness (EASEL_SERVING_RATE_CONFIDENCE, EASEL_SERVING_SAFETY_SIGMAS: 1 and 1)
# against none, at loads given as fractions of what two workers carry at the fastest width on the serving sweep's
# in-pipeline batch times (0.17, 0.67, 1.42 and 2.0 are that sweep's four points on them).
RESERVES = {"reserves on": {"confidence": 1.0, "safety": 1.0}, "reserves off": {"confidence": 0.0, "safety": 0.0}}
E_LOADS = (0.17, 0.67, 0.95, 1.1, 1.42, 2.0)
E_JITTER = 0.3  # log-normal spread of a batch's time: what reproduced the pipeline's losses of tight plans (README)
E_TASKS = 25


def _paired_se(differences: np.ndarray) -> float:
    """Standard error of the mean of paired differences (0 with one pair)."""
    n = len(differences)
    return float(np.std(differences, ddof=1) / math.sqrt(n)) if n > 1 else 0.0


def section_e(repeats: int) -> dict:
    """Reserves on / off / Model-Switching on the serving in-situ profile, 2 workers, D = 0.5 s, the worker's late
    rule (no mini-batch started after its deadline), constant arrivals (the pipeline's sweep: a task every D) and
    Poisson ones, ``repeats`` seeds of batch-time noise (and of arrivals) per point."""
    profile, _sizes = serving_profiles()["serving in-situ"]
    deadline, workers = 0.5, 2
    capacity = workers * 32 / min(profile.batch_times)  # instances/s at the fastest width
    factories_e: dict[str, Callable[[], Policy]] = {
        name: (lambda kw=kw: SchedulerPolicy(profile, **kw)) for name, kw in RESERVES.items()}
    factories_e["model-switching"] = lambda: ModelSwitchingPolicy(profile)
    curves = []
    for kind in ("constant", "poisson"):
        points = []
        for load in E_LOADS:
            n = round(load * capacity * deadline)
            runs: dict[str, list[float]] = {name: [] for name in factories_e}
            for seed in range(repeats):
                tasks = make_workload(kind, n / deadline, E_TASKS, n, deadline, seed=seed)
                for name, factory in factories_e.items():
                    runs[name].append(simulate(profile, factory, tasks, n_workers=workers, deal=split_mini_batches,
                                               warmup=deadline, jitter=E_JITTER, seed=seed,
                                               late_rule=LateRule.START).effective_accuracy)
            on, off, ms = (np.asarray(runs[k]) for k in ("reserves on", "reserves off", "model-switching"))
            points.append({"load": load, "task_size": n, **{k: float(np.mean(v)) for k, v in runs.items()},
                           "on_minus_off": float(np.mean(on - off)), "on_minus_off_se": _paired_se(on - off),
                           "on_minus_ms": float(np.mean(on - ms)), "on_minus_ms_se": _paired_se(on - ms)})
        curves.append({"kind": kind, "points": points})
    past = [p for c in curves for p in c["points"] if p["load"] > 1.0]
    return {
        "profile": {"rates": list(profile.rates), "accuracies": list(profile.accuracies),
                    "batch_times": list(profile.batch_times)},
        "deadline_s": deadline, "workers": workers, "jitter": E_JITTER, "tasks_per_run": E_TASKS,
        "repeats": repeats, "capacity_per_s": capacity, "curves": curves,
        "targets": {
            "reserves_change_nothing_past_capacity": all(abs(p["on_minus_off"]) <= TOL for p in past),
            "reserves_on_ge_model_switching_everywhere": all(
                p["on_minus_ms"] >= -p["on_minus_ms_se"] for c in curves for p in c["points"]),
        },
    }


# -- report ------------------------------------------------------------------------------------------------
def print_tables(result: dict) -> None:
    a, b, c, d, e = (result.get(k) for k in ("decision_time", "cache", "periodic", "overlapping", "reserves"))
    if a:
        print(f"\n(a) decision time, solve() on the request path ({a['time_budget_s'] * 1e3:g} ms budget), us per call: wall time (hot loop,"
              " interleaved with batch work) and the interleaved calls' CPU time")
        print(f"{'family':<11}{'hot med':>9}{'hot p99.9':>11}{'int med':>9}{'int p99':>9}{'int p99.9':>11}{'int max':>10}"
              f"{'cpu p99.9':>11}{'non-exact':>11}{'max gap':>10}{'HiGHS ok':>10}")
        for fam, f in a["families"].items():
            h, i = f["hot_loop"], f["interleaved"]
            ok = f"{f['checked_against_highs'] - f['exact_answers_not_highs_optimum'] - f['answers_outside_their_gap']}/{f['checked_against_highs']}"
            print(f"{fam:<11}{h['median_us']:>9.1f}{h['p99_9_us']:>11.1f}{i['median_us']:>9.1f}{i['p99_us']:>9.1f}"
                  f"{i['p99_9_us']:>11.1f}{i['max_us']:>10.1f}{i.get('cpu_time', {}).get('p99_9_us', math.nan):>11.1f}{f['non_exact_share']:>11.2%}{f['largest_gap']:>10.2e}{ok:>10}")
        print("decision-time passes (interleaved p99.9, wall / CPU time, us; load average over 1 min before/after):")
        for i, r in enumerate(a.get("timing_passes", [])):
            cells = ", ".join(f"{fam} {r['p99_9_interleaved_us'][fam]:.0f}/{r['cpu_time_p99_9_interleaved_us'][fam]:.0f}"
                              for fam in r["p99_9_interleaved_us"])
            print(f"  pass {i + 1}: load {r['load_average_before'][0]:.1f}/{r['load_average_after'][0]:.1f}: {cells};"
                  f" calls preempted > 1 ms: {sum(r['calls_preempted_over_1ms'].values())}")
        print("other solvers, hot loop, random family:",
              ", ".join(f"{k} {v['median_us']:.1f}/{v['p99_us']:.0f} us (med/p99)" for k, v in a["solvers_hot_loop_random_family"].items()))
    if b:
        print(f"\n(b) cache: max loss vs exact {b['loss_vs_exact']['max']:.2e} (stated bound {b['max_loss_stated']}), "
              f"sensitive cells {b['sensitive_share']:.1%}, hit {b['hit_hot_loop']['median_us']:.2f} us hot / "
              f"{b['hit_interleaved']['median_us']:.2f} us interleaved (median), p99.9 {b['hit_interleaved']['p99_9_us']:.1f} us")
    if c:
        print("\n(c) periodic tasks (every D, due D later): effective accuracy, ours / per-task ILP")
        print(f"{'profile':<16}{'D':>5}{'size':>7}{'ours':>8}{'ILP':>8}{'ratio':>8}{'ratio(all)':>11}{'MS':>8}")
        for r in c["points"]:
            w3, al = r["after_3_warmup_tasks"], r["all_tasks"]
            print(f"{r['profile']:<16}{r['D']:>5g}{r['task_size']:>7}{w3['scheduler']:>8.4f}{w3['per-task ILP']:>8.4f}"
                  f"{w3['ratio']:>8.4f}{al['ratio']:>11.4f}{w3['model-switching']:>8.4f}")
    if d:
        for cur in d["curves"]:
            names = list(cur["points"][0]["drop_rule"])
            print(f"\n(d) {cur['profile']}, {cur['kind']}, D = {cur['D']} s, {cur['workers']} workers — drop rule for all"
                  f" (published in brackets where it differs); ours >= ILP: {cur['ge_per_task_ilp_everywhere']},"
                  f" >= baselines: {cur['ge_every_baseline_with_drop_rule']}")
            if "smallest_margin_over_best_baseline" in cur:
                low = cur["smallest_margin_over_best_baseline"]
                print(f"smallest margin over the best baseline {low['margin']:+.4f} at W = {low['W']}"
                      f" (mean of {cur['points'][0]['repeats']} workloads)")
            short = [n.replace("scheduler", "ours").replace("per-task ILP", "ILP").replace("fixed ", "")
                     .replace("model-switching", "MS") for n in names]
            print(f"{'W':>7}" + "".join(f"{s:>15}" for s in short))
            for p in cur["points"]:
                cells = []
                for n in names:
                    v, pub = p["drop_rule"][n], p["published"][n]
                    cells.append(f"{v:.3f}" + (f" ({pub:.3f})" if abs(v - pub) > 5e-4 else ""))
                print(f"{p['W']:>7}" + "".join(f"{x:>15}" for x in cells))
    if e:
        print(f"\n(e) reserves past capacity: serving in-situ profile, {e['workers']} workers, D = {e['deadline_s']} s, "
              f"batch-time jitter {e['jitter']}, {e['repeats']} seeds; load = N/D over {e['capacity_per_s']:.0f}/s")
        print(f"{'arrivals':<10}{'load':>6}{'N':>7}{'on':>8}{'off':>8}{'MS':>8}{'on-off':>16}{'on-MS':>16}")
        for cur in e["curves"]:
            for p in cur["points"]:
                print(f"{cur['kind']:<10}{p['load']:>6.2f}{p['task_size']:>7}{p['reserves on']:>8.4f}"
                      f"{p['reserves off']:>8.4f}{p['model-switching']:>8.4f}"
                      f"{p['on_minus_off']:>+9.4f}±{p['on_minus_off_se']:.4f}{p['on_minus_ms']:>+9.4f}±{p['on_minus_ms_se']:.4f}")
    print("\ntargets:")
    for key, section in result.items():
        if isinstance(section, dict) and "targets" in section:
            for name, val in section["targets"].items():
                print(f"  {key}.{name}: {val}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="abcd", help="any of abcde ((e): the reserves past capacity, on demand)")
    parser.add_argument("--per-family", type=int, default=2000)
    parser.add_argument("--check-every", type=int, default=10, help="check every n-th instance against HiGHS")
    parser.add_argument("--timing-passes", type=int, default=2, help="passes of the decision-time measurement")
    parser.add_argument("--cache-instances", type=int, default=2000)
    parser.add_argument("--periodic-tasks", type=int, default=40)
    parser.add_argument("--horizon", type=float, default=200.0, help="seconds of arrivals per load point")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="workloads (seeds) per overlapping-load point")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the overlapping-load runs")
    parser.add_argument("--profiles", default="", help="(d) only the curves whose profile name contains this")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "scheduler.json"
    result: dict = {"machine": machine_facts()}
    if "a" in args.sections:
        result["decision_time"] = section_a(args.per_family, args.check_every, args.seed, args.timing_passes)
    if "b" in args.sections:
        result["cache"] = section_b(args.cache_instances, args.seed)
    if "c" in args.sections:
        result["periodic"] = section_c(args.periodic_tasks)
    if "d" in args.sections:
        result["overlapping"] = section_d(args.horizon, args.seed, args.repeats, args.jobs, args.profiles)
    if "e" in args.sections:
        result["reserves"] = section_e(args.repeats)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    if args.sections != "abcd" and path.exists():  # a partial run updates its own sections only, and keeps the
        result[f"machine_sections_{args.sections}"] = result.pop("machine")  # whole run's machine facts beside its own
        result = json.loads(path.read_text()) | result
    path.write_text(json.dumps(result, indent=1))
    print_tables(result)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
