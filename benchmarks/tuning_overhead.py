"""Advisor overhead per trial: ask + tell of the GP and random samplers (and, end to end, the trial row in
PostgreSQL and the proposal on Redis), at 10, 50 and 100 trials, beside Optuna TPE's ask/tell in the same run.

Run: ``.venv/bin/python benchmarks/tuning_overhead.py`` → ``benchmarks/results/tuning_overhead.json``.
Starts a private local stack (real PostgreSQL and Redis) in a temp dir for the end-to-end column.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from advisor.samplers import make_sampler
from advisor.space import CategoricalDim, FloatDim, IntDim, SearchSpace

RESULTS = Path(__file__).parent / "results" / "tuning_overhead.json"
SPACE = SearchSpace((FloatDim("lr", 1e-4, 1.0, log=True), IntDim("width", 16, 256, log=True),
                     FloatDim("weight_decay", 1e-6, 1e-2, log=True), CategoricalDim("sampler", ("minmax", "rr"))))
CHECKPOINTS = (10, 50, 100)


def objective(v: dict) -> float:
    return -abs(math.log10(v["lr"]) + 2) - abs(math.log2(v["width"]) - 7) / 3 - (v["sampler"] == "rr") * 0.1


def ours(backend: str, trials: int, with_io: bool = False, io=None) -> list[float]:
    sampler = make_sampler(backend, SPACE, seed=0)
    costs = []
    for _ in range(trials):
        began = time.perf_counter()
        values = sampler.ask()
        if io is not None:
            io(values)
        sampler.tell(values, objective(values))
        costs.append(time.perf_counter() - began)
    return costs


def optuna_tpe(trials: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    costs = []
    for _ in range(trials):
        began = time.perf_counter()
        trial = study.ask()
        values = {"lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
                  "width": trial.suggest_int("width", 16, 256, log=True),
                  "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
                  "sampler": trial.suggest_categorical("sampler", ["minmax", "rr"])}
        study.tell(trial, objective(values))
        costs.append(time.perf_counter() - began)
    return costs


def with_platform_io():
    """Per trial: insert the trial row in PostgreSQL and push the proposal through Redis, as the advisor does."""
    os.environ.setdefault("EASEL_DATA_DIR", tempfile.mkdtemp(prefix="easel-bench-"))
    from advisor.records import TrialRecords
    from easel.db.enums import DatasetFormat, JobStatus, ModelSource, UserRole
    from easel.db.models import Dataset, Model, SubTrainJob, TrainJob, User
    from easel.db.session import make_engine, make_sessionmaker, session_scope
    from easel.local_stack import LocalStack
    from easel.redis_client import make_redis
    from easel.settings import get_settings
    from easel.stack.process import free_port
    from easel.tuning import Proposal, TuningChannel

    for part in ("POSTGRES", "REDIS", "KAFKA"):
        os.environ[f"EASEL_{part}_PORT"] = str(free_port())
    settings = get_settings()
    stack = LocalStack(settings)
    stack.up()
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    with session_scope(sessions) as s:
        user = User(email="b@x", password_hash="x", role=UserRole.ADMIN)
        s.add(user)
        s.flush()
        ds = Dataset(name="d", task="t", format=DatasetFormat.NPZ, blob_key="k", size_bytes=1, num_samples=1,
                     num_classes=1, owner_id=user.id)
        model = Model(name="m", task="t", source=ModelSource.BUILTIN, model_class="M", module_ref="m",
                      owner_id=user.id)
        s.add_all([ds, model])
        s.flush()
        job = TrainJob(app="a", app_version=1, task="t", status=JobStatus.RUNNING, train_dataset_id=ds.id,
                       val_dataset_id=ds.id, owner_id=user.id)
        s.add(job)
        s.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.RUNNING)
        s.add(sub)
        s.flush()
        sub_id = sub.id
    records = TrialRecords(sessions, sub_id)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id)

    def io(values: dict) -> None:
        trial = records.create(values)
        channel.propose(Proposal(trial.id, trial.no, trial.knobs))
        channel.client.rpop(channel.key("proposals"))  # a worker takes it

    return stack, io


def summarise(costs: list[float]) -> dict[str, float]:
    out = {}
    for n in CHECKPOINTS:
        window = costs[max(0, n - 10):n]  # the cost of trials n-9..n: how overhead grows with history
        out[f"ms_at_{n}"] = round(statistics.median(window) * 1000, 3)
    out["ms_mean_all"] = round(statistics.mean(costs) * 1000, 3)
    return out


def main() -> None:
    trials = max(CHECKPOINTS)
    stack, io = with_platform_io()
    try:
        rows = {
            "gp (ask+tell)": summarise(ours("gp", trials)),
            "gp + PostgreSQL + Redis": summarise(ours("gp", trials, io=io)),
            "random (ask+tell)": summarise(ours("random", trials)),
            "optuna TPE (ask+tell)": summarise(optuna_tpe(trials)),
        }
    finally:
        stack.down()
    print(f"{'backend':<26} " + " ".join(f"{'@' + str(n):>10}" for n in CHECKPOINTS) + f" {'mean':>10}   (ms/trial)")
    for name, row in rows.items():
        print(f"{name:<26} " + " ".join(f"{row[f'ms_at_{n}']:>10.2f}" for n in CHECKPOINTS)
              + f" {row['ms_mean_all']:>10.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "what": "advisor overhead per trial (median of the 10 trials ending at each checkpoint), ms",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": rows,
    }, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
