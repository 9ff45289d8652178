"""Discrete-event simulation of inference workers serving tasks under a policy.

Each arriving task is split across the workers' FIFO queues (``multiworker.split_instances``). A worker
that becomes free takes its next sub-task, asks the policy for a plan with the time left until the
task's deadline, and runs the planned mini-batches back to back in plan order. A mini-batch counts its
sub-model's accuracy for each of its instances if it ends by the deadline, 0 otherwise; mini-batches the
plan drops are answered as dropped at once and cost no worker time. Effective accuracy is an expectation
(accuracy times instances), so results do not depend on sampling correctness.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from scheduler.multiworker import global_effective_accuracy, split_instances
from scheduler.plan import FEAS_RTOL
from scheduler.policies import Policy
from scheduler.profile import Profile
from scheduler.workload import Task


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
    """Running sums for one worker."""

    instances: int = 0
    correct: float = 0.0
    on_time: int = 0
    dropped: int = 0
    late: int = 0


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if values.size == 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(idx, values.size - 1)])


def _batch_sizes(n_instances: int, n_mb: int, batch_size: int) -> list[int]:
    """Sizes of a sub-task's mini-batches, smallest (the partial one) first, so drops take it first."""
    if n_mb == 0:
        return []
    last = n_instances - (n_mb - 1) * batch_size
    return [last] + [batch_size] * (n_mb - 1)


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
) -> SimResult:
    """Run ``tasks`` through ``n_workers`` workers under ``policy``.

    ``policy`` is either one Policy shared by every worker or a factory called once per worker; pass a
    factory for policies that learn from feedback (the scheduler's arrival rate, Model-Switching's
    latencies), since each worker sees its own stream.

    ``jitter`` is the sigma of a log-normal factor on every mini-batch's real time (0 = the profile is
    exact). Policies get each real mini-batch time through ``observe``.

    Metrics count only tasks arriving at least ``warmup`` seconds after the first arrival and at least
    ``cooldown`` seconds before the last: the others still load the workers, but an empty system at the
    start and the unused queue at the end would otherwise flatter every policy that borrows time.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if jitter < 0.0:
        raise ValueError(f"jitter must be >= 0, got {jitter}")
    if warmup < 0.0 or cooldown < 0.0:
        raise ValueError(f"warmup and cooldown must be >= 0 seconds, got {warmup} and {cooldown}")
    policies = [policy] * n_workers if isinstance(policy, Policy) else [policy() for _ in range(n_workers)]
    rng = np.random.default_rng(seed)
    times, accs = profile.batch_times, profile.accuracies
    queues: list[deque[_SubTask]] = [deque() for _ in range(n_workers)]
    busy = [False] * n_workers
    tallies = [_Tally() for _ in range(n_workers)]
    mix = [0] * len(profile)
    lat_values: list[float] = []
    lat_weights: list[int] = []
    # Events: (time, seq, worker) for "worker becomes free", (time, seq, -1 - index) for an arrival.
    events: list[tuple[float, int, int]] = []
    ordered = sorted(tasks, key=lambda t: (t.arrival, t.task_id))
    seq = 0
    for i, task in enumerate(ordered):
        heapq.heappush(events, (task.arrival, seq, -1 - i))
        seq += 1
    first = ordered[0].arrival if ordered else 0.0
    window = (first + warmup, (ordered[-1].arrival if ordered else 0.0) - cooldown)
    measured_from = min((t.arrival for t in ordered if window[0] <= t.arrival <= window[1]), default=first)
    last_answer = measured_from
    scratch = _Tally()  # where unmeasured tasks are tallied (and forgotten)
    scratch_mix = [0] * len(profile)

    def start(w: int, now: float) -> float:
        """Run worker w's next sub-task; returns when the worker is free again."""
        nonlocal last_answer
        sub = queues[w].popleft()
        task, n_inst, n_mb = sub.task, sub.n_instances, sub.n_mb
        tally = tallies[w] if sub.measured else scratch
        used = mix if sub.measured else scratch_mix
        tally.instances += n_inst
        left = sub.deadline_at - now
        pol = policies[w]
        plan = pol.decide(n_mb, max(left, 0.0), _Backlog(queues[w], now))
        sizes = _batch_sizes(n_inst, n_mb, batch_size)
        tally.dropped += sum(sizes[: plan.dropped])
        sizes = sizes[plan.dropped :]
        clock = now
        b = 0
        limit = sub.deadline_at + FEAS_RTOL * max(left, 0.0)
        for model, count in plan.order:
            used[model] += count
            for _ in range(count):
                dt = times[model] * (float(rng.lognormal(0.0, jitter)) if jitter else 1.0)
                clock += dt
                pol.observe(model, dt)
                size = sizes[b]
                b += 1
                if sub.measured:
                    lat_values.append(clock - task.arrival)
                    lat_weights.append(size)
                if clock <= limit:
                    tally.on_time += size
                    tally.correct += size * accs[model]
                else:
                    tally.late += size
        if sub.measured:
            last_answer = max(last_answer, clock, now)
        return clock

    while events:
        now, _, who = heapq.heappop(events)
        if who < 0:  # an arrival: deal it to the workers' queues
            task = ordered[-1 - who]
            for w, n_inst in enumerate(
                split_instances(task.n_instances, n_workers, batch_size, task.task_id)
            ):
                if n_inst:
                    n_mb = math.ceil(n_inst / batch_size)
                    measured = window[0] <= task.arrival <= window[1]
                    queues[w].append(_SubTask(task, n_inst, n_mb, task.deadline_at, measured))
                    policies[w].on_arrival(n_mb, now)
                    if not busy[w]:
                        busy[w] = True
                        heapq.heappush(events, (now, seq, w))
                        seq += 1
            continue
        w = who  # worker w is free at `now`
        if queues[w]:
            heapq.heappush(events, (start(w, now), seq, w))
            seq += 1
        else:
            busy[w] = False

    n_instances = sum(t.instances for t in tallies)
    worker_acc = tuple(t.correct / t.instances if t.instances else 0.0 for t in tallies)
    duration = max(last_answer - measured_from, 0.0)
    lv, lw = np.asarray(lat_values), np.asarray(lat_weights, dtype=float)
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
