"""The pool allocator's policy (pure): its choice on scripted GP posteriors equals a hand computation, and the
fairness floor holds against a user whose curve is far steeper than everyone else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from advisor.bidding import make_bid
from advisor.samplers import Sampler
from advisor.space import FloatDim, SearchSpace
from easel.allocation import Allocator, Candidate, expected_improvement
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
    candidates = [Candidate(name, f"job-{name}", f"user-{name}", i, bid.gain, bid.cost_s)
                  for i, (name, bid) in enumerate(bids.items())]
    choice = Allocator("cost_aware").choose(candidates)
    assert choice is not None
    assert choice.candidate.sub_train_job_id == "A"
    assert choice.reason == "highest gain per second"
    assert choice.candidate.rate == pytest.approx(0.0115219 / 5, rel=1e-5)


def test_empirical_gain_while_the_gp_has_no_model() -> None:
    class NoModel(ScriptedPosterior):
        def posterior(self, values: dict[str, Any]) -> tuple[float, float] | None:
            return None

    scores = [0.5, 0.7, 0.6]
    bid = make_bid([finished(s, 2) for s in scores], NoModel(0, 0), {"x": 0.4}, 1)
    # random proposals score like those seen: mean 0.6, sample std 0.1, best 0.7 -> z = -1
    assert bid.gain == pytest.approx(expected_improvement(0.6, 0.1, 0.7))
    assert bid.gain == pytest.approx(-0.1 * 0.158655 + 0.1 * 0.241971, abs=1e-6)
    assert make_bid([finished(0.5, 2)], NoModel(0, 0), {"x": 0.4}, 1).gain is None, "one score: cold"


def test_cold_jobs_first_then_policies_differ() -> None:
    warm = Candidate("w", "jw", "u1", 0.0, gain=0.5, cost_s=1.0)
    cold = Candidate("c", "jc", "u2", 1.0)
    assert Allocator("cost_aware").choose([warm, cold]).reason == "cold start"  # type: ignore[union-attr]
    assert Allocator("fifo").choose([cold, warm]).candidate is warm  # type: ignore[union-attr]
    rr = Allocator("round_robin")
    picks = [rr.choose([warm, cold]).candidate.user_id for _ in range(4)]  # type: ignore[union-attr]
    assert picks == ["u1", "u2", "u1", "u2"]
    with pytest.raises(ValueError, match="policy"):
        Allocator("lottery")


@pytest.mark.parametrize("users", [2, 4, 6])
def test_fairness_floor_holds_against_a_steep_curve(users: int) -> None:
    """User 0 promises 10⁶ times more per second than anyone, forever; the floor still serves every other user at
    least once in any 2U consecutive assignments, and the steep user still gets more than any other."""
    allocator = Allocator("cost_aware")
    candidates = [Candidate("steep", "j0", "u0", 0.0, gain=0.5, cost_s=0.1)]
    candidates += [Candidate(f"flat{i}", f"j{i}", f"u{i}", float(i), gain=1e-6, cost_s=10.0) for i in range(1, users)]
    picks = [allocator.choose(candidates).candidate.user_id for _ in range(300)]  # type: ignore[union-attr]
    window = 2 * users
    for start in range(len(picks) - window + 1):
        assert set(picks[start:start + window]) == {f"u{i}" for i in range(users)}, f"window at {start}"
    assert all(picks.count("u0") > 1.5 * picks.count(f"u{i}") for i in range(1, users)), "a floor, not a turn"
    assert allocator.floors["u0"] == 0 and all(allocator.floors[f"u{i}"] > 0 for i in range(1, users))


def test_floor_with_users_joining_and_leaving() -> None:
    allocator = Allocator("cost_aware")
    steep = Candidate("s", "js", "steep", 0.0, gain=1.0, cost_s=0.1)
    others = [Candidate(f"o{i}", f"jo{i}", f"o{i}", float(i), gain=1e-3, cost_s=1.0) for i in range(1, 5)]
    waits: dict[str, int] = {}
    for step in range(400):
        present = [steep, *[c for i, c in enumerate(others) if (step // (37 + 11 * i)) % 2 == 0]]
        users = {c.user_id for c in present}
        waits = {u: waits.get(u, 0) for u in users}
        chosen = allocator.choose(present).candidate.user_id  # type: ignore[union-attr]
        for user in users:
            waits[user] = 0 if user == chosen else waits[user] + 1
            assert waits[user] <= 2 * len(users) - 1
