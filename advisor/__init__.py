"""Advisor: Bayesian optimisation service (filled in by the training issue)."""
