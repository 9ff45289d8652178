"""Scheduler: exact slice-rate plans under deadlines. Pure numpy/scipy."""
