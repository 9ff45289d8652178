"""Solvers: the exact fast path (request path, time-budgeted), the paper's LP branch-and-bound, the knapsack
DP, the closed-form LPs they share, the HiGHS reference (offline), and the plan cache in front of them."""
