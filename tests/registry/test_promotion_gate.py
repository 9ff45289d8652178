"""The promotion gate's pure rule: accuracy within tolerance and batch time within (1 + tolerance) at every rate."""

from __future__ import annotations

import pytest

from easel.promotion_gate import Measured, judge

PRODUCTION = Measured(rates=(1.0, 0.5), accuracy=(0.90, 0.80), batch_time_s=(0.010, 0.004))


def test_an_equal_or_better_candidate_passes() -> None:
    better = Measured((1.0, 0.5), (0.92, 0.80), (0.009, 0.004))
    verdict = judge(better, PRODUCTION, tolerance=0.0)
    assert verdict.passed and verdict.failures == []
    assert [row["rate"] for row in verdict.rows] == [1.0, 0.5]
    assert verdict.rows[0]["production_accuracy"] == 0.90


def test_within_the_tolerance_passes_and_beyond_it_fails() -> None:
    slightly_worse = Measured((1.0, 0.5), (0.885, 0.80), (0.01005, 0.004))
    assert judge(slightly_worse, PRODUCTION, tolerance=0.05).passed
    verdict = judge(slightly_worse, PRODUCTION, tolerance=0.01)
    assert not verdict.passed
    assert verdict.failures == ["rate 1: accuracy 0.8850 < production's 0.9000 - 0.01"]


def test_lower_accuracy_at_one_width_is_refused_with_the_numbers() -> None:
    worse = Measured((1.0, 0.5), (0.95, 0.70), (0.010, 0.004))
    verdict = judge(worse, PRODUCTION, tolerance=0.02)
    assert not verdict.passed
    assert verdict.failures == ["rate 0.5: accuracy 0.7000 < production's 0.8000 - 0.02"]
    row = verdict.to_json()["rates"][1]
    assert (row["rate"], row["candidate_accuracy"], row["accuracy_ok"], row["time_ok"]) == (0.5, 0.70, False, True)
    assert row["min_accuracy"] == pytest.approx(0.78)


def test_a_slower_candidate_is_refused() -> None:
    slower = Measured((1.0, 0.5), (0.95, 0.85), (0.010, 0.006))
    verdict = judge(slower, PRODUCTION, tolerance=0.2)
    assert not verdict.passed
    assert len(verdict.failures) == 1 and verdict.failures[0].startswith("rate 0.5: batch time 0.006000 s")
    assert verdict.rows[1]["max_batch_time_s"] == pytest.approx(0.0048)


def test_a_missing_rate_fails_and_no_production_passes() -> None:
    narrow = Measured((1.0,), (0.99,), (0.001,))
    assert judge(narrow, PRODUCTION).failures == ["rate 0.5: the candidate does not serve it"]
    first = judge(narrow, None)
    assert first.passed and first.rows == [{"rate": 1.0, "candidate_accuracy": 0.99, "candidate_batch_time_s": 0.001}]


@pytest.mark.parametrize("tolerance", [-0.1, 1.5, float("nan"), "0.1"])
def test_a_bad_tolerance_is_a_value_error(tolerance: object) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        judge(PRODUCTION, PRODUCTION, tolerance=tolerance)  # type: ignore[arg-type]


def test_bad_measurements_are_value_errors() -> None:
    with pytest.raises(ValueError, match="one entry per rate"):
        Measured((1.0, 0.5), (0.9,), (0.1, 0.2))
    with pytest.raises(ValueError, match="missing 'batch_time_s'"):
        Measured.from_json({"rates": [1.0], "accuracy": [0.9]})
