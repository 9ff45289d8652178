"""The pool allocator's policy (pure): its choice on scripted GP posteriors equals a hand computation, and the
fairness floor — a share of the pool's worker-seconds — holds against a user whose curve is far steeper than
everyone else's, without biting while nobody is starved."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from advisor.bidding import make_bid
from advisor.samplers import Sampler
from advisor.space import FloatDim, SearchSpace
from easel import allocation
from easel.allocation import (
    NO_GAIN_LEFT,
    TURN_SLACK,
    Allocator,
    Candidate,
    expected_gain,
    expected_improvement,
)
from easel.db.enums import TrialStatus
from easel.db.models import Trial

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class ScriptedPosterior(Sampler):
    """A GP's posterior at the next proposal, scripted (pure logic: the allocator only reads (mean, std))."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__(SearchSpace([FloatDim("x", 0.0, 1.0)]))
        self.belief = (mean, std)

    def ask(self) -> dict[str, Any]:
        return {"x": 0.5}

    def _tell(self, values: dict[str, Any], score: float) -> None:
        pass

    def posterior(self, values: dict[str, Any]) -> tuple[float, float] | None:
        return self.belief


def finished(score: float, seconds: float) -> Trial:
    return Trial(status=TrialStatus.COMPLETED, score=score, started_at=T0, stopped_at=T0 + timedelta(seconds=seconds))


def test_choice_on_scripted_posteriors_matches_a_hand_computation() -> None:
    # Hand computation, EI = (m - b) Phi(z) + s phi(z), z = (m - b) / s:
    #   A: m .80, s .05, best .82 -> z -0.4: -0.02 * 0.344578 + 0.05 * 0.368270 = 0.0115219; cost 5 s  -> 0.00230/s
    #   B: m .70, s .10, best .65 -> z  0.5:  0.05 * 0.691462 + 0.10 * 0.352065 = 0.0697796; cost 40 s -> 0.00174/s
    #   C: m .90, s .01, best .95 -> z -5.0:  ~5.3e-10;                                     cost 1 s  -> ~5e-10/s
    # B promises the most, but A promises the most per second: A is chosen.
    bids = {
        "A": make_bid([finished(0.82, 5), finished(0.60, 5)], ScriptedPosterior(0.80, 0.05), {"x": 0.1}, 3),
        "B": make_bid([finished(0.65, 30), finished(0.50, 50)], ScriptedPosterior(0.70, 0.10), {"x": 0.2}, 3),
        "C": make_bid([finished(0.95, 1), finished(0.94, 1)], ScriptedPosterior(0.90, 0.01), {"x": 0.3}, 3),
    }
    assert bids["A"].gain == pytest.approx(0.0115219, abs=1e-6)
    assert bids["B"].gain == pytest.approx(0.0697796, abs=1e-6)
    assert bids["C"].gain == pytest.approx(5.3e-10, rel=0.05)
    assert (bids["A"].cost_s, bids["B"].cost_s, bids["C"].cost_s) == (5.0, 40.0, 1.0)
    assert (bids["A"].best, bids["B"].best) == (0.82, 0.65)
    # Optimistic regret, UCB (m + 2s) - best: A .80 + .10 - .82 = .08; B .70 + .20 - .65 = .25; C .92 - .95 < 0 -> 0.
    assert (bids["A"].regret, bids["B"].regret, bids["C"].regret) == pytest.approx((0.08, 0.25, 0.0))
    assert (bids["A"].mean, bids["A"].std) == (0.80, 0.05), "the belief itself, for regret_rate"
    candidates = [Candidate(name, f"job-{name}", f"user-{name}", i, bid.gain, bid.cost_s, bid.regret)
                  for i, (name, bid) in enumerate(bids.items())]
    choice = Allocator("cost_aware").choose(candidates, now=0.0)
    assert choice is not None
    assert choice.candidate.sub_train_job_id == "A"
    assert choice.reason == "highest gain per second"
    assert choice.candidate.rate == pytest.approx(0.0115219 / 5, rel=1e-5)


def test_a_user_whose_gp_sees_no_gain_left_yields() -> None:
    # C's rate (EI .001 per 0.1 s = .01/s) beats D's (.002 per 1 s), but C's GP sees no regret left: D goes first.
    c = Candidate("C", "jC", "uC", 0.0, gain=0.001, cost_s=0.1, regret=NO_GAIN_LEFT / 2)
    d = Candidate("D", "jD", "uD", 1.0, gain=0.002, cost_s=1.0, regret=0.05)
    allocator = Allocator("cost_aware")
    assert allocator.choose([c, d], now=0.0).candidate is d  # type: ignore[union-attr]
    # With nobody else having gain left, it is served ("no gain left": the budget is the user's to spend).
    choice = allocator.choose([c], now=0.0)
    assert choice is not None and choice.candidate is c and choice.reason == "no gain left"
    # An advisor that publishes no regret counts as having gain left: E, ten times slower per second, beats C.
    e = Candidate("E", "jE", "uE", 2.0, gain=0.001, cost_s=1.0)
    assert Allocator("cost_aware").choose([c, e], now=0.0).candidate is e  # type: ignore[union-attr]


def test_empirical_gain_while_the_gp_has_no_model() -> None:
    class NoModel(ScriptedPosterior):
        def posterior(self, values: dict[str, Any]) -> tuple[float, float] | None:
            return None

    scores = [0.5, 0.7, 0.6]
    bid = make_bid([finished(s, 2) for s in scores], NoModel(0, 0), {"x": 0.4}, 1)
    # random proposals score like those seen: mean 0.6, sample std 0.1, best 0.7 -> z = -1
    assert bid.gain == pytest.approx(expected_improvement(0.6, 0.1, 0.7))
    assert bid.gain == pytest.approx(-0.1 * 0.158655 + 0.1 * 0.241971, abs=1e-6)
    assert (bid.mean, bid.std) == pytest.approx((0.6, 0.1))
    one = make_bid([finished(0.5, 2)], NoModel(0, 0), {"x": 0.4}, 1)
    assert one.gain is None and one.mean is None and one.best == 0.5, "one score: cold, no belief of its own"


def test_expected_gain_by_hand() -> None:
    # No ceiling, nothing in flight: the expected improvement.
    assert expected_gain(0.6, 0.1, 0.7) == pytest.approx(expected_improvement(0.6, 0.1, 0.7))
    # Capped at 1: EI over .953 minus EI over 1 for N(.95, .1): z -.03: -.003 * .48803 + .1 * .39876 = .038412;
    # z -.5: -.05 * .308538 + .1 * .352065 = .019780 -> .018632.
    assert expected_gain(0.95, 0.1, 0.953, ceiling=1.0) == pytest.approx(0.018632, abs=2e-6)
    # In flight, best far below: E[max of 2 standard normals] - E[one] = 1/sqrt(pi) = .564190; of 3 - of 2:
    # 3/(2 sqrt(pi)) - 1/sqrt(pi) = .282095; best at the mean: half of the first (F(1-F) is symmetric) = .028209 σ=.1.
    assert expected_gain(0.0, 1.0, -50.0, in_flight=1) == pytest.approx(0.564190, abs=1e-6)
    assert expected_gain(0.0, 1.0, -50.0, in_flight=2) == pytest.approx(0.282095, abs=1e-6)
    assert expected_gain(0.5, 0.1, 0.5, in_flight=1) == pytest.approx(0.028209, abs=1e-6)
    # No spread: the sure rise, and nothing more from a second trial of the same sure score.
    assert expected_gain(0.8, 0.0, 0.7) == pytest.approx(0.1)
    assert expected_gain(0.8, 0.0, 0.7, in_flight=1) == 0.0
    assert expected_gain(0.9, 0.1, 1.0, ceiling=1.0) == 0.0
    for bad in ({"std": -1.0}, {"mean": float("nan")}, {"in_flight": -1}, {"ceiling": float("nan")}):
        args = {"mean": 0.5, "std": 0.1, "best": 0.4, **bad}
        with pytest.raises(ValueError, match=next(iter(bad))):
            expected_gain(**args)


def test_regret_rate_choice_on_scripted_posteriors_matches_a_hand_computation() -> None:
    # A: N(.96, .05), best .96, .2 s: EI .05 * .398942 = .019947 -> .0997/s; capped at 1 (z -.8: -.04 * .211855
    #    + .05 * .289692 = .006010 above 1): .013937 -> .06968/s.
    # B: N(.70, .10), best .75, .25 s: EI (z -.5) .019780; above 1 (z -3) .0000382: .019741 -> .07897/s.
    # cost_aware ranks by EI per second (A); regret_rate by the rise accuracy can still make (B: A has .04 left).
    a = Candidate("A", "jA", "uA", 0.0, gain=expected_improvement(0.96, 0.05, 0.96), cost_s=0.2, regret=0.1,
                  mean=0.96, std=0.05, best=0.96, observed=3)
    b = Candidate("B", "jB", "uB", 1.0, gain=expected_improvement(0.70, 0.10, 0.75), cost_s=0.25, regret=0.15,
                  mean=0.70, std=0.10, best=0.75, observed=3)
    assert Allocator("cost_aware").choose([a, b], now=0.0).candidate is a  # type: ignore[union-attr]
    choice = Allocator("regret_rate").choose([a, b], now=0.0)
    assert choice is not None and choice.candidate is b and choice.reason == "highest regret reduction per second"
    assert choice.rate == pytest.approx(0.019741 / 0.25, rel=1e-4)
    # C has one result (.62, no spread of its own): the median spread of the others' beliefs (.05, .10 -> .10):
    # EI .0398942, above 1 (z -3.8) 1.7e-6: .039893 / .25 s = .15957/s — the first to serve.
    c = Candidate("C", "jC", "uC", 2.0, cost_s=0.25, best=0.62, observed=1)
    choice = Allocator("regret_rate").choose([a, b, c], now=0.0)
    assert choice is not None and choice.candidate is c and choice.rate == pytest.approx(0.15957, rel=1e-4)
    # A trial of C already running under the same belief: a second buys only .028209 * (.1/.1) -> .11284/s.
    choice = Allocator("regret_rate").choose([a, b, replace(c, running=1)], now=0.0)
    assert choice is not None and choice.rate == pytest.approx(0.028209 / 0.25, rel=1e-4)


def test_first_results_first_and_a_free_worker_waits_for_a_starting_user() -> None:
    allocator = Allocator("regret_rate", workers=2)
    early = Candidate("e", "je", "early", 0.0)
    starting = Candidate("l", "jl", "late", 1.0, ready=False)  # its job is live; its advisor has not bid yet
    choice = allocator.choose([early, starting], now=0.0)
    assert choice is not None and choice.candidate is early and choice.reason == "first result"
    # The second worker is held: a second concurrent trial of "early" buys less than "late"'s first result.
    assert allocator.choose([replace(early, running=1), starting], now=0.1) is None
    choice = allocator.choose([replace(early, running=1), replace(starting, ready=True)], now=0.2)
    assert choice is not None and choice.candidate.user_id == "late" and choice.reason == "first result"
    # A user alone gets the whole pool; cost_aware never holds.
    lone = Allocator("regret_rate", workers=2)
    assert lone.choose([early], now=0.0).candidate is early  # type: ignore[union-attr]
    assert lone.choose([replace(early, running=1)], now=0.0).candidate.user_id == "early"  # type: ignore[union-attr]
    assert Allocator("cost_aware").choose([early, starting], now=0.0).candidate is early  # type: ignore[union-attr]
    assert Allocator("cost_aware").choose([starting], now=0.0) is None, "a starting job is no candidate"
    # A user served before whose bid shows no result yet (its trial just ended) is no longer "fresh".
    again = allocator.choose([early, replace(starting, ready=True, running=1)], now=0.3)
    assert again is not None and again.reason != "first result"


def test_a_free_worker_is_held_only_for_a_starting_user_one_each() -> None:
    """The start hold holds one free worker per never-served user whose advisor is starting, no more: with two
    free workers and one such user, the second goes to the ready job; a user served before whose bid is missing
    (its advisor restarting) holds none."""
    allocator = Allocator("regret_rate", workers=2)
    early = Candidate("e", "je", "early", 0.0)
    late = Candidate("l", "jl", "late", 1.0, ready=False)
    assert allocator.choose([early], now=0.0).reason == "first result"  # type: ignore[union-attr]
    running = replace(early, running=1, observed=0)
    assert allocator.choose([running, late], now=0.1, held=0) is None
    choice = allocator.choose([running, late], now=0.1, held=1)
    assert choice is not None and choice.candidate.user_id == "early", "the second free worker works"
    assert Allocator("regret_rate").choose([running, late], now=0.1, held=2) is not None
    # "early" again not ready (its advisor restarting), "late" ready: early was served before, nothing is held.
    ready_late = replace(late, ready=True)
    assert allocator.choose([ready_late, replace(early, ready=False)], now=0.2).candidate is ready_late  # type: ignore[union-attr]
    assert allocator.choose([ready_late, replace(early, ready=False)], now=0.3) is not None


@pytest.mark.parametrize("policy", ["cost_aware", "regret_rate", "fifo", "round_robin"])
def test_a_free_worker_never_idles_while_a_ready_job_has_work(policy: str) -> None:
    """The module's invariant on scripted posteriors, over many random situations (pure, seeded): ``choose``
    returns None only when no job is ready, or — regret_rate's start hold — while fewer workers are held than there
    are never-served users starting. The situations include those that drive a job's score to ~0: a lone user's
    trials in flight under a near-certain belief (batch EI), a user at a perfect score, users with no belief."""
    rng = random.Random(21)
    allocator = Allocator(policy, workers=3)
    now, idled, held_for_starting = 0.0, 0, 0
    for step in range(400):
        candidates = []
        for i in range(rng.randint(1, 4)):
            user, ready = f"u{rng.randrange(5)}", rng.random() > 0.25
            shape = rng.randrange(4)
            if shape == 0:  # no result yet, no belief
                candidates.append(Candidate(f"s{step}-{i}", f"j{i}", user, float(i), ready=ready,
                                            running=rng.randrange(3)))
                continue
            best = 1.0 if shape == 1 else rng.uniform(0.3, 0.99)
            std = 1e-9 if shape == 2 else rng.uniform(0.001, 0.2)
            mean = min(1.0, best + rng.uniform(-0.1, 0.01))
            candidates.append(Candidate(
                f"s{step}-{i}", f"j{i}", user, float(i), gain=expected_improvement(mean, std, best),
                cost_s=rng.uniform(0.1, 3.0), regret=rng.uniform(0.0, 0.1), mean=mean, std=std, best=best,
                observed=rng.randint(1, 8), running=rng.randrange(4), ready=ready))
        held = rng.randrange(3)
        ready_users = {c.user_id for c in candidates if c.ready}
        starting = {c.user_id for c in candidates if not c.ready} - ready_users
        never_served = {user for user in starting if allocator.by_user[user] == 0}
        choice = allocator.choose(candidates, now=now, held=held)
        if choice is None:
            assert not ready_users or (policy == "regret_rate" and held < len(never_served)), (step, candidates)
            idled += 1
            held_for_starting += bool(ready_users)
        else:
            assert choice.candidate.ready
        now += rng.uniform(0.0, 1.0)
    assert idled > 0, "the situations include some with nothing ready"
    assert (held_for_starting > 0) == (policy == "regret_rate"), "and some the start hold applies to"


def test_no_user_falls_behind_its_round_robin_turn_by_more_than_the_slack() -> None:
    """regret_rate's turn guard on scripted posteriors: user "near" is at .97 of a perfect 1 (its rise per second
    is tiny), three others are far from it and steep; every trial costs 1 s, on 2 workers. Ranked by rate alone,
    "near" would wait for the floor (a trial every 4 s); the guard gives it each turn round-robin would have given
    it, on the same free workers, no later than ``TURN_SLACK`` trial-lengths after (plus the wait for the next
    worker to come free), and the steep users still go first whenever nobody is behind."""
    costs = {"near": 1.0, **{f"steep{i}": 1.0 for i in range(3)}}

    def candidates(now: float, served: dict[str, int]) -> list[Candidate]:
        near = Candidate("n", "jn", "near", 0.0, cost_s=1.0, mean=0.96, std=0.01, best=0.97, observed=3)
        return [near, *(Candidate(f"s{i}", f"js{i}", f"steep{i}", 1.0 + i, cost_s=1.0, mean=0.6, std=0.2,
                                  best=0.5, observed=3) for i in range(3))]

    guarded, _ = simulate(Allocator("regret_rate", workers=2), candidates, costs, 60.0)
    turns, _ = simulate(Allocator("round_robin", workers=2), candidates, costs, 60.0)
    near, due = [start for start, _ in guarded["near"]], [start for start, _ in turns["near"]]
    assert len(near) >= len(due) - 1
    assert all(start <= turn + TURN_SLACK * 1.0 + 1.0 for start, turn in zip(near, due, strict=False)), (near, due)
    first = Allocator("regret_rate", workers=2).choose(candidates(0.0, {}), now=0.0)
    assert first is not None and first.candidate.user_id != "near", "nobody is behind at the start: rates rank"
    unguarded, _ = replace_slack(math.inf, lambda: simulate(Allocator("regret_rate", workers=2), candidates, costs,
                                                            60.0))
    assert len(unguarded["near"]) < len(near) - 5, "without the guard the near user waits for the floor"


def replace_slack(slack: float, run: Callable[[], Any]) -> Any:
    """``run`` with the turn guard's slack set to ``slack`` (inf: no guard)."""
    saved = allocation.TURN_SLACK
    allocation.TURN_SLACK = slack
    try:
        return run()
    finally:
        allocation.TURN_SLACK = saved


def test_cold_users_first_then_policies_differ() -> None:
    warm = Candidate("w", "jw", "u1", 0.0, gain=0.5, cost_s=1.0)
    cold = Candidate("c", "jc", "u2", 1.0)
    assert Allocator("cost_aware").choose([warm, cold]).reason == "cold start"  # type: ignore[union-attr]
    # Cold start is per user: u1's new job does not jump ahead of u3, whose rate beats u1's ...
    new_job = Candidate("n", "jn", "u1", 3.0)
    steeper = Candidate("s", "js", "u3", 2.0, gain=1.0, cost_s=1.0)
    allocator = Allocator("cost_aware")
    assert allocator.choose([warm, new_job, steeper], now=0.0).candidate is steeper  # type: ignore[union-attr]
    # ... and once u1 wins, its cold job is served before its warm one (it needs results to bid).
    choice = allocator.choose([warm, new_job], now=0.0)
    assert choice is not None and choice.candidate is new_job and choice.reason == "highest gain per second"
    assert Allocator("fifo").choose([cold, warm]).candidate is warm  # type: ignore[union-attr]
    rr = Allocator("round_robin")
    picks = [rr.choose([warm, cold]).candidate.user_id for _ in range(4)]  # type: ignore[union-attr]
    assert picks == ["u1", "u2", "u1", "u2"]
    with pytest.raises(ValueError, match="policy"):
        Allocator("lottery")



def test_cold_start_serves_the_user_with_fewest_assignments_first() -> None:
    """Advisors come up a moment apart: the first to bid gets the free workers, but once the others bid, each of
    them gets its first trial — and its second — before the first user gets a third (though it has waited as long)."""
    allocator = Allocator("cost_aware", workers=2)
    early = Candidate("e", "je", "early", 0.0)
    assert [allocator.choose([early], now=t).candidate.user_id for t in (0.0, 0.1)] == ["early", "early"]  # type: ignore[union-attr]
    late = [Candidate(f"l{i}", f"jl{i}", f"late{i}", 1.0 + i) for i in range(2)]
    picks = [allocator.choose([early, *late], now=1.0 + i).candidate.user_id for i in range(3)]  # type: ignore[union-attr]
    assert picks == ["late0", "late1", "late0"], "the early user, two ahead, waits until the others catch up"
    assert Allocator("round_robin").choose([early, *late]).candidate.user_id == "early"  # type: ignore[union-attr]


def simulate(allocator: Allocator, candidates: Callable[[float, dict[str, int]], list[Candidate]], costs: dict[str, float],
             until_s: float) -> tuple[dict[str, list[tuple[float, float]]], list[dict[str, float]]]:
    """Run the allocator on a pool of ``allocator.workers`` in virtual time: each free worker takes a choice among
    ``candidates(now, served)`` and holds it for its user's trial cost. Returns each user's (start, end) holds and
    the floor's claims after each choice."""
    free = [0.0] * allocator.workers
    holds: dict[str, list[tuple[float, float]]] = {user: [] for user in costs}
    served = dict.fromkeys(costs, 0)
    claims = []
    while True:
        now = heapq.heappop(free)
        if now >= until_s:
            return holds, claims
        choice = allocator.choose(candidates(now, served), now=now)
        if choice is None:
            heapq.heappush(free, now + 0.5)
            continue
        user = choice.candidate.user_id
        served[user] += 1
        holds[user].append((now, now + costs[user]))
        heapq.heappush(free, now + costs[user])
        claims.append(dict(allocator.owed_s))


def held_s(holds: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in holds)


@pytest.mark.parametrize("policy", ["cost_aware", "regret_rate"])
@pytest.mark.parametrize("users", [2, 4, 6])
def test_fairness_floor_holds_against_a_steep_curve(users: int, policy: str) -> None:
    """User 0 promises 10⁶ times more per second than anyone, forever, with short trials; the others' trials are
    long and of different lengths. The floor still gives every other user at least 1/(2U) of the pool's
    worker-seconds in any window (up to a stated slack), and the steep user still gets more than any other."""
    workers = 2
    allocator = Allocator(policy, workers=workers)
    costs = {"u0": 0.25, **{f"u{i}": 1.0 + 0.5 * i for i in range(1, users)}}
    # (regret_rate reads the beliefs: the steep user's N(.9, .1) over a best of .5, the others' N(.5, .001) under .9)
    pool = [Candidate("steep", "j0", "u0", 0.0, gain=0.5, cost_s=costs["u0"], regret=0.5, mean=0.9, std=0.1,
                      best=0.5, observed=5)]
    pool += [Candidate(f"flat{i}", f"j{i}", f"u{i}", float(i), gain=1e-6, cost_s=costs[f"u{i}"], regret=0.01,
                       mean=0.5, std=0.001, best=0.9, observed=5) for i in range(1, users)]
    until = 600.0
    holds, _claims = simulate(allocator, lambda now, served: pool, costs, until)
    longest = max(costs.values())
    window = 20 * longest
    for user in costs:
        # the slack: a trial of its own charged ahead of its claim, and one straddling the window's edge (seen: at
        # most one trial short in any window, for every U here)
        slack = 2 * costs[user]
        for start in range(0, int(until - window), 5):
            got = held_s(holds[user], start, start + window)
            assert got >= workers * window / (2 * users) - slack, (user, start, got)
    if policy == "cost_aware":
        steep = held_s(holds["u0"], 0, until)
        assert all(steep > 1.5 * held_s(holds[f"u{i}"], 0, until) for i in range(1, users)), "a floor, not a turn"
        assert allocator.floors["u0"] == 0 and all(allocator.floors[f"u{i}"] > 0 for i in range(1, users))
    else:  # regret_rate's turn guard serves the flat users at their round-robin turns before the floor must
        assert all(allocator.floors[f"u{i}"] == 0 for i in range(1, users))
        assert all(len(holds["u0"]) > 2 * len(holds[f"u{i}"]) for i in range(1, users)), "a ranking, not only turns"


def test_floor_does_not_bite_while_nobody_is_starved() -> None:
    """Four users whose gain halves with each trial they get: the gain ranking alone takes turns among them, so
    the floor never has to force an assignment."""
    allocator = Allocator("cost_aware", workers=2)
    costs = {f"u{i}": 1.0 + 0.25 * i for i in range(4)}

    def candidates(now: float, served: dict[str, int]) -> list[Candidate]:
        return [Candidate(f"s{i}", f"j{i}", f"u{i}", float(i), gain=0.1 * (1 + i / 10) / 2 ** served[f"u{i}"],
                          cost_s=costs[f"u{i}"], regret=0.1) for i in range(4)]

    holds, _claims = simulate(allocator, candidates, costs, 60.0)
    assert sum(allocator.floors.values()) == 0
    assert all(len(holds[user]) >= 5 for user in costs)


def test_floor_with_users_joining_and_leaving() -> None:
    """Users come and go; a waiting user's claim never grows beyond a trial of its own plus one worker's wait for
    the longest trial (it is served before that), and a user that leaves holds no claim."""
    workers = 2
    allocator = Allocator("cost_aware", workers=workers)
    costs = {"steep": 0.2, **{f"o{i}": 1.0 * i for i in range(1, 5)}}

    def candidates(now: float, served: dict[str, int]) -> list[Candidate]:
        present = [Candidate("s", "js", "steep", 0.0, gain=1.0, cost_s=costs["steep"], regret=1.0)]
        present += [Candidate(f"o{i}", f"jo{i}", f"o{i}", float(i), gain=1e-3, cost_s=costs[f"o{i}"], regret=0.1)
                    for i in range(1, 5) if int(now // (15 + 7 * i)) % 2 == 0]
        return present

    _holds, claims = simulate(allocator, candidates, costs, 800.0)
    longest = max(costs.values())
    for claim in claims:
        for user, owed in claim.items():
            assert -costs[user] - 1e-9 <= owed <= costs[user] + longest * workers, (user, owed)
    assert all(allocator.floors[f"o{i}"] > 0 for i in range(1, 5))
    gone = allocator.choose([Candidate("s", "js", "steep", 0.0, gain=1.0, cost_s=0.2)], now=900.0)
    assert gone is not None and set(allocator.owed_s) == {"steep"}


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="workers"):
        Allocator("cost_aware", workers=0)
    allocator = Allocator("cost_aware")
    allocator.choose([Candidate("a", "ja", "ua", 0.0)], now=10.0)
    with pytest.raises(ValueError, match="now"):
        allocator.choose([Candidate("a", "ja", "ua", 0.0)], now=5.0)
