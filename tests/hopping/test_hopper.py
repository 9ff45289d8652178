"""Cerebro's randomized scheduler (advisor.hopper) driven by a simulated cluster: whatever the order units
finish in, no trial ever runs two units at once, every trial visits every shard exactly once per epoch, and
no worker stays idle while some trial could use its shard."""

from __future__ import annotations

import random

import pytest

from advisor.hopper import HopState, place_units


def _simulate(seed: int, shards: int, trials: int, epochs: int) -> dict[str, list[list[int]]]:
    rng, finish_rng = random.Random(seed), random.Random(seed + 1000)
    done = {f"t{i}": 0 for i in range(trials)}
    visited: dict[str, list[int]] = {t: [] for t in done}
    history: dict[str, list[list[int]]] = {t: [[]] for t in done}
    running: dict[str, tuple[str, int]] = {}  # worker -> (trial, shard)
    owners = {f"w{k}": k for k in range(shards)}
    for _round in range(10_000):
        live = [t for t in done if done[t] < epochs * shards]
        if not live:
            return history
        states = [HopState(t, done[t], frozenset(visited[t]), any(r[0] == t for r in running.values())) for t in live]
        idle = {w: k for w, k in owners.items() if w not in running}
        for trial, worker, shard in place_units(idle, states, rng):
            assert worker in idle and shard == owners[worker]
            assert all(r[0] != trial for r in running.values()), "a trial placed twice at once"
            assert shard not in visited[trial], "a shard visited twice in one epoch"
            running[worker] = (trial, shard)
        # No idle worker is left that some free trial could use.
        busy = {r[0] for r in running.values()}
        for worker, shard in owners.items():
            if worker not in running:
                assert all(shard in visited[t] or t in busy for t in live)
        worker = finish_rng.choice(sorted(running))  # units finish in any order
        trial, shard = running.pop(worker)
        done[trial] += 1
        history[trial][-1].append(shard)
        visited[trial].append(shard)
        if len(visited[trial]) == shards:
            visited[trial] = []
            history[trial].append([])
    raise AssertionError("the simulation did not finish")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("shards", "trials"), [(2, 3), (3, 3), (4, 2)])
def test_every_trial_visits_every_shard_once_per_epoch(seed: int, shards: int, trials: int) -> None:
    history = _simulate(seed, shards, trials, epochs=3)
    for epochs in history.values():
        completed = [epoch for epoch in epochs if epoch]
        assert len(completed) == 3
        assert all(sorted(epoch) == list(range(shards)) for epoch in completed)


def test_orders_differ_between_epochs_and_trials() -> None:
    history = _simulate(0, shards=3, trials=3, epochs=4)
    orders = {tuple(epoch) for epochs in history.values() for epoch in epochs if epoch}
    assert len(orders) > 1, "randomized: not one fixed visiting order"


def test_a_busy_trial_is_never_placed() -> None:
    trials = [HopState("a", 0, frozenset(), busy=True), HopState("b", 1, frozenset({0}), busy=False)]
    assert place_units({"w0": 0, "w1": 1}, trials, random.Random(0)) == [("b", "w1", 1)]
