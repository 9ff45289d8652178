"""(b)'s instance accounting (benchmarks/serving_accounting.py): pure arithmetic over what the system recorded."""

from __future__ import annotations

import pytest

from benchmarks.serving_accounting import account, accounting_table, stage_mean

SERVED, DROPPED, EXPIRED = ('easel_worker_instances_total{status="served"}',
                            'easel_worker_instances_total{status="dropped"}',
                            'easel_worker_instances_total{status="expired"}')


def response(instances: int, served: int, dropped: int, unanswered: int) -> dict:
    return {"totals": {"instances": instances, "served": served, "dropped": dropped, "unanswered": unanswered}}


def test_a_task_no_worker_read_shows_as_never_reached_and_one_left_in_a_book_as_expired() -> None:
    answers = [response(64, 60, 4, 0),  # 4 dropped by a worker's plan
               response(64, 0, 64, 64),  # 64 never answered by a worker: 32 expired in its book, 32 never read
               response(64, 64, 0, 0)]
    before = {SERVED: 100.0, DROPPED: 10.0, EXPIRED: 0.0, "easel_worker_batch_seconds_sum": 3.0}
    after = {SERVED: 224.0, DROPPED: 14.0, EXPIRED: 32.0, "easel_worker_batch_seconds_sum": 9.0}
    got = account(answers, before, after)
    assert got == {"sent": 192, "served": 124, "dropped_in_plan": 4, "expired_unrun": 32, "dropped_by_predictor": 64,
                   "never_reached_a_worker": 32, "worker_served": 124, "worker_dropped": 4}
    assert got["sent"] == got["served"] + got["dropped_in_plan"] + got["dropped_by_predictor"]
    sweep = {"sizes": [64], "deadline_s": 0.5,
             "policies": {"scheduler": [{"accounting": got, "rotations": 1}]}}
    assert accounting_table(sweep, ("scheduler",))[-1].split()[1:] == ["scheduler", "192", "124", "4", "32", "64",
                                                                      "32", "1"]


def test_the_pre_worker_delay_is_the_mean_of_the_stage_between_two_reads() -> None:
    assert stage_mean({"to_worker": (1.0, 10.0)}, {"to_worker": (1.6, 30.0)}, "to_worker") == pytest.approx(0.03)
    assert stage_mean({}, {"to_worker": (1.0, 10.0)}, "queued") is None
