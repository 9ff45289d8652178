"""Promoting ASHA's ladder on scripted histories: promotions exactly as the rungs say, worked out by hand."""

from __future__ import annotations

import pytest

from advisor.promotions import Promotion, PromotionLadder


def test_rungs_are_min_epochs_times_powers_of_eta() -> None:
    ladder = PromotionLadder(min_epochs=2, eta=3)
    assert [e for e in range(1, 60) if ladder.rung_of(e) is not None] == [2, 6, 18, 54]
    assert ladder.first_epoch == 2 and ladder.rung_epoch(2) == 18


def test_a_free_worker_promotes_the_best_of_the_highest_rung_else_starts_a_new_trial() -> None:
    ladder = PromotionLadder(min_epochs=1, eta=2)  # rungs at epochs 1, 2, 4
    steps = [
        ("a", 1, 0.5, None),  # 1 at rung 1: ⌊1/2⌋ = 0 promotable → a new trial
        ("b", 1, 0.3, Promotion("a", 1, 2)),  # 2 at rung 1: the best 1 (a) goes on; b stays paused
        ("c", 1, 0.7, Promotion("c", 1, 2)),  # 3 at rung 1: the best 1 is c now
        ("a", 2, 0.6, None),  # rung 2 holds 1 (0 promotable); rung 1's best (c) already went on
        ("d", 1, 0.6, Promotion("d", 1, 2)),  # 4 at rung 1: the best 2 = {c, d}; d has not gone on
        ("c", 2, 0.8, Promotion("c", 2, 4)),  # rung 2 first: 2 there, the best (c) goes on
        ("d", 2, 0.9, Promotion("d", 2, 4)),  # 3 at rung 2: the best 1 is d
        ("c", 4, 0.85, None),  # the top rung; nothing left to promote
    ]
    for trial, epoch, score, expected in steps:
        ladder.reached(trial, epoch, score)
        assert ladder.promote() == expected, (trial, epoch)
    # b never made a rung's top half; a was overtaken at rung 2: both end paused (pruned at the budget's end).
    assert {t: ladder.paused_at(t) for t in "abcd"} == {"a": 2, "b": 1, "c": 4, "d": None}


def test_a_promotion_happens_once_and_ties_go_to_the_first_arrival() -> None:
    ladder = PromotionLadder(min_epochs=1, eta=3)
    for trial in ("x", "y", "z"):
        ladder.reached(trial, 1, 0.5)
    assert ladder.candidate() == Promotion("x", 1, 3)  # asked twice without promoting: the same answer
    assert ladder.promote() == Promotion("x", 1, 3)
    assert ladder.promote() is None  # ⌊3/3⌋ = 1 promotable, and x went on already


def test_a_rebuilt_ladder_does_not_promote_a_trial_twice() -> None:
    ladder = PromotionLadder(min_epochs=1, eta=2)
    ladder.reached("a", 1, 0.9)
    ladder.reached("b", 1, 0.1)
    ladder.mark_promoted("a", 1)  # the trials table says a trained past epoch 1
    assert ladder.promote() is None and ladder.paused_at("b") == 1


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="eta"):
        PromotionLadder(eta=1)
    with pytest.raises(ValueError, match="min_epochs"):
        PromotionLadder(min_epochs=0)
    ladder = PromotionLadder(min_epochs=1, eta=3)
    with pytest.raises(ValueError, match="epoch 2 is not a rung"):
        ladder.reached("a", 2, 0.5)
    ladder.reached("a", 1, 0.5)
    with pytest.raises(ValueError, match="already reached"):
        ladder.reached("a", 1, 0.6)
