"""Multiple inference workers (SINGA-Easy §3.2): split a task across b workers' queues, plan each locally."""

from __future__ import annotations

import math
from collections.abc import Sequence


def split_instances(n_instances: int, n_workers: int, batch_size: int, offset: int = 0) -> list[int]:
    """Instances per worker: whole mini-batches, as even as possible, the partial mini-batch last.

    Mini-batches are dealt round-robin starting at worker ``offset % n_workers`` (rotate it per task so
    the workers that get one extra mini-batch change from task to task).
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_instances < 0:
        raise ValueError(f"n_instances must be >= 0, got {n_instances}")
    n_mb = math.ceil(n_instances / batch_size)
    base, extra = divmod(n_mb, n_workers)
    mbs = [0] * n_workers
    for j in range(n_workers):
        mbs[(offset + j) % n_workers] = base + (1 if j < extra else 0)
    sizes = [mb * batch_size for mb in mbs]
    short = n_mb * batch_size - n_instances  # the last mini-batch is short by this much
    if short:
        # The worker that received the last dealt mini-batch holds the partial one.
        last = (offset + (extra - 1 if extra else n_workers - 1)) % n_workers
        sizes[last] -= short
    return sizes


def global_effective_accuracy(worker_accuracies: Sequence[float], worker_instances: Sequence[int]) -> float:
    """Global effective accuracy: the workers' mean, weighted by how many instances each served.

    With an even split (the usual case) this is the plain mean; weighting keeps it equal to "correct and
    on-time instances / all instances" when the split is uneven.
    """
    if len(worker_accuracies) != len(worker_instances):
        raise ValueError("one accuracy per worker and one instance count per worker are needed")
    total = sum(worker_instances)
    if total == 0:
        return 0.0
    return math.fsum(a * n for a, n in zip(worker_accuracies, worker_instances, strict=True)) / total
