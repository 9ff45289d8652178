"""Promoting ASHA's ladder on scripted histories: promotions exactly as the rungs say, worked out by hand."""

from __future__ import annotations

import pytest

from advisor.promotions import BracketedLadder, Promotion, PromotionLadder, hyperband_shares, make_ladder


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


def test_hyperband_shares_give_the_aggressive_brackets_more_configurations() -> None:
    # Li et al. 2018, Algorithm 1: bracket s (s halvings) gets ⌈(s_max + 1) / (s + 1) · ηˢ⌉ configurations.
    assert hyperband_shares(3, 3) == [9, 5, 3]  # min epochs 1, 3, 9 (9 epochs: the last bracket never prunes)
    assert hyperband_shares(4, 3) == [27, 12, 6, 4]  # min epochs 1, 3, 9, 27
    assert hyperband_shares(1, 3) == [1]


def test_trials_are_dealt_to_brackets_by_smooth_weighted_round_robin() -> None:
    ladder = BracketedLadder(min_epochs=1, eta=3, brackets=3)
    # weights 9, 5, 3 (17 in all): worked out by hand for the first 8, then every round holds the shares
    dealt = [ladder.bracket_for(no) for no in range(1, 18)]
    assert dealt[:8] == [0, 1, 0, 2, 0, 1, 0, 2]
    assert [dealt.count(j) for j in range(3)] == [9, 5, 3]
    assert [ladder.bracket_for(no) for no in range(18, 35)] == dealt, "the next round deals the same way"
    assert [ladder.admit(f"t{no}", no) for no in range(1, 5)] == [1, 3, 1, 9]  # each bracket's first rung
    assert ladder.next_rung("t2", 3) == 9 and ladder.next_rung("t1", 1) == 3
    assert ladder.admit("t1", 99) == 1, "a trial keeps the bracket it was admitted to"


def test_brackets_promote_the_furthest_rung_first_and_ties_to_the_aggressive_bracket() -> None:
    ladder = BracketedLadder(min_epochs=1, eta=2, brackets=2)  # shares 2, 2: trials alternate brackets 0, 1
    for no, trial in enumerate("abcdefgh", start=1):
        ladder.admit(trial, no)
    assert [ladder.bracket_of(t) for t in "abcd"] == [0, 1, 0, 1]
    # bracket 0: rungs at epochs 1, 2, 4; bracket 1: rungs at epochs 2, 4
    ladder.reached("a", 1, 0.5)
    ladder.reached("b", 2, 0.4)
    assert ladder.candidate() is None  # one trial at each rung: ⌊1/2⌋ = 0
    ladder.reached("c", 1, 0.6)  # bracket 0, rung 1: c is the best half
    ladder.reached("d", 2, 0.7)  # bracket 1, rung 2: d is the best half
    assert ladder.promote() == Promotion("d", 2, 4)  # from epoch 2 before from epoch 1
    assert ladder.promote() == Promotion("c", 1, 2)
    assert ladder.promote() is None
    ladder.reached("c", 2, 0.8)
    ladder.reached("e", 1, 0.9)  # bracket 0, rung 1: a, c, e → the best 1 (e) has not gone on
    ladder.reached("f", 2, 0.1)  # bracket 1, rung 2: b, d, f → the best 1 (d) went on already
    assert ladder.promote() == Promotion("e", 1, 2)
    ladder.reached("e", 2, 0.95)  # bracket 0, rung 2: c, e → e
    ladder.reached("h", 2, 0.99)  # bracket 1, rung 2: b, d, f, h → the best 2 = h, d → h
    assert ladder.promote() == Promotion("e", 2, 4), "a tie in epochs goes to the more aggressive bracket"
    assert ladder.promote() == Promotion("h", 2, 4)
    assert ladder.promote() is None
    assert {t: ladder.paused_at(t) for t in "abcf"} == {"a": 1, "b": 2, "c": 2, "f": 2}
    assert ladder.paused_at("g") is None  # admitted, never reached a rung


def test_one_bracket_is_the_plain_ladder_and_bad_brackets_name_the_argument() -> None:
    assert make_ladder(1, 3, 1) == PromotionLadder(1, 3)
    assert isinstance(make_ladder(1, 3, 3), BracketedLadder)
    with pytest.raises(ValueError, match="brackets"):
        make_ladder(1, 3, 0)
    with pytest.raises(ValueError, match="eta"):
        BracketedLadder(1, 1, 2)
    with pytest.raises(ValueError, match="was not admitted"):
        BracketedLadder(1, 3, 2).reached("stranger", 1, 0.5)
    with pytest.raises(ValueError, match="brackets: 10 brackets at eta 100 deal rounds of"):
        BracketedLadder(1, 100, 10)
    with pytest.raises(ValueError, match="no must be >= 1"):
        BracketedLadder(1, 3, 2).bracket_for(0)
