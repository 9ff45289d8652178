"""The pruners on scripted histories: each stops exactly the trials its rule names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from easel.jobs import TrainBudget
from easel.pruning import MedianPruner, NoPruner, SuccessiveHalvingPruner, make_pruner
from easel.settings import Settings
from train_worker.runner import job_pruner


def _replay(pruner, history: list[tuple[int, float]]) -> list[bool]:  # noqa: ANN001
    """Feed (epoch, score) reports in order; each is judged against the earlier reports at its epoch."""
    seen: dict[int, list[float]] = {}
    verdicts = []
    for epoch, score in history:
        verdicts.append(pruner.should_prune(epoch, score, list(seen.get(epoch, []))))
        seen.setdefault(epoch, []).append(score)
    return verdicts


def test_asha_rungs_are_min_epochs_times_powers_of_eta() -> None:
    asha = SuccessiveHalvingPruner(min_epochs=2, reduction_factor=3)
    assert [e for e in range(1, 60) if asha.rung(e) is not None] == [2, 6, 18, 54]
    assert [asha.rung(e) for e in (2, 6, 18)] == [0, 1, 2]


def test_asha_promotes_the_best_half_at_each_rung_and_stops_the_rest() -> None:
    asha = SuccessiveHalvingPruner(min_epochs=1, reduction_factor=2)  # rungs at epochs 1, 2, 4, 8
    history = [
        (1, 0.50),  # alone at the rung: the best, goes on
        (1, 0.30),  # 2 scores, best 1 goes on: 0.30 < 0.50 stops
        (1, 0.70),  # 3 scores, best 1: 0.70 is it, goes on
        (1, 0.60),  # 4 scores, best 2 = {0.70, 0.60}: goes on
        (1, 0.40),  # 5 scores, best 2: 0.40 stops
        (3, 0.10),  # epoch 3 is no rung: never stopped there
        (2, 0.55),  # rung 1, alone: goes on
        (2, 0.65),  # 2 scores, best 1: 0.65 goes on
        (2, 0.60),  # 3 scores, best 1 is 0.65: 0.60 stops
        (4, 0.90),
        (4, 0.20),  # rung 2 with 2 scores: stops
    ]
    assert _replay(asha, history) == [False, True, False, False, True, False, False, False, True, False, True]


def test_asha_with_eta_three_keeps_one_in_three() -> None:
    asha = SuccessiveHalvingPruner(min_epochs=1, reduction_factor=3)
    scores = [0.2, 0.9, 0.5, 0.8, 0.7, 0.95]
    # 1: best alone; 2: 0.9 best; 3: 0.5 < 0.9; 4: 0.8 < 0.9; 5: 0.7 < 0.9; 6 scores → best 2 = {0.95, 0.9}
    assert _replay(asha, [(1, s) for s in scores]) == [False, False, True, True, True, False]


def test_median_rule_waits_for_three_trials_then_stops_below_the_median() -> None:
    history = [(1, 0.5), (1, 0.6), (1, 0.1), (1, 0.4), (1, 0.7), (2, 0.0)]
    # 0.4 vs median(0.5, 0.6, 0.1) = 0.5 stops; 0.7 vs median(0.5, 0.6, 0.1, 0.4) = 0.45 goes on
    assert _replay(MedianPruner(), history) == [False, False, False, True, False, False]
    assert _replay(NoPruner(), history) == [False] * 6


def test_make_pruner_names_the_choices() -> None:
    assert isinstance(make_pruner("asha", reduction_factor=4), SuccessiveHalvingPruner)
    with pytest.raises(ValueError, match="unknown pruner 'hyperband'"):
        make_pruner("hyperband")
    with pytest.raises(ValueError, match="reduction_factor"):
        SuccessiveHalvingPruner(reduction_factor=1)


def test_a_job_takes_asha_parameters_from_its_budget_else_the_settings() -> None:
    settings = Settings(asha_min_epochs=2, asha_reduction_factor=4)
    default = job_pruner(TrainBudget(PRUNER="asha"), settings)
    assert isinstance(default, SuccessiveHalvingPruner) and (default.min_epochs, default.eta) == (2, 4)
    own = job_pruner(TrainBudget(PRUNER="asha", ASHA_MIN_EPOCHS=3, ASHA_REDUCTION_FACTOR=2), settings)
    assert isinstance(own, SuccessiveHalvingPruner) and (own.min_epochs, own.eta) == (3, 2)
    assert isinstance(job_pruner(TrainBudget(), settings), MedianPruner)
    with pytest.raises(ValidationError, match="apply to PRUNER 'asha' or 'asha_promote' only, not 'none'"):
        TrainBudget(PRUNER="none", ASHA_REDUCTION_FACTOR=2)
    with pytest.raises(ValidationError, match="ASHA_REDUCTION_FACTOR"):
        TrainBudget(PRUNER="asha", ASHA_REDUCTION_FACTOR=1)
    # a promoting-ASHA trial proposed whole (the shared pool has no stretches) falls back to the stopping ASHA
    whole = job_pruner(TrainBudget(PRUNER="asha_promote", ASHA_REDUCTION_FACTOR=2), settings)
    assert isinstance(whole, SuccessiveHalvingPruner) and (whole.min_epochs, whole.eta) == (2, 2)
    with pytest.raises(ValidationError, match="'asha_promote' does not combine with MOP"):
        TrainBudget(PRUNER="asha_promote", MOP=True)
    with pytest.raises(ValidationError, match="ASHA_BRACKETS applies to PRUNER 'asha_promote' only, not 'asha'"):
        TrainBudget(PRUNER="asha", ASHA_BRACKETS=3)
    with pytest.raises(ValidationError, match="ASHA_BRACKETS"):
        TrainBudget(PRUNER="asha_promote", ASHA_BRACKETS=0)
    with pytest.raises(ValidationError, match=r"ASHA_REDUCTION_FACTOR\^\(ASHA_BRACKETS-1\) must be at most 10000"):
        TrainBudget(PRUNER="asha_promote", ASHA_BRACKETS=4, ASHA_REDUCTION_FACTOR=100)
    assert TrainBudget(PRUNER="asha_promote", ASHA_BRACKETS=4, ASHA_REDUCTION_FACTOR=3).ASHA_BRACKETS == 4
