"""The serving benchmark's measured profile, where one task can fill its whole deadline: a reproducer of why the
priced policy lost to the fastest fixed width there (issue #14 (d)), and the two parts of its fix — the
executor re-plans when work arrives behind a share, and a task spends at most its long-run share of time."""

from __future__ import annotations

import pytest

from easel.serving import split_mini_batches
from scheduler import (
    FixedWidthPolicy,
    LateRule,
    PlanExecutor,
    Profile,
    SchedulerPolicy,
    make_workload,
    simulate,
)
from scheduler.plan import Plan

# The serving benchmark's in-situ profile (benchmarks/results/serving.json): a sliced MLP whose r=1 is slower
# than the 0.5 s deadline for a single mini-batch of 32, and whose r=0.5 needs 0.54 s for a task's 7.
SERVING = Profile((1.0, 0.75, 0.5, 0.25), (0.9306, 0.925, 0.8833, 0.7722), (0.2876, 0.1580, 0.0769, 0.0315))
TASK, DEADLINE = 446, 0.5  # instances per task: 14 mini-batches, 7 per worker of two


def _accuracy(policy, kind: str, w: float, n_tasks: int = 160) -> float:
    tasks = make_workload(kind, w, n_tasks, TASK, DEADLINE, seed=1)
    margin = tasks[-1].arrival / 4
    return simulate(SERVING, policy, tasks, n_workers=2, deal=split_mini_batches, warmup=margin,
                    cooldown=margin, seed=1, late_rule=LateRule.FIT).effective_accuracy


@pytest.mark.parametrize(("kind", "w"), [("poisson", 1424.0), ("onoff", 610.0)])
def test_on_the_serving_profile_the_default_policy_is_not_behind_the_fastest_fixed_width(kind: str, w: float) -> None:
    # Loads where the fastest width alone already drops work: every second spent on a wider model must be
    # paid by work that arrives later. The queue-only budget, blind to work not yet arrived, loses there.
    fastest = _accuracy(lambda: FixedWidthPolicy(SERVING, 0.25), kind, w)
    ours = _accuracy(lambda: SchedulerPolicy(SERVING), kind, w)
    queue_only = _accuracy(lambda: SchedulerPolicy(SERVING, mode="queue"), kind, w)
    assert queue_only < fastest - 0.005
    # Here the best plan is nearly "always the fastest": a tie, up to one workload's noise (the benchmark
    # repeats workloads and measures the standard error; this is one of them).
    assert ours >= fastest - 0.001


def test_at_light_load_the_default_policy_still_buys_width() -> None:
    assert _accuracy(lambda: SchedulerPolicy(SERVING), "poisson", 610.0) > \
        _accuracy(lambda: FixedWidthPolicy(SERVING, 0.25), "poisson", 610.0) + 0.02


def test_a_task_spends_at_most_its_long_run_share_of_the_workers_time() -> None:
    policy = SchedulerPolicy(SERVING)
    assert policy.budget(7, DEADLINE) == DEADLINE  # no load measured yet: the whole deadline
    for i in range(400):  # 7 mini-batches every 0.25 s: 28 per second, 35.7 ms each
        policy.on_arrival(7, i * 0.25)
    share = policy.long_run_share()
    assert share == pytest.approx(0.25 / 7, rel=0.05)
    assert policy.budget(7, DEADLINE) == pytest.approx(7 * share)  # nothing queued: the share, not 0.5 s
    assert policy.budget(7, DEADLINE, [(7, 0.6)]) == pytest.approx(7 * share)  # below the queue's 0.6 * 7 / 14
    assert policy.budget(7, DEADLINE, [(7, 0.46)]) == pytest.approx(0.23)  # the queue's share is smaller
    assert policy.budget(7, 0.1) == pytest.approx(0.1)  # less time left than the share: the time left
    # The share never starves a task below its fastest width (unless the deadline does).
    for i in range(400, 800):
        policy.on_arrival(7, 100.0 + (i - 400) * 0.05)
    assert policy.budget(7, DEADLINE) == pytest.approx(7 * 0.0315)
    assert SchedulerPolicy(SERVING, mode="queue").budget(7, DEADLINE) == DEADLINE


def test_a_deadline_long_against_the_work_leaves_room_for_bursts_and_spends_the_rest() -> None:
    policy = SchedulerPolicy(SERVING)
    for i in range(400):  # 7 mini-batches a second: 22 % of the worker at the fastest width
        policy.on_arrival(7, float(i))
    assert policy.long_run_share() == pytest.approx(1 / 7, rel=0.05)
    assert policy.budget(7, DEADLINE) == DEADLINE  # the long-run share (1 s) is more than the deadline
    # An 8 s deadline is far more than the share, but bursts of arrivals within it are absorbed by the queue:
    # the task may spend most of it, less a reserve that stays a small part of it.
    long = policy.budget(7, 8.0)
    assert 7.5 < long < 8.0
    # Heavier load (66 %): a larger reserve.
    for i in range(400):
        policy.on_arrival(7, 400.0 + i / 3)
    assert policy.budget(7, 8.0) < long


class _Clock:
    """A simulated clock and runner: each mini-batch takes its sub-model's profiled time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.models: list[int] = []

    def planned(self, plan: Plan, first: bool) -> None:
        pass

    def run(self, index: int, model: int, last: bool) -> float:
        self.now += SERVING.batch_times[model]
        self.models.append(model)
        return SERVING.batch_times[model]

    def drop(self, indices, last: bool) -> None:
        pass


def test_the_executor_replans_when_work_arrives_behind_a_share() -> None:
    policy = SchedulerPolicy(SERVING, mode="queue")  # budget = the queue's fair share, no price
    clock = _Clock()
    # A task of 7 alone gets its whole deadline: 6 x r=0.5 and 1 x r=0.25 (fastest first). After its second
    # mini-batch a task of 7 arrives behind it, due 0.5 s from then.
    arrival = SERVING.batch_times[3] + SERVING.batch_times[2]

    def behind(now: float) -> list[tuple[int, float]]:
        return [(7, arrival + DEADLINE - now)] if now >= arrival else []

    outcome = PlanExecutor(policy, lambda: clock.now, LateRule.FIT).run_share([32] * 7, DEADLINE, clock, behind)
    assert outcome.plan.counts == (0, 0, 6, 1)
    assert outcome.replans >= 1
    assert clock.models[:2] == [3, 2]
    # The other five were planned again with the newcomer's share in view: fewer wide ones.
    assert clock.models[2:].count(2) < 5
    assert outcome.ran + outcome.dropped == 7
