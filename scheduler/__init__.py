"""Scheduler: exact slice-rate plans under deadlines. Pure numpy/scipy.

A task of ``N_mb`` mini-batches with deadline ``D`` is split among sub-models (slice rates) with accuracy
``p_i`` and mini-batch time ``t_i`` to maximise effective accuracy ``sum(n_i p_i) / N_mb`` subject to
``sum(n_i) <= N_mb`` and ``sum(n_i t_i) <= D`` (see DESIGN.md §4). ``solve`` returns the true integer
optimum; ``PlanCache``/``precompute_plans`` serve repeated requests; the policies and ``simulate`` measure
it against the baselines.
"""

from scheduler.arrival_rate import ArrivalRate
from scheduler.bnb import solve_bnb
from scheduler.cache import DEFAULT_QUANTUM, PlanCache, PlanTable, precompute_plans, quantise_down
from scheduler.dp import solve_dp
from scheduler.exact import solve_fast
from scheduler.lp import box_lp, hull_lp
from scheduler.multiworker import global_effective_accuracy, split_instances
from scheduler.plan import FEAS_RTOL, Plan, build_plan, effective_accuracy, within_deadline
from scheduler.policies import (
    BasePolicy,
    ClipperPolicy,
    FixedWidthPolicy,
    ModelSwitchingPolicy,
    Policy,
    baseline_policies,
)
from scheduler.profile import Profile, paper_xray_profile
from scheduler.reference import milp_optimum, solve_milp
from scheduler.sched_policy import SchedulerPolicy
from scheduler.simulator import SimResult, simulate
from scheduler.solve import METHODS, solve
from scheduler.trivial import paper_fast_case
from scheduler.workload import (
    ARRIVALS,
    Task,
    constant_arrivals,
    make_workload,
    on_off_arrivals,
    poisson_arrivals,
)

__all__ = [
    "ARRIVALS",
    "ArrivalRate",
    "BasePolicy",
    "DEFAULT_QUANTUM",
    "FEAS_RTOL",
    "METHODS",
    "ClipperPolicy",
    "FixedWidthPolicy",
    "ModelSwitchingPolicy",
    "Plan",
    "PlanCache",
    "PlanTable",
    "Policy",
    "Profile",
    "SchedulerPolicy",
    "SimResult",
    "Task",
    "baseline_policies",
    "box_lp",
    "build_plan",
    "constant_arrivals",
    "effective_accuracy",
    "global_effective_accuracy",
    "hull_lp",
    "make_workload",
    "milp_optimum",
    "on_off_arrivals",
    "paper_fast_case",
    "paper_xray_profile",
    "poisson_arrivals",
    "precompute_plans",
    "quantise_down",
    "simulate",
    "solve",
    "solve_bnb",
    "solve_dp",
    "solve_fast",
    "solve_milp",
    "split_instances",
    "within_deadline",
]
