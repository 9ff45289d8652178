"""Tuning benchmarks → ``benchmarks/results/tuning.json``.

(a) GP Bayesian optimisation vs random search on a real problem — the built-in sliced MLP (3 epochs) on
    scikit-learn's digits — over 5 seeds: best validation accuracy (full width) vs trial number. Target:
    on the median seed, BO reaches random search's best-of-32 within 16 trials.
(b) Advisor overhead per trial — ask + tell, and with the trial row in PostgreSQL and the proposal on
    Redis — at 10, 50 and 100 trials, beside Optuna TPE's ask/tell in the same run.
(c) Wall time of 16 short trials with 1 vs 2 train workers, real advisor and worker processes over the
    real local stack (paper Fig. 10 analogue). Target: ≥ 1.7× faster with 2 workers.

Run: ``.venv/bin/python benchmarks/tuning.py [--sections abc] [--seeds 5]``. Starts a private local stack
(real PostgreSQL, Redis, broker) in a temp dir for (b) and (c).
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on sys.path, where benchmarks/slicing.py would shadow the
# slicing package: put the project root first instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks" / "templates")]

from advisor.records import TrialRecords  # noqa: E402
from advisor.samplers import make_sampler  # noqa: E402
from advisor.space import CategoricalDim, FloatDim, IntDim, SearchSpace, space_from_knob_config  # noqa: E402
from easel.model import knob_config_to_dict  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "tuning.json"
TEMPLATE_FILE = ROOT / "benchmarks" / "templates" / "quick_mlp.py"


def write_digits(folder: Path) -> tuple[Path, Path]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    np.savez(folder / "train.npz", x=x[order[:1200]], y=y[order[:1200]])
    np.savez(folder / "val.npz", x=x[order[1200:]], y=y[order[1200:]])
    return folder / "train.npz", folder / "val.npz"


# -- (a) GP vs random ------------------------------------------------------------------------------------
def run_search(backend: str, seed: int, trials: int, space: SearchSpace, train: Path, val: Path) -> list[float]:
    import torch
    from quick_mlp import QuickSlicedMLP

    torch.set_num_threads(1)
    sampler = make_sampler(backend, space, seed=seed)
    best, curve = 0.0, []
    for _ in range(trials):
        tuned = sampler.ask()
        model = QuickSlicedMLP(**space.complete(tuned))
        model.train(str(train))
        score = model.evaluate(str(val), 1.0)
        sampler.tell(tuned, score)
        best = max(best, score)
        curve.append(best)
    return curve


def section_a(seeds: int, folder: Path) -> dict:
    from quick_mlp import QuickSlicedMLP

    train, val = write_digits(folder)
    space = space_from_knob_config(knob_config_to_dict(QuickSlicedMLP.get_knob_config()), {"EARLY_STOP": False})
    rows = []
    for seed in range(seeds):
        began = time.perf_counter()
        rnd = run_search("random", seed, 32, space, train, val)
        gp = run_search("gp", seed, 16, space, train, val)
        reached = next((i + 1 for i, v in enumerate(gp) if v >= rnd[-1]), None)
        rows.append({"seed": seed, "random_best_of_32": rnd[-1], "gp_best_of_16": gp[-1],
                     "random_curve": rnd, "gp_curve": gp, "gp_trials_to_reach_random32": reached})
        print(f"  (a) seed {seed}: random best@32 {rnd[-1]:.4f}  gp best@16 {gp[-1]:.4f}  "
              f"gp reached random@32 at trial {reached}  ({time.perf_counter() - began:.0f}s)", flush=True)
    reached = [r["gp_trials_to_reach_random32"] or 10**6 for r in rows]
    median_reached = statistics.median(reached)
    return {
        "rows": rows,
        "median_gp_best_of_16": statistics.median(r["gp_best_of_16"] for r in rows),
        "median_random_best_of_32": statistics.median(r["random_best_of_32"] for r in rows),
        "median_gp_trials_to_reach_random32": median_reached if median_reached < 10**6 else None,
        "target_met": median_reached <= 16,
    }


# -- a private stack and job rows for (b) and (c) ------------------------------------------------------
def private_stack():
    data_dir = tempfile.mkdtemp(prefix="easel-bench-")
    # The stack's data (PostgreSQL, Kafka logs, blobs) is hundreds of MB: gone when the run ends, however it ends.
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    os.environ["EASEL_DATA_DIR"] = data_dir
    from easel.local_stack import LocalStack
    from easel.settings import get_settings
    from easel.stack.process import free_port

    for part in ("POSTGRES", "REDIS", "KAFKA", "ADMIN"):
        os.environ[f"EASEL_{part}_PORT"] = str(free_port())
    stack = LocalStack(get_settings())
    stack.up()
    return stack


def make_sub_job(settings, sessions, trials: int, workers: int, train_key: str, val_key: str,
                 model_class: str = "QuickSlicedMLP") -> str:
    import quick_mlp

    from easel.db.enums import DatasetFormat, JobStatus, ModelSource, UserRole
    from easel.db.models import Dataset, Model, SubTrainJob, TrainJob, User
    from easel.db.session import session_scope

    tag = os.urandom(4).hex()
    with session_scope(sessions) as s:
        user = User(email=f"bench-{tag}@x", password_hash="x", role=UserRole.ADMIN)
        s.add(user)
        s.flush()
        train = Dataset(name="train", task="IMAGE_CLASSIFICATION", format=DatasetFormat.NPZ, blob_key=train_key,
                        size_bytes=1, num_samples=1200, num_classes=10, owner_id=user.id)
        val = Dataset(name="val", task="IMAGE_CLASSIFICATION", format=DatasetFormat.NPZ, blob_key=val_key,
                      size_bytes=1, num_samples=597, num_classes=10, owner_id=user.id)
        model = Model(name=f"quick-mlp-{tag}", task="IMAGE_CLASSIFICATION", source=ModelSource.UPLOADED,
                      model_class=model_class, module_ref="models/quick_mlp.py", owner_id=user.id,
                      knob_config=knob_config_to_dict(getattr(quick_mlp, model_class).get_knob_config()))
        s.add_all([train, val, model])
        s.flush()
        job = TrainJob(app=f"bench-{tag}", app_version=1, task="IMAGE_CLASSIFICATION", status=JobStatus.STARTED,
                       budget={"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 1, "WORKERS": workers,
                               "EARLY_STOP": False},
                       train_dataset_id=train.id, val_dataset_id=val.id, owner_id=user.id)
        s.add(job)
        s.flush()
        sub = SubTrainJob(train_job_id=job.id, model_id=model.id, status=JobStatus.STARTED)
        s.add(sub)
        s.flush()
        return sub.id


# -- (b) overhead ----------------------------------------------------------------------------------------
OVERHEAD_SPACE = SearchSpace((FloatDim("lr", 1e-4, 1.0, log=True), IntDim("width", 16, 256, log=True),
                              FloatDim("weight_decay", 1e-6, 1e-2, log=True),
                              CategoricalDim("sampler", ("minmax", "rr"))))
CHECKPOINTS = (10, 50, 100)


def _toy(v: dict) -> float:
    return -abs(math.log10(v["lr"]) + 2) - abs(math.log2(v["width"]) - 7) / 3 - (v["sampler"] == "rr") * 0.1


def _ours(backend: str, io=None) -> list[float]:
    sampler = make_sampler(backend, OVERHEAD_SPACE, seed=0)
    costs = []
    for _ in range(max(CHECKPOINTS)):
        began = time.perf_counter()
        values = sampler.ask()
        if io is not None:
            io(values)
        sampler.tell(values, _toy(values))
        costs.append(time.perf_counter() - began)
    return costs


def _optuna() -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    costs = []
    for _ in range(max(CHECKPOINTS)):
        began = time.perf_counter()
        trial = study.ask()
        values = {"lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
                  "width": trial.suggest_int("width", 16, 256, log=True),
                  "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
                  "sampler": trial.suggest_categorical("sampler", ["minmax", "rr"])}
        study.tell(trial, _toy(values))
        costs.append(time.perf_counter() - began)
    return costs


def _summary(costs: list[float]) -> dict[str, float]:
    # the median cost of the 10 trials ending at each checkpoint: how overhead grows with history
    out = {f"ms_at_{n}": round(statistics.median(costs[n - 10:n]) * 1000, 3) for n in CHECKPOINTS}
    out["ms_mean"] = round(statistics.mean(costs) * 1000, 3)
    return out


def section_b(settings, sessions) -> dict:
    from easel.redis_client import make_redis
    from easel.tuning import Proposal, TuningChannel

    sub_id = make_sub_job(settings, sessions, 100, 1, "unused", "unused")
    records = TrialRecords(sessions, sub_id)
    channel = TuningChannel(make_redis(settings, decode_responses=True), sub_id)

    def io(values: dict) -> None:
        trial = records.create(values)
        channel.propose(Proposal(trial.id, trial.no, trial.knobs))
        channel.client.rpop(channel.key("proposals"))  # a worker takes it

    rows = {"gp: ask+tell": _summary(_ours("gp")),
            "gp + PostgreSQL + Redis": _summary(_ours("gp", io)),
            "random: ask+tell": _summary(_ours("random")),
            "optuna TPE: ask+tell": _summary(_optuna())}
    for name, row in rows.items():
        print(f"  (b) {name:<26}" + "".join(f" @{n}: {row[f'ms_at_{n}']:8.2f} ms" for n in CHECKPOINTS), flush=True)
    return rows


# -- (c) 1 vs 2 workers ----------------------------------------------------------------------------------
def run_job(settings, sessions, workers: int, trials: int, model_class: str) -> dict:
    from sqlalchemy import select

    from easel.db.enums import JobStatus, ServiceKind
    from easel.db.models import SubTrainJob, Trial
    from easel.launcher import LocalLauncher, ServiceSpec

    sub_id = make_sub_job(settings, sessions, trials, workers, "datasets/train.npz", "datasets/val.npz", model_class)
    launcher = LocalLauncher(settings, sessions)
    # One torch thread per process in both runs, so the comparison isolates worker parallelism.
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    began = time.perf_counter()
    launched = [launcher.start(ServiceSpec(
        name="advisor", kind=ServiceKind.ADVISOR, sub_train_job_id=sub_id, env=env,
        argv=[sys.executable, "-m", "advisor", "--sub-train-job-id", sub_id, "--backend", "random", "--seed", "0"]))]
    for _ in range(workers):
        launched.append(launcher.start(ServiceSpec(
            name="train-worker", kind=ServiceKind.TRAIN_WORKER, sub_train_job_id=sub_id, env=env,
            argv=[sys.executable, "-m", "train_worker", "--sub-train-job-id", sub_id])))
    try:
        while True:
            with sessions() as s:
                if s.get_one(SubTrainJob, sub_id).status == JobStatus.COMPLETED:
                    break
            if time.perf_counter() - began > 1500:
                raise TimeoutError("tuning job did not finish")
            time.sleep(0.1)
        wall = time.perf_counter() - began
    finally:
        for service in launched:
            launcher.stop(service.id, timeout_s=10)
    with sessions() as s:
        rows = s.scalars(select(Trial).where(Trial.sub_train_job_id == sub_id)).all()
        first = min(t.started_at for t in rows)
        last = max(t.stopped_at for t in rows)
        statuses = sorted({t.status.value for t in rows})
        durations = [(t.stopped_at - t.started_at).total_seconds() for t in rows]
        # idle time of a worker between finishing one trial and starting its next (advisor round trip)
        gaps: list[float] = []
        per_worker = sorted(sum(t.worker_service_id == w for t in rows) for w in {t.worker_service_id for t in rows})
        starts = sorted(min(t.started_at for t in rows if t.worker_service_id == w)
                        for w in {t.worker_service_id for t in rows})
        for worker in {t.worker_service_id for t in rows}:
            own = sorted((t for t in rows if t.worker_service_id == worker), key=lambda t: t.started_at)
            gaps += [(b.started_at - a.stopped_at).total_seconds() for a, b in itertools.pairwise(own)]
    # A trial's own duration grows with 2 workers only if they compete for the CPU.
    return {"workers": workers, "wall_s": round(wall, 2), "trial_phase_s": round((last - first).total_seconds(), 2),
            "mean_trial_s": round(statistics.mean(durations), 3), "max_trial_s": round(max(durations), 3),
            "median_gap_between_trials_s": round(statistics.median(gaps), 4) if gaps else None,
            "trials_per_worker": per_worker,
            "first_trial_offsets_s": [round((start - starts[0]).total_seconds(), 3) for start in starts],
            "trials": len(rows), "statuses": statuses, "load_average_1min": round(os.getloadavg()[0], 2)}


def section_c(settings, sessions, trials: int = 16) -> dict:
    from easel.blobstore import LocalBlobStore

    blobs = LocalBlobStore(settings.blob_dir)
    with tempfile.TemporaryDirectory() as folder:
        train, val = write_digits(Path(folder))
        blobs.put_bytes("datasets/train.npz", train.read_bytes())
        blobs.put_bytes("datasets/val.npz", val.read_bytes())
    blobs.put_bytes("models/quick_mlp.py", TEMPLATE_FILE.read_bytes())
    out: dict = {}
    # "even": every trial costs about the same (the target's case); "mixed": the architecture is tuned too,
    # so trials range 0.1-1.7 s and the last long trial bounds the 2-worker time (shown, not targeted).
    for label, model_class in (("even", "EvenSlicedMLP"), ("mixed", "QuickSlicedMLP")):
        one = run_job(settings, sessions, 1, trials, model_class)
        print(f"  (c) {label}, 1 worker:  {one}", flush=True)
        two = run_job(settings, sessions, 2, trials, model_class)
        print(f"  (c) {label}, 2 workers: {two}", flush=True)
        out[label] = {"template": model_class, "one_worker": one, "two_workers": two,
                      "speedup_wall": round(one["wall_s"] / two["wall_s"], 3),
                      "speedup_trial_phase": round(one["trial_phase_s"] / two["trial_phase_s"], 3)}
    out["target_met"] = out["even"]["speedup_wall"] >= 1.7
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sections", default="abc")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "platform": platform.platform()}}
    if RESULTS.exists():
        results = {**json.loads(RESULTS.read_text()), **results}
    if "a" in args.sections:
        print("(a) GP vs random search, sliced MLP on digits", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            results["a_gp_vs_random"] = section_a(args.seeds, Path(folder))
    if "b" in args.sections or "c" in args.sections:
        from easel.db.session import make_engine, make_sessionmaker

        stack = private_stack()
        try:
            sessions = make_sessionmaker(make_engine(stack.settings.resolved_database_url))
            if "b" in args.sections:
                print("(b) advisor overhead per trial", flush=True)
                results["b_overhead_ms"] = section_b(stack.settings, sessions)
            if "c" in args.sections:
                print("(c) 16 short trials, 1 vs 2 workers", flush=True)
                results["c_workers"] = section_c(stack.settings, sessions)
        finally:
            stack.down()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS}")
    if "a_gp_vs_random" in results:
        a = results["a_gp_vs_random"]
        print(f"(a) median best: gp@16 {a['median_gp_best_of_16']:.4f} vs random@32 {a['median_random_best_of_32']:.4f};"
              f" gp reaches random@32 at trial {a['median_gp_trials_to_reach_random32']} (target <= 16): "
              f"{'met' if a['target_met'] else 'MISSED'}")
    if "c_workers" in results:
        c = results["c_workers"]
        for label in ("even", "mixed"):
            print(f"(c) {label} trials, speed-up with 2 workers: {c[label]['speedup_wall']}x wall, "
                  f"{c[label]['speedup_trial_phase']}x trial phase")
        print(f"(c) target >= 1.7x on even trials: {'met' if c['target_met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
