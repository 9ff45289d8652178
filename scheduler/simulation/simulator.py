"""Simulation of inference workers serving tasks under a policy, with the workers' own executor.

Each arriving task is dealt across the workers (``deal``: the platform's rule, ``easel.serving.
split_mini_batches``, handed in because this pure library may not import the platform). Dealing does not
depend on state, so each worker is simulated on its own: it takes its sub-tasks in arrival order (all of a
worker's tasks have the same relative deadline, so this is also earliest-deadline-first) and runs each
with the ``PlanExecutor`` the inference worker runs — plan, run, observe, re-plan or drop — on a simulated
clock. A mini-batch takes its sub-model's profiled time (times a log-normal ``jitter``) and counts its
sub-model's accuracy for each of its instances if it ends by the deadline, 0 otherwise; dropped
mini-batches cost no worker time. Effective accuracy is an expectation (accuracy times instances), so
results do not depend on sampling correctness.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from scheduler.checks import count, real
from scheduler.plan import FEAS_RTOL, Plan
from scheduler.policies.base import LateRule, Policy
from scheduler.profile import Profile
from scheduler.simulation.executor import PlanExecutor
from scheduler.simulation.workload import Task

# (n_instances, n_workers, batch_size, offset) -> instances per worker, whole mini-batches dealt round-robin
Deal = Callable[[int, int, int, int], Sequence[int]]


def global_effective_accuracy(worker_accuracies: Sequence[float], worker_instances: Sequence[int]) -> float:
    """Global effective accuracy: the workers' mean, weighted by how many instances each served.

    With an even split (the usual case) this is the plain mean; weighting keeps it equal to "correct and
    on-time instances / all instances" when the split is uneven.
    """
    if len(worker_accuracies) != len(worker_instances):
        raise ValueError("one accuracy per worker and one instance count per worker are needed")
    total = sum(worker_instances)
    if total == 0:
        return 0.0
    return math.fsum(a * n for a, n in zip(worker_accuracies, worker_instances, strict=True)) / total


@dataclass(frozen=True, slots=True)
class SimResult:
    """What one simulation measured. Rates and accuracy are fractions of all instances."""

    policy: str
    n_workers: int
    n_tasks: int
    n_instances: int
    effective_accuracy: float  # global: instance-weighted mean of worker_accuracy
    worker_accuracy: tuple[float, ...]
    throughput: float  # instances answered by their deadline, per second of simulated time
    latency_p50: float  # seconds from arrival to answer, over instances that were run (on time or late)
    latency_p99: float
    drop_rate: float  # instances dropped unrun
    late_rate: float  # instances run but answered after their deadline
    model_mix: dict[float, float] = field(default_factory=dict)  # slice rate -> share of mini-batches run
    duration: float = 0.0  # first measured arrival to last measured answer, seconds

    def to_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "n_workers": self.n_workers,
            "n_tasks": self.n_tasks,
            "n_instances": self.n_instances,
            "effective_accuracy": self.effective_accuracy,
            "worker_accuracy": list(self.worker_accuracy),
            "throughput": self.throughput,
            "latency_p50": self.latency_p50,
            "latency_p99": self.latency_p99,
            "drop_rate": self.drop_rate,
            "late_rate": self.late_rate,
            "model_mix": {str(r): s for r, s in self.model_mix.items()},
            "duration": self.duration,
        }


@dataclass(slots=True)
class _SubTask:
    task: Task
    n_instances: int
    n_mb: int
    deadline_at: float
    measured: bool  # inside the measurement window (outside it the task still loads the worker)


class _Backlog(Sequence[tuple[int, float]]):
    """A worker's waiting sub-tasks as ``(n_mb, seconds left)``, computed only if a policy reads them
    (baselines never do, and their queues can grow without bound under overload)."""

    def __init__(self, queue: deque[_SubTask], now: float) -> None:
        self._queue = queue
        self._now = now

    def __len__(self) -> int:
        return len(self._queue)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [(q.n_mb, q.deadline_at - self._now) for q in list(self._queue)[i]]
        q = self._queue[i]
        return (q.n_mb, q.deadline_at - self._now)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        now = self._now
        for q in self._queue:
            yield (q.n_mb, q.deadline_at - now)


@dataclass(slots=True)
class _Tally:
    """Running sums for one worker (or for the unmeasured tasks)."""

    instances: int = 0
    correct: float = 0.0
    on_time: int = 0
    dropped: int = 0
    late: int = 0
    mix: list[int] = field(default_factory=list)  # mini-batches run per sub-model
    lat_values: list[float] = field(default_factory=list)
    lat_weights: list[int] = field(default_factory=list)
    last_answer: float = -math.inf


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if values.size == 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(idx, values.size - 1)])


def _batch_sizes(n_instances: int, n_mb: int, batch_size: int) -> list[int]:
    """Sizes of a sub-task's mini-batches in run order: full ones first, the partial one last (dropped first)."""
    if n_mb == 0:
        return []
    return [batch_size] * (n_mb - 1) + [n_instances - (n_mb - 1) * batch_size]


class _SimRunner:
    """Runs a sub-task's mini-batches on the simulated clock and tallies their answers."""

    def __init__(self, sub: _SubTask, sizes: list[int], clock: list[float], tally: _Tally,
                 profile: Profile, jitter: float, rng: np.random.Generator) -> None:
        self.sub, self.sizes, self.clock, self.tally = sub, sizes, clock, tally
        self.times, self.accs = profile.batch_times, profile.accuracies
        self.jitter, self.rng = jitter, rng
        self.limit = sub.deadline_at + FEAS_RTOL * sub.task.deadline

    def planned(self, plan: Plan, first: bool) -> None:
        pass

    def run(self, index: int, model: int, last: bool) -> float:
        dt = self.times[model] * (float(self.rng.lognormal(0.0, self.jitter)) if self.jitter else 1.0)
        self.clock[0] += dt
        end, size, tally = self.clock[0], self.sizes[index], self.tally
        tally.mix[model] += 1
        tally.lat_values.append(end - self.sub.task.arrival)
        tally.lat_weights.append(size)
        tally.last_answer = max(tally.last_answer, end)
        if end <= self.limit:
            tally.on_time += size
            tally.correct += size * self.accs[model]
        else:
            tally.late += size
        return dt

    def drop(self, indices: Sequence[int], last: bool) -> None:
        self.tally.dropped += sum(self.sizes[i] for i in indices)
        self.tally.last_answer = max(self.tally.last_answer, self.clock[0])


def _run_worker(subs: list[_SubTask], policy: Policy, profile: Profile, batch_size: int, jitter: float,
                rng: np.random.Generator, floor: LateRule, tally: _Tally, scratch: _Tally) -> None:
    """One worker: take sub-tasks in arrival order, each served by the executor on the simulated clock."""
    clock = [0.0]
    queue: deque[_SubTask] = deque()
    arrived = 0
    executor = PlanExecutor(policy, lambda: clock[0], floor, full_size=batch_size)

    def admit(now: float) -> None:
        nonlocal arrived
        while arrived < len(subs) and subs[arrived].task.arrival <= now:
            sub = subs[arrived]
            queue.append(sub)
            policy.on_arrival(sub.n_mb, sub.task.arrival)
            arrived += 1

    def backlog(now: float) -> _Backlog:
        admit(now)
        return _Backlog(queue, now)

    while arrived < len(subs) or queue:
        if not queue:
            clock[0] = max(clock[0], subs[arrived].task.arrival)
        admit(clock[0])
        sub = queue.popleft()
        into = tally if sub.measured else scratch
        into.instances += sub.n_instances
        sizes = _batch_sizes(sub.n_instances, sub.n_mb, batch_size)
        runner = _SimRunner(sub, sizes, clock, into, profile, jitter, rng)
        executor.run_share(sizes, sub.deadline_at, runner, backlog)


def simulate(
    profile: Profile,
    policy: Policy | Callable[[], Policy],
    tasks: Sequence[Task],
    n_workers: int = 1,
    batch_size: int = 32,
    jitter: float = 0.0,
    seed: int = 0,
    warmup: float = 0.0,
    cooldown: float = 0.0,
    deal: Deal | None = None,
    late_rule: LateRule | None = None,
) -> SimResult:
    """Run ``tasks`` through ``n_workers`` workers under ``policy``.

    ``policy`` is a factory called once per worker, or one Policy (copied per worker when there are
    several: a policy that learns — the scheduler's arrival rate, Model-Switching's latencies — sees its
    own worker's stream, as on the platform). ``deal`` splits a task across the workers (required with
    more than one: pass ``easel.serving.split_mini_batches``, the rule the predictor applies).
    ``late_rule`` is the least strict ``LateRule`` applied to every policy: None runs each policy as
    published (baselines run late work); ``LateRule.START`` is what the inference worker applies (never
    start a mini-batch after its deadline); ``LateRule.FIT`` is the shared drop rule (baselines drop the
    work that can no longer finish, as ours does).

    ``jitter`` is the sigma of a log-normal factor on every mini-batch's real time (0 = the profile is
    exact). Policies get each real full mini-batch time through ``observe``.

    Metrics count only tasks arriving at least ``warmup`` seconds after the first arrival and at least
    ``cooldown`` seconds before the last: the others still load the workers, but an empty system at the
    start and the unused queue at the end would otherwise flatter every policy that borrows time.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a scheduler.Profile, got {type(profile).__name__}")
    n_workers, batch_size = count("n_workers", n_workers), count("batch_size", batch_size)
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    jitter, warmup, cooldown = real("jitter", jitter), real("warmup", warmup), real("cooldown", cooldown)
    if jitter < 0.0:
        raise ValueError(f"jitter must be >= 0, got {jitter}")
    if warmup < 0.0 or cooldown < 0.0:
        raise ValueError(f"warmup and cooldown must be >= 0 seconds, got {warmup} and {cooldown}")
    if n_workers > 1 and deal is None:
        raise ValueError("deal is required with n_workers > 1 (pass easel.serving.split_mini_batches)")
    if isinstance(policy, Policy):
        policies = [policy] + [copy.deepcopy(policy) for _ in range(n_workers - 1)]
    else:
        policies = [policy() for _ in range(n_workers)]
    floor = LateRule.RUN if late_rule is None else LateRule(late_rule)
    ordered = sorted(tasks, key=lambda t: (t.arrival, t.task_id))
    first = ordered[0].arrival if ordered else 0.0
    window = (first + warmup, (ordered[-1].arrival if ordered else 0.0) - cooldown)
    measured_from = min((t.arrival for t in ordered if window[0] <= t.arrival <= window[1]), default=first)
    subs: list[list[_SubTask]] = [[] for _ in range(n_workers)]
    for task in ordered:
        shares = [task.n_instances] if n_workers == 1 else deal(task.n_instances, n_workers, batch_size,
                                                                 task.task_id)
        measured = window[0] <= task.arrival <= window[1]
        for w, n_inst in enumerate(shares):
            if n_inst:
                subs[w].append(_SubTask(task, n_inst, math.ceil(n_inst / batch_size), task.deadline_at, measured))
    tallies = [_Tally(mix=[0] * len(profile)) for _ in range(n_workers)]
    scratch = _Tally(mix=[0] * len(profile))  # where unmeasured tasks are tallied (and forgotten)
    for w in range(n_workers):
        rng = np.random.default_rng([seed, w])
        _run_worker(subs[w], policies[w], profile, batch_size, jitter, rng, floor, tallies[w], scratch)

    n_instances = sum(t.instances for t in tallies)
    worker_acc = tuple(t.correct / t.instances if t.instances else 0.0 for t in tallies)
    last_answer = max((t.last_answer for t in tallies), default=measured_from)
    duration = max(last_answer - measured_from, 0.0)
    lv = np.asarray([v for t in tallies for v in t.lat_values])
    lw = np.asarray([v for t in tallies for v in t.lat_weights], dtype=float)
    mix = [sum(t.mix[i] for t in tallies) for i in range(len(profile))]
    run_mb = sum(mix)
    return SimResult(
        policy=policies[0].name,
        n_workers=n_workers,
        n_tasks=sum(1 for t in ordered if window[0] <= t.arrival <= window[1]),
        n_instances=n_instances,
        effective_accuracy=global_effective_accuracy(worker_acc, [t.instances for t in tallies]),
        worker_accuracy=worker_acc,
        throughput=sum(t.on_time for t in tallies) / duration if duration > 0 else 0.0,
        latency_p50=_weighted_quantile(lv, lw, 0.50),
        latency_p99=_weighted_quantile(lv, lw, 0.99),
        drop_rate=sum(t.dropped for t in tallies) / n_instances if n_instances else 0.0,
        late_rate=sum(t.late for t in tallies) / n_instances if n_instances else 0.0,
        model_mix={profile.rates[i]: c / run_mb for i, c in enumerate(mix)} if run_mb else {},
        duration=duration,
    )
