"""Work lost to killed train workers, kill by kill, read from a sub-job's events stream.

Unit-wise trials promise that a worker killed mid-unit costs at most the unit it was running (issue #20). This
module checks the promise from the events the workers emit (:mod:`easel.tuning`: ``unit_started`` and
``unit_done``, each with its trial, unit number and worker), in stream order, without clocks: a killed worker
emits nothing after it dies, so

* the unit *in flight* at a kill is the victim's last ``unit_started`` with no ``unit_done`` after it; it is
  lost when another worker starts it again (a victim may die after its checkpoint landed, before it said so);
* the kill also cost every unit of that trial started again by another worker after the victim's last event
  although it had been done before (a checkpoint that was not used), and the victim's last finished unit when
  the trial's result was not written yet (it must run again to hold the model for profiling).

Units trained more than once that no kill explains are reported as ``unattributed`` (e.g. a lease that expired
under load and re-issued a trial whose worker was alive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class KillCost:
    worker: str
    trial: str | None  # the trial the victim was working on (None: it was idle)
    unit: int | None  # the unit in flight (1-based; None: between units or idle)
    units_lost: int  # the units trained again because of this kill


@dataclass(frozen=True)
class WorkLost:
    kills: tuple[KillCost, ...]
    units_started: int
    units_kept: int  # units that ended up in the trials (one run per trial and unit)
    unattributed: int  # units trained again that no kill explains

    @property
    def max_lost_per_kill(self) -> int:
        return max((kill.units_lost for kill in self.kills), default=0)

    def to_json(self) -> dict:
        return {"per_kill": [kill.__dict__ for kill in self.kills], "units_started": self.units_started,
                "units_kept": self.units_kept, "unattributed": self.unattributed,
                "max_lost_per_kill": self.max_lost_per_kill}


def _units(events: Sequence[Mapping]) -> list[tuple[int, str, str, str, int]]:
    """(position, type, worker, trial, unit) of every unit event, in stream order."""
    return [(i, e["type"], str(e["worker"]), str(e["trial"]), int(e["unit"])) for i, e in enumerate(events)
            if e.get("type") in ("unit_started", "unit_done")]


def _cost_of(units: list[tuple[int, str, str, str, int]], victim: str) -> KillCost:
    mine = [u for u in units if u[2] == victim]
    if not mine:
        return KillCost(victim, None, None, 0)
    last_position, last_type, _, trial, unit = mine[-1]
    in_flight = unit if last_type == "unit_started" else None
    started_after = {u[4] for u in units if u[0] > last_position and u[3] == trial and u[1] == "unit_started"}
    done_before = max((u[4] for u in units if u[0] <= last_position and u[3] == trial and u[1] == "unit_done"),
                      default=0)
    redone = {unit for unit in started_after if unit <= done_before}
    # The unit in flight is lost only if it had to run again: a victim killed after its checkpoint landed but
    # before its ``unit_done`` event cost nothing (the trial resumes after that unit).
    lost_in_flight = in_flight is not None and in_flight in started_after
    return KillCost(victim, trial, in_flight, len(redone) + lost_in_flight)


def attribute_kills(events: Sequence[Mapping], victims: Sequence[str]) -> WorkLost:
    """The cost of each kill, in the order of ``victims`` (the killed workers' ids; each worker dies once)."""
    if len(set(victims)) != len(victims):
        raise ValueError("victims: a worker can be killed only once")
    units = _units(events)
    started = sum(u[1] == "unit_started" for u in units)
    kept = len({(u[3], u[4]) for u in units if u[1] == "unit_started"})
    kills = tuple(_cost_of(units, victim) for victim in victims)
    return WorkLost(kills, started, kept, started - kept - sum(kill.units_lost for kill in kills))


__all__ = ["KillCost", "WorkLost", "attribute_kills"]
