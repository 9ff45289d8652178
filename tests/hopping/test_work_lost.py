"""Kill-by-kill attribution of lost units (pure logic over scripted events streams)."""

from __future__ import annotations

import pytest

from easel.work_lost import KillCost, attribute_kills


def _started(worker: str, trial: str, unit: int) -> dict:
    return {"type": "unit_started", "worker": worker, "trial": trial, "unit": unit}


def _done(worker: str, trial: str, unit: int) -> dict:
    return {"type": "unit_done", "worker": worker, "trial": trial, "unit": unit}


def _units(worker: str, trial: str, first: int, last: int) -> list[dict]:
    return [e for u in range(first, last + 1) for e in (_started(worker, trial, u), _done(worker, trial, u))]


def test_each_kill_costs_the_unit_in_flight_on_its_victim() -> None:
    events = [*_units("a", "t1", 1, 2), _started("a", "t1", 3),  # a dies running unit 3 of t1
              *_units("b", "t2", 1, 4),  # b is busy with t2 meanwhile
              {"type": "trial_done", "trial": "t2"},
              *_units("b", "t1", 3, 3), _started("b", "t1", 4),  # b resumes t1 at unit 3, dies running unit 4
              *_units("c", "t1", 4, 4)]
    audit = attribute_kills(events, ["a", "b"])
    assert audit.kills == (KillCost("a", "t1", 3, 1), KillCost("b", "t1", 4, 1))
    assert (audit.units_started, audit.units_kept, audit.unattributed, audit.max_lost_per_kill) == (10, 8, 0, 1)


def test_a_checkpoint_not_used_is_charged_to_the_kill() -> None:
    events = [*_units("a", "t1", 1, 2), _started("a", "t1", 3),
              *_units("b", "t1", 1, 4)]  # the successor started over: units 1 and 2 trained again
    audit = attribute_kills(events, ["a"])
    assert audit.kills == (KillCost("a", "t1", 3, 3),)
    assert audit.max_lost_per_kill == 3 and audit.unattributed == 0


def test_an_idle_victim_costs_nothing_and_unexplained_reruns_are_reported() -> None:
    events = [*_units("a", "t1", 1, 2), *_units("b", "t1", 2, 2)]  # b re-ran unit 2 with a alive and never killed
    audit = attribute_kills(events, ["c"])
    assert audit.kills == (KillCost("c", None, None, 0),)
    assert audit.unattributed == 1


def test_a_kill_between_the_last_unit_and_the_result_costs_that_unit() -> None:
    events = [*_units("a", "t1", 1, 2), *_units("b", "t1", 2, 2)]  # a died before writing t1's result
    assert attribute_kills(events, ["a"]).kills == (KillCost("a", "t1", None, 1),)


def test_a_victim_killed_after_its_checkpoint_landed_costs_nothing() -> None:
    # a dies after unit 2's checkpoint landed but before its unit_done: b goes on with unit 3, nothing re-runs
    events = [*_units("a", "t1", 1, 1), _started("a", "t1", 2), *_units("b", "t1", 3, 4)]
    audit = attribute_kills(events, ["a"])
    assert audit.kills == (KillCost("a", "t1", 2, 0),)
    assert (audit.units_started, audit.units_kept, audit.unattributed) == (4, 4, 0)


def test_a_worker_is_killed_once() -> None:
    with pytest.raises(ValueError, match="victims"):
        attribute_kills([], ["a", "a"])
