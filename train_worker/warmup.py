"""Pay PyTorch's one-off costs before the worker announces itself, not inside its first trial.

The first optimiser step in a process lazily imports much of torch (``torch._dynamo`` alone takes about a
second); left to the first trial it inflates that trial's duration by 2-3 s, which skews the early-stopping
median and the job's timings. Loading the template class here also imports the template's own code once.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("easel.train_worker")


def warm_up_torch() -> float:
    """One SGD step with a cosine schedule on a tiny network, as ``slicing.fit`` does. Returns seconds."""
    began = time.perf_counter()
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 8)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    schedule.step()
    with torch.no_grad():
        net.eval()(torch.randn(4, 8))
    return time.perf_counter() - began
