"""The job life cycle, the one owner of it: budgets, profiles, deployments and every status transition.

* :mod:`easel.jobs.states` — the allowed transitions of each status column, as data;
* :mod:`easel.jobs.lifecycle` — each transition as a named function (the only writers of a status, of a rolling
  update's status and of a model version's stage, whose history it appends to);
* :mod:`easel.jobs.budget` — ``TrainBudget`` / ``InferenceBudget``, parsed once with one set of defaults;
* :mod:`easel.jobs.profile` — ``Profile``, from the trial row to what serving plans with;
* :mod:`easel.jobs.deployment` — ``Deployment``, what an inference job's predictor and workers load.
"""

from easel.jobs.budget import InferenceBudget, InferenceJobBudget, TrainBudget
from easel.jobs.deployment import Deployment, load_deployment
from easel.jobs.profile import PROFILE_BATCH_SIZE, Profile
from easel.jobs.states import IllegalTransition, StatusMachine

__all__ = [
    "PROFILE_BATCH_SIZE", "Deployment", "IllegalTransition", "InferenceBudget", "InferenceJobBudget", "Profile",
    "StatusMachine", "TrainBudget", "load_deployment",
]
