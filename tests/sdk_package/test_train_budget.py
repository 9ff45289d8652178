"""The SDK's train budget: the pruner (median/ASHA/none with ASHA's parameters) and MOP fields, checked before a
request is sent, and the ``easel train`` flags that fill them (no server: the verb's budget is read back)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sdk import TrainBudget
from sdk.cli import CliError, build_parser


def test_pruner_and_mop_fields_become_the_api_keys() -> None:
    assert TrainBudget().to_dict() == {"MODEL_TRIAL_COUNT": 5, "TIME_HOURS": 1.0, "GPU_COUNT": 0, "WORKERS": 1,
                                       "EARLY_STOP": True, "PRUNER": "median", "MOP": False}
    asha = TrainBudget(pruner="asha", asha_min_epochs=2, asha_reduction_factor=4, mop=True).to_dict()
    assert {k: asha[k] for k in ("PRUNER", "ASHA_MIN_EPOCHS", "ASHA_REDUCTION_FACTOR", "MOP")} == {
        "PRUNER": "asha", "ASHA_MIN_EPOCHS": 2, "ASHA_REDUCTION_FACTOR": 4, "MOP": True}
    promoting = TrainBudget(pruner="asha_promote", asha_reduction_factor=2).to_dict()
    assert (promoting["PRUNER"], promoting["ASHA_REDUCTION_FACTOR"]) == ("asha_promote", 2)
    assert "ASHA_BRACKETS" not in promoting
    assert TrainBudget(pruner="asha_promote", asha_brackets=3).to_dict()["ASHA_BRACKETS"] == 3


@pytest.mark.parametrize(("fields", "message"), [
    ({"pruner": "hyperband"}, "pruner must be one of median, asha, asha_promote, none; got 'hyperband'"),
    ({"pruner": "median", "asha_min_epochs": 2},
     "asha_min_epochs applies to pruner 'asha' or 'asha_promote' only, not 'median'"),
    ({"asha_reduction_factor": 3}, "asha_reduction_factor applies to pruner 'asha' or 'asha_promote' only"),
    ({"pruner": "asha", "asha_min_epochs": 0}, "asha_min_epochs must be an integer >= 1; got 0"),
    ({"pruner": "asha", "asha_reduction_factor": 1}, "asha_reduction_factor must be an integer >= 2; got 1"),
    ({"pruner": "asha", "asha_reduction_factor": 2.5}, "asha_reduction_factor must be an integer >= 2; got 2.5"),
    ({"pruner": "asha", "asha_brackets": 3}, "asha_brackets applies to pruner 'asha_promote' only, not 'asha'"),
    ({"pruner": "asha_promote", "asha_brackets": 0}, "asha_brackets must be an integer >= 1; got 0"),
    ({"mop": "yes"}, "mop must be True or False; got 'yes'"),
    ({"pruner": "asha_promote", "mop": True}, "pruner 'asha_promote' does not combine with mop"),
])
def test_bad_fields_are_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        TrainBudget(**fields)


class RecordingClient:
    """Stands in for :class:`sdk.Client` in the verb (pure flag → budget mapping): records the budget sent."""

    def __init__(self) -> None:
        self.budgets: list[TrainBudget] = []

    def create_train_job(self, *args: Any, budget: TrainBudget, **kwargs: Any) -> Any:  # noqa: ARG002
        self.budgets.append(budget)
        raise KeyboardInterrupt  # stop the verb before it prints a job


def _train(*flags: str) -> RecordingClient:
    args = build_parser(plugins=[]).parse_args(["train", "--app", "a", "--train", "t", "--val", "v", "--model", "m",
                                                *flags])
    client = RecordingClient()
    with pytest.raises(KeyboardInterrupt):
        args.verb.run(client, args)
    return client


def test_easel_train_flags_fill_the_budget() -> None:
    (budget,) = _train("--pruner", "asha", "--asha-min-epochs", "3", "--asha-eta", "2", "--mop").budgets
    assert (budget.pruner, budget.asha_min_epochs, budget.asha_reduction_factor, budget.mop) == ("asha", 3, 2, True)
    (budget,) = _train("--pruner", "asha_promote", "--asha-brackets", "3").budgets
    assert (budget.pruner, budget.asha_brackets) == ("asha_promote", 3)
    (budget,) = _train().budgets
    assert (budget.pruner, budget.asha_min_epochs, budget.mop) == ("median", None, False)


def test_easel_train_refuses_asha_flags_without_asha(capsys) -> None:  # noqa: ANN001
    with pytest.raises(CliError, match="asha_min_epochs applies to pruner 'asha' or 'asha_promote' only") as refused:
        _train("--asha-min-epochs", "3")
    assert refused.value.exit_code == 2
    with pytest.raises(SystemExit):
        _train("--pruner", "hyperband")
    assert "invalid choice: 'hyperband'" in capsys.readouterr().err
