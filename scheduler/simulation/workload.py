"""Workloads for the simulator: tasks of N instances with a deadline, arriving by a chosen process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Task:
    """``n_instances`` instances arriving together at ``arrival`` (s), due ``deadline`` seconds later."""

    task_id: int
    arrival: float
    n_instances: int
    deadline: float

    @property
    def deadline_at(self) -> float:
        return self.arrival + self.deadline


def _check_rate(rate: float, n: int) -> None:
    if not rate > 0.0:
        raise ValueError(f"arrival rate must be > 0 per second, got {rate}")
    if n < 0:
        raise ValueError(f"number of arrivals must be >= 0, got {n}")


def constant_arrivals(rate: float, n: int) -> np.ndarray:
    """``n`` arrivals exactly ``1 / rate`` seconds apart, the first at 0."""
    _check_rate(rate, n)
    return np.arange(n, dtype=float) / rate


def poisson_arrivals(rate: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` arrivals of a Poisson process (exponential gaps), the first at 0."""
    _check_rate(rate, n)
    gaps = rng.exponential(1.0 / rate, size=n)
    if n:
        gaps[0] = 0.0
    return np.cumsum(gaps)


def on_off_arrivals(
    rate: float, n: int, rng: np.random.Generator, on: float = 1.0, off: float = 3.0
) -> np.ndarray:
    """Bursts: Poisson at ``rate * (on + off) / on`` during ``on`` seconds, silence for ``off`` seconds.

    The long-run mean rate is ``rate``, so the curves compare with the smooth processes at equal load.
    """
    _check_rate(rate, n)
    if on <= 0.0 or off < 0.0:
        raise ValueError(f"on must be > 0 and off >= 0 seconds, got on={on}, off={off}")
    burst = rate * (on + off) / on
    # Draw in "busy time" (only on-phases), then insert the silences between phases.
    busy = np.cumsum(rng.exponential(1.0 / burst, size=n))
    if n:
        busy -= busy[0]
    phase = np.floor(busy / on)
    return busy + phase * off


ARRIVALS = ("constant", "poisson", "onoff")


def make_workload(
    kind: str,
    instance_rate: float,
    n_tasks: int,
    task_size: int,
    deadline: float,
    seed: int = 0,
) -> list[Task]:
    """``n_tasks`` tasks of ``task_size`` instances at a mean ingest of ``instance_rate`` instances/s."""
    if task_size < 1:
        raise ValueError(f"task_size must be >= 1 instance, got {task_size}")
    if not deadline >= 0.0:
        raise ValueError(f"deadline must be >= 0 seconds, got {deadline}")
    rate = instance_rate / task_size
    rng = np.random.default_rng(seed)
    if kind == "constant":
        times = constant_arrivals(rate, n_tasks)
    elif kind == "poisson":
        times = poisson_arrivals(rate, n_tasks, rng)
    elif kind == "onoff":
        times = on_off_arrivals(rate, n_tasks, rng)
    else:
        raise ValueError(f"unknown arrival process {kind!r}; choose one of {', '.join(ARRIVALS)}")
    return [Task(i, float(a), task_size, float(deadline)) for i, a in enumerate(times)]
