"""`make demo`: the life cycle so far, on one machine, with real servers.

1. ``easel up`` — PostgreSQL, Redis, the Kafka-protocol broker and admin (services launched for real);
2. log in through the SDK, upload scikit-learn's digits (train/validation ``.npz``);
3. tune the built-in sliced MLP: a train job of 8 trials on 2 workers (GP Bayesian optimisation), with a
   live view of each trial's knobs and score;
4. print the best trial's accuracy and time per mini-batch at every slice rate;
5. ``easel down``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from easel.cli import main as cli_main
from easel.settings import get_settings

TRIALS = 8
WORKERS = 2


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def write_digits(folder: Path) -> tuple[Path, Path]:
    """Digits as 8x8 grey images, split 80/20 with a fixed seed."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    train, val = folder / "digits-train.npz", folder / "digits-val.npz"
    np.savez(train, x=x[order[:cut]], y=y[order[:cut]])
    np.savez(val, x=x[order[cut:]], y=y[order[cut:]])
    return train, val


def watch(client, app: str, version: int, timeout_s: float = 1800) -> None:
    """Print each trial as it starts and finishes until the job is done."""
    shown: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for trial in client.list_trials(app, version, limit=200).items:
            if shown.get(trial.id) == trial.status:
                continue
            shown[trial.id] = trial.status
            tuned = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in trial.knobs.items()
                     if k in ("lr", "width", "depth", "batch_size", "weight_decay")}
            score = f"{trial.score:.4f}" if trial.score is not None else "-"
            print(f"  trial {trial.no:>2}  {trial.status:<10} score {score:<7} {tuned}", flush=True)
        job = client.get_train_job(app, version)
        if job.status in ("COMPLETED", "STOPPED", "ERRORED"):
            print(f"  train job {app} v{version}: {job.status}")
            return
        time.sleep(1.0)
    raise TimeoutError(f"train job {app} v{version} did not finish in {timeout_s:.0f}s")


def run_life_cycle(settings) -> None:
    from sdk import Client, TrainBudget

    began = _stage("2. log in and upload the digits dataset")
    with Client(settings.resolved_admin_url) as client:
        client.login(settings.superadmin_email, settings.superadmin_password)
        with tempfile.TemporaryDirectory() as folder:
            train_path, val_path = write_digits(Path(folder))
            train = client.upload_dataset("digits-train", "IMAGE_CLASSIFICATION", train_path)
            val = client.upload_dataset("digits-val", "IMAGE_CLASSIFICATION", val_path)
        print(f"  uploaded {train.name} and {val.name} in {time.perf_counter() - began:.1f}s")

        began = _stage(f"3. tune the sliced MLP: {TRIALS} trials on {WORKERS} workers")
        mlp = next(m for m in client.list_models(task="IMAGE_CLASSIFICATION").items if m.name == "SlicedMLP")
        job = client.create_train_job("digits-demo", "IMAGE_CLASSIFICATION", train.id, val.id, [mlp.id],
                                      budget=TrainBudget(model_trial_count=TRIALS, workers=WORKERS))
        watch(client, job.app, job.app_version)
        print(f"  tuning took {time.perf_counter() - began:.1f}s")

        _stage("4. the best trial at every slice rate")
        best = client.list_trials(job.app, job.app_version, best=1).items[0]
        print(f"  trial {best.no}, knobs {best.knobs}")
        profile = best.profile or {}
        print(f"  {'rate':>5} {'accuracy':>9} {'ms / batch of ' + str(profile.get('batch_size', '?')):>18}")
        for rate, accuracy, seconds in zip(profile.get("rates", []), profile.get("accuracy", []),
                                           profile.get("batch_time_s", []), strict=False):
            print(f"  {rate:>5.2f} {accuracy:>9.4f} {seconds * 1000:>18.2f}")


def main() -> int:
    # Train jobs start their advisor and workers for real (admin reads this when `up` starts it).
    os.environ.setdefault("EASEL_LAUNCH_SERVICES", "true")
    settings = get_settings()
    began = _stage(f"1. easel up  (data dir {settings.data_dir})")
    if cli_main(["up"]) != 0:
        return 1
    print(f"  up in {time.perf_counter() - began:.1f}s")
    try:
        cli_main(["status"])
        run_life_cycle(settings)
    finally:
        _stage("5. easel down")
        cli_main(["down"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
