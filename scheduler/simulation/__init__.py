"""Simulation: the plan executor the inference worker runs (``executor``), the simulator that runs it on a
simulated clock (``simulator``), and the workloads it is fed (``workload``)."""
