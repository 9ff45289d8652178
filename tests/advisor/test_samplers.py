"""Pure-logic tests of the advisor's ask/tell backends (no services involved)."""

from __future__ import annotations

import math

import pytest

from advisor.samplers import GPSampler, RandomSampler, make_sampler
from advisor.space import CategoricalDim, FloatDim, IntDim, SearchSpace

SPACE = SearchSpace(
    (FloatDim("lr", 1e-4, 1.0, log=True), IntDim("width", 16, 256), CategoricalDim("opt", ("sgd", "adam"))),
    fixed=(("epochs", 3),),
)


def objective(values: dict) -> float:
    """A smooth problem with its optimum at lr=1e-2, width=128, opt=adam."""
    return (1 - abs(math.log10(values["lr"]) + 2) / 4 - abs(values["width"] - 128) / 256
            + (0.1 if values["opt"] == "adam" else 0.0))


@pytest.mark.parametrize("name", ["gp", "random"])
def test_asks_stay_inside_the_space(name: str) -> None:
    sampler = make_sampler(name, SPACE, seed=1)
    for _ in range(12):
        values = sampler.ask()
        SPACE.validate(values)
        assert isinstance(values["width"], int)
        sampler.tell(values, objective(values))
    assert sampler.told == 12
    assert SPACE.complete(values)["epochs"] == 3


def test_gp_beats_random_on_a_smooth_problem() -> None:
    def best_of(sampler, trials: int) -> float:
        best = -math.inf
        for _ in range(trials):
            values = sampler.ask()
            score = objective(values)
            sampler.tell(values, score)
            best = max(best, score)
        return best

    gp = [best_of(GPSampler(SPACE, seed=s, n_points=500), 20) for s in range(3)]
    rnd = [best_of(RandomSampler(SPACE, seed=s), 20) for s in range(3)]
    assert sorted(gp)[1] > sorted(rnd)[1], f"median best: gp {gp} vs random {rnd}"


def test_failed_trials_are_counted_but_not_learned() -> None:
    sampler = GPSampler(SPACE, seed=0)
    values = sampler.ask()
    sampler.tell(values, None)
    assert sampler.told == 1
    with pytest.raises(ValueError, match="finite"):
        sampler.tell(values, float("nan"))


def test_bad_spaces_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="log-scaled range must be positive"):
        FloatDim("lr", 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="low 5 > high 1"):
        IntDim("n", 5, 1)
    with pytest.raises(ValueError, match="appear twice"):
        SearchSpace((IntDim("n", 1, 2),), fixed=(("n", 1),))
    with pytest.raises(ValueError, match="nothing to tune"):
        RandomSampler(SearchSpace(()))
    with pytest.raises(ValueError, match="outside its range"):
        SPACE.validate({"lr": 5.0, "width": 32, "opt": "sgd"})
    with pytest.raises(ValueError, match="unknown advisor backend"):
        make_sampler("tpe", SPACE)


def test_points_asked_together_differ_past_the_random_start() -> None:
    """Two workers ask before either trial is told: skopt alone would hand both the same point (its next point
    changes only on a tell); the constant lie for the point still out makes the second ask another one."""
    sampler = GPSampler(SPACE, seed=0, n_initial_points=3)
    for _ in range(4):
        values = sampler.ask()
        sampler.tell(values, objective(values))
    first, second = sampler.ask(), sampler.ask()
    assert first != second
    sampler.tell(first, objective(first))
    sampler.tell(second, None)  # a failed trial is no longer out either
    assert sampler._pending == []
    SPACE.validate(sampler.ask())
