"""Distributed sliced training (Model Slicing, Fig. 3) on torch.distributed.

A pool of worker processes each trains sub-models at its own slice rates on its own shard of the data;
every ``merge_every`` optimiser steps all workers average their weights (one all-reduce), and they
average once more at the end, so every worker finishes with the same model. gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from .data.types import as_tensors
from .device import resolve_device
from .module import model_rates
from .sampler import MinMaxRandomSampler
from .train import batches, train_epoch


@dataclass
class DistributedResult:
    state_dict: dict[str, Tensor]  # the merged model (rank 0's copy, on CPU)
    worker_states: list[dict[str, Tensor]]  # every worker's final weights; equal after the last merge
    worker_rates: list[tuple[float, ...]]
    steps: int  # optimiser steps per worker
    merges: int
    worker_losses: list[float] = field(default_factory=list)
    backend: str = "gloo"


@dataclass(frozen=True)
class _Job:
    build_model: Callable[[], nn.Module]
    x: Tensor
    y: Tensor
    worker_rates: list[tuple[float, ...]]
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    merge_every: int
    k: int
    seed: int
    backend: str
    device: str
    port: int
    threads: int
    timeout_s: float
    out_dir: str


def default_worker_rates(rates: Sequence[float], world_size: int) -> list[tuple[float, ...]]:
    """Every worker trains the full width; the narrower rates are dealt out round-robin among workers."""
    full, rest = rates[0], list(rates[1:])
    return [tuple([full, *rest[i::world_size]]) for i in range(world_size)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@torch.no_grad()
def _average(model: nn.Module, world_size: int) -> None:
    """Average float parameters and buffers across workers in one all-reduce per dtype;
    integer buffers (BatchNorm's step counters) are taken from rank 0."""
    tensors = [*model.parameters(), *model.buffers()]
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for t in tensors:
        if t.is_floating_point():
            by_dtype.setdefault(t.dtype, []).append(t)
        else:
            dist.broadcast(t, src=0)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world_size)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def _worker(rank: int, job: _Job) -> None:
    world = len(job.worker_rates)
    torch.set_num_threads(job.threads)
    device = torch.device(job.device)
    if device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    dist.init_process_group(
        job.backend,
        init_method=f"tcp://127.0.0.1:{job.port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=job.timeout_s),
    )
    try:
        torch.manual_seed(job.seed)
        model = job.build_model().to(device)
        with torch.no_grad():  # identical start on every worker, whatever the builder's randomness
            for t in [*model.parameters(), *model.buffers()]:
                dist.broadcast(t, src=0)
        # Each worker's shard: a fixed permutation, every world-th example.
        order = torch.randperm(len(job.x), generator=torch.Generator().manual_seed(job.seed))
        shard = order[rank::world]
        x, y = job.x[shard], job.y[shard]
        # Equal step counts on every worker, otherwise the collectives would wait forever.
        steps_per_epoch = (len(job.x) // world) // job.batch_size
        optimizer = torch.optim.SGD(
            model.parameters(), lr=job.lr, momentum=job.momentum, weight_decay=job.weight_decay
        )
        sampler = MinMaxRandomSampler(job.worker_rates[rank], k=job.k, seed=job.seed + rank)
        gen = torch.Generator().manual_seed(job.seed + 1000 + rank)
        step, merges, loss_sum, chunks = 0, 0, 0.0, 0
        for _ in range(job.epochs):
            epoch = islice(
                batches(x, y, job.batch_size, shuffle=True, generator=gen, drop_last=True), steps_per_epoch
            )
            while chunk := list(islice(epoch, job.merge_every - step % job.merge_every)):
                stats = train_epoch(model, chunk, optimizer, sampler, device=device, start_step=step)
                step, loss_sum, chunks = stats.next_step, loss_sum + stats.loss, chunks + 1
                if step % job.merge_every == 0:
                    _average(model, world)
                    merges += 1
        if step % job.merge_every != 0 or step == 0:
            _average(model, world)
            merges += 1
        out = Path(job.out_dir)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
        (out / f"rank{rank}.json").write_text(
            json.dumps({"steps": step, "merges": merges, "loss": loss_sum / max(chunks, 1)})
        )
    finally:
        dist.destroy_process_group()


def distributed_train(
    build_model: Callable[[], nn.Module],
    train_data: Any,
    *,
    world_size: int = 2,
    worker_rates: Sequence[Sequence[float]] | None = None,
    epochs: int = 1,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    merge_every: int = 10,
    k: int = 1,
    backend: str = "auto",
    device: str = "auto",
    seed: int = 0,
    timeout_s: float = 300.0,
) -> DistributedResult:
    """Train with ``world_size`` worker processes on 127.0.0.1 and return the merged weights.

    ``build_model`` must be picklable (a module-level function or ``functools.partial`` of a zoo
    builder), since workers are spawned fresh. ``worker_rates[i]`` are the rates worker ``i`` samples
    from ("min-max + k random" over its own list); by default see ``default_worker_rates``.
    """
    if world_size < 1 or merge_every < 1 or epochs < 1:
        raise ValueError("world_size, merge_every and epochs must all be >= 1")
    x, y = as_tensors(train_data)
    if (len(x) // world_size) // batch_size < 1:
        raise ValueError(f"{len(x)} examples are too few for {world_size} workers x batch {batch_size}")
    dev = resolve_device(device)
    declared = model_rates(build_model())
    rates = [tuple(r) for r in worker_rates] if worker_rates else default_worker_rates(declared, world_size)
    if len(rates) != world_size:
        raise ValueError(f"worker_rates has {len(rates)} entries for {world_size} workers")
    if backend == "auto":
        # NCCL needs one GPU per process; otherwise gloo (which also reduces CUDA tensors).
        use_nccl = dev.type == "cuda" and world_size <= torch.cuda.device_count()
        backend = "nccl" if use_nccl else "gloo"
    threads = max(1, (os.cpu_count() or 1) // world_size)
    with tempfile.TemporaryDirectory(prefix="easel-slicing-dist-") as out_dir:
        job = _Job(
            build_model,
            x.contiguous(),
            y.contiguous(),
            rates,
            epochs,
            batch_size,
            lr,
            momentum,
            weight_decay,
            merge_every,
            k,
            seed,
            backend,
            str(dev),
            _free_port(),
            threads,
            timeout_s,
            out_dir,
        )
        mp.start_processes(_worker, args=(job,), nprocs=world_size, join=True, start_method="spawn")
        states = [torch.load(Path(out_dir) / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
        infos = [json.loads((Path(out_dir) / f"rank{r}.json").read_text()) for r in range(world_size)]
    return DistributedResult(
        state_dict=states[0],
        worker_states=states,
        worker_rates=rates,
        steps=infos[0]["steps"],
        merges=infos[0]["merges"],
        worker_losses=[i["loss"] for i in infos],
        backend=backend,
    )
