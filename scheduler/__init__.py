"""Scheduler: slice-rate plans under deadlines, and the executor that runs them. Pure numpy/scipy.

A task of ``N_mb`` mini-batches with deadline ``D`` is split among sub-models (slice rates) with accuracy
``p_i`` and mini-batch time ``t_i`` to maximise effective accuracy ``sum(n_i p_i) / N_mb`` subject to
``sum(n_i) <= N_mb`` and ``sum(n_i t_i) <= D`` (see DESIGN.md §4). The parts:

* ``scheduler.profile``, ``scheduler.plan`` — the data: measured sub-models, plans, the feasibility rule;
* ``scheduler.solvers`` — ``solve`` (time-budgeted on the request path: the best plan found, ``plan.exact``
  and its proven ``plan.gap``), the paper's branch-and-bound, the DP, HiGHS (offline), ``PlanCache``;
* ``scheduler.policies`` — ``SchedulerPolicy`` and the baselines, each declaring how its plans run;
* ``scheduler.batch_sizes`` — the mini-batch size as a decision per width: ``plan_batch_sizes`` over a
  ``BatchProfile`` of ``t_i(b)`` (one size: the exact method);
* ``scheduler.simulation`` — ``PlanExecutor`` (shared with the inference worker) and ``simulate``.

This module re-exports the public API flat.
"""

from scheduler.batch_sizes import BatchPlan, BatchProfile, fixed_size_plan, plan_batch_sizes, solve_granules
from scheduler.plan import FEAS_RTOL, Plan, build_plan, effective_accuracy, within_deadline
from scheduler.policies.arrival_rate import ArrivalRate
from scheduler.policies.base import BasePolicy, LateRule, Policy
from scheduler.policies.baselines import (
    ClipperPolicy,
    FixedWidthPolicy,
    ModelSwitchingPolicy,
    baseline_policies,
)
from scheduler.policies.priced import SchedulerPolicy
from scheduler.policies.time_noise import TimeNoise
from scheduler.profile import Profile, paper_xray_profile
from scheduler.simulation.executor import PlanExecutor, ShareOutcome, ShareRunner
from scheduler.simulation.simulator import Deal, SimResult, global_effective_accuracy, simulate
from scheduler.simulation.workload import (
    ARRIVALS,
    Task,
    constant_arrivals,
    make_workload,
    on_off_arrivals,
    poisson_arrivals,
)
from scheduler.solvers.bnb import solve_bnb
from scheduler.solvers.cache import (
    DEFAULT_MAX_LOSS,
    DEFAULT_QUANTUM,
    PlanCache,
    PlanTable,
    precompute_plans,
    quantise_down,
)
from scheduler.solvers.dp import solve_dp
from scheduler.solvers.exact import solve_fast
from scheduler.solvers.lp import box_lp, hull_lp
from scheduler.solvers.reference import milp_optimum, solve_milp
from scheduler.solvers.solve import DEFAULT_TIME_BUDGET, METHODS, decision_budget, solve
from scheduler.solvers.trivial import paper_fast_case

__all__ = [
    "ARRIVALS",
    "ArrivalRate",
    "BasePolicy",
    "BatchPlan",
    "BatchProfile",
    "DEFAULT_MAX_LOSS",
    "DEFAULT_QUANTUM",
    "DEFAULT_TIME_BUDGET",
    "Deal",
    "FEAS_RTOL",
    "METHODS",
    "ClipperPolicy",
    "FixedWidthPolicy",
    "LateRule",
    "ModelSwitchingPolicy",
    "Plan",
    "PlanCache",
    "PlanExecutor",
    "PlanTable",
    "Policy",
    "Profile",
    "SchedulerPolicy",
    "ShareOutcome",
    "ShareRunner",
    "SimResult",
    "Task",
    "TimeNoise",
    "baseline_policies",
    "box_lp",
    "build_plan",
    "constant_arrivals",
    "decision_budget",
    "effective_accuracy",
    "fixed_size_plan",
    "global_effective_accuracy",
    "hull_lp",
    "make_workload",
    "milp_optimum",
    "on_off_arrivals",
    "paper_fast_case",
    "paper_xray_profile",
    "plan_batch_sizes",
    "poisson_arrivals",
    "precompute_plans",
    "quantise_down",
    "simulate",
    "solve",
    "solve_bnb",
    "solve_dp",
    "solve_fast",
    "solve_granules",
    "solve_milp",
    "within_deadline",
]
