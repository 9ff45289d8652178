"""`make demo`: the whole life cycle on one machine, with real servers, in a few minutes of CPU.

1. ``easel up`` — PostgreSQL, Redis, the Kafka-protocol broker and admin (services launched for real);
2. log in through the SDK, upload scikit-learn's digits (train/validation ``.npz``);
3. tune the built-in sliced CNN (GP Bayesian optimisation, two train workers), with a live view of each trial;
4. print the best trial's accuracy and time per mini-batch at every slice rate;
5. deploy it with two inference workers (and its explainer);
6. predict the validation set under a generous and a tight deadline: the width mix, served and dropped;
7. explain one instance with Grad-CAM and LIME, writing the overlays to a folder it prints;
8. print the dashboard's URL if the web UI is built;
9. stop the inference job and ``easel down``.

Stages 2-8 are :func:`run_life_cycle`, which the test suite runs in a shortened form (:data:`QUICK`).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from easel.cli import main as cli_main
from easel.credentials import apply_local_credentials
from easel.settings import get_settings

APP = "digits-demo"
TASK = "IMAGE_CLASSIFICATION"
MODEL = "SlicedCNN"
WEBUI_DIST = Path(__file__).resolve().parents[1] / "webui" / "dist"  # admin's default (EASEL_WEBUI_DIST)


def webui_built(dist: Path | None = None) -> bool:
    """Whether admin has a dashboard build to serve (the web UI is built separately: ``make webui``)."""
    return ((dist or WEBUI_DIST) / "index.html").is_file()


@dataclass(frozen=True)
class DemoPlan:
    trials: int = 6
    tune_workers: int = 2
    serve_workers: int = 2
    instances: int = 360  # validation images per predict request
    generous_s: float = 2.0
    lime_samples: int = 1000
    tune_timeout_s: float = 900.0


QUICK = DemoPlan(trials=1, tune_workers=1, instances=96, lime_samples=200)


@dataclass
class DemoResult:
    app: str
    version: int
    profile: dict[str, Any]
    api_key: str | None = None  # the deployed job's API key the demo created
    answers: dict[str, Any] = field(default_factory=dict)  # "generous" / "tight" -> sdk.Prediction
    explanations: dict[str, Any] = field(default_factory=dict)  # method -> sdk.Explanation
    overlays: list[Path] = field(default_factory=list)
    dashboard: str | None = None


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


@contextmanager
def ticking(label: str, every_s: float = 2.0) -> Iterator[None]:
    """Print ``label: Ns`` every ``every_s`` while the block runs, so a wait never looks like a hang."""
    began = time.perf_counter()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every_s):
            print(f"  {label}: {time.perf_counter() - began:.0f}s", flush=True)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


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


def watch(client: Any, app: str, version: int, timeout_s: float = 1800) -> None:
    """Print each trial as it starts and finishes until the job is done."""
    shown: dict[str, str] = {}
    epochs: dict[str, int] = {}
    began = time.monotonic()
    deadline = began + timeout_s
    last_line = began
    while time.monotonic() < deadline:
        for trial in client.list_trials(app, version, limit=200).items:
            if trial.status == "RUNNING":  # its epochs as they come (the trial's own log)
                logs = client.get_trial_logs(trial.id, offset=epochs.get(trial.id, 0)).items
                for line in logs:
                    if not line.message.startswith("trial "):  # the worker's hello repeats the knobs shown below
                        print(f"  trial {trial.no:>2}    {line.message}", flush=True)
                        last_line = time.monotonic()
                epochs[trial.id] = epochs.get(trial.id, 0) + len(logs)
            if shown.get(trial.id) == trial.status:
                continue
            shown[trial.id] = trial.status
            tuned = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in trial.knobs.items()
                     if k in ("lr", "width", "depth", "batch_size", "weight_decay")}
            score = f"{trial.score:.4f}" if trial.score is not None else "-"
            print(f"  trial {trial.no:>2}  {trial.status:<10} score {score:<7} {tuned}", flush=True)
            last_line = time.monotonic()
        job = client.get_train_job(app, version)
        if job.status in ("COMPLETED", "STOPPED", "ERRORED"):
            print(f"  train job {app} v{version}: {job.status}")
            return
        if time.monotonic() - last_line > 5:
            print(f"  ... tuning, {time.monotonic() - began:.0f}s", flush=True)
            last_line = time.monotonic()
        time.sleep(1.0)
    raise TimeoutError(f"train job {app} v{version} did not finish in {timeout_s:.0f}s")


def tight_deadlines(generous: Any) -> list[float]:
    """Deadlines below what the generous request took (all of it at full width, queueing included): halving
    until the scheduler has to mix in narrower widths or drop — where that happens depends on the machine."""
    took = float(generous.totals["elapsed_s"])
    return [round(max(0.002, took * f), 4) for f in (0.5, 0.25, 0.12, 0.06, 0.03)]


def squeezed(answer: Any) -> bool:
    return answer.dropped > 0 or any(p.served and p.slice_rate < 1.0 for p in answer)


def report_prediction(name: str, answer: Any, labels: np.ndarray, deadline_s: float) -> None:
    rates = Counter(p.slice_rate for p in answer if p.served)
    correct = sum(1 for p, y in zip(answer, labels, strict=True) if p.served and p.label == str(int(y)))
    mix = ", ".join(f"{rate:g}: {count}" for rate, count in sorted(rates.items(), reverse=True)) or "none"
    print(f"  {name:<8} deadline {deadline_s * 1000:7.1f} ms: served {answer.served:>4}, dropped {answer.dropped:>4}; "
          f"widths {{{mix}}}; effective accuracy {correct / len(labels):.3f}", flush=True)


def run_life_cycle(client: Any, plan: DemoPlan, out: Path, app: str = APP) -> DemoResult:
    """Upload, tune, show the best trial, deploy, predict under two deadlines, explain; the inference job is
    left running (the caller stops it)."""
    from sdk import TrainBudget

    began = _stage("2. upload the digits dataset")
    with tempfile.TemporaryDirectory() as folder:
        train_path, val_path = write_digits(Path(folder))
        train = client.upload_dataset(f"{app}-train", TASK, train_path)
        val = client.upload_dataset(f"{app}-val", TASK, val_path)
        with np.load(val_path) as data:
            x_val, y_val = data["x"], data["y"]
    print(f"  uploaded {train.name} ({train.num_samples}) and {val.name} ({val.num_samples}) "
          f"in {time.perf_counter() - began:.1f}s")

    began = _stage(f"3. tune the sliced CNN: {plan.trials} trial(s) on {plan.tune_workers} worker(s)")
    cnn = next(m for m in client.iter_all(client.list_models, task=TASK) if m.name == MODEL)
    job = client.create_train_job(app, TASK, train.id, val.id, [cnn.id],
                                  budget=TrainBudget(model_trial_count=plan.trials, workers=plan.tune_workers))
    watch(client, job.app, job.app_version, plan.tune_timeout_s)
    print(f"  tuning took {time.perf_counter() - began:.1f}s")

    _stage("4. the best trial at every slice rate")
    best = client.list_trials(job.app, job.app_version, best=1).items[0]
    print(f"  trial {best.no}, knobs { {k: best.knobs[k] for k in ('width', 'depth', 'lr', 'batch_size')} }")
    profile = best.profile or {}
    print(f"  {'rate':>5} {'accuracy':>9} {'ms / batch of ' + str(profile.get('batch_size', '?')):>18}")
    for rate, accuracy, seconds in zip(profile.get("rates", []), profile.get("accuracy", []),
                                       profile.get("batch_time_s", []), strict=False):
        print(f"  {rate:>5.2f} {accuracy:>9.4f} {seconds * 1000:>18.2f}")
    result = DemoResult(job.app, job.app_version, profile)

    began = _stage(f"5. deploy with {plan.serve_workers} inference workers")
    client.create_inference_job(job.app, job.app_version, workers=plan.serve_workers)
    with ticking("starting the predictor, workers and explainer"):
        deployed = client.wait_inference_job(job.app, job.app_version, timeout_s=300)
    kinds = Counter(s.kind for s in deployed.services if s.status == "RUNNING")
    print(f"  RUNNING at {deployed.predictor_url} ({dict(kinds)}) after {time.perf_counter() - began:.1f}s")
    key = client.create_api_key(job.app, job.app_version, "demo")
    result.api_key = key.key
    print(f"  API key {key.prefix}... ({key.name}): the predictor answers only its job's keys")

    _stage(f"6. predict {plan.instances} validation images under two deadlines")
    x, y = x_val[:plan.instances], y_val[:plan.instances]
    generous = client.predict(job.app, job.app_version, x.tolist(), deadline_s=plan.generous_s,
                              predictor_url=deployed.predictor_url, api_key=result.api_key)
    result.answers["generous"] = generous
    report_prediction("generous", generous, y, plan.generous_s)
    for deadline in tight_deadlines(generous):
        answer = client.predict(job.app, job.app_version, x.tolist(), deadline_s=deadline,
                                predictor_url=deployed.predictor_url, api_key=result.api_key)
        result.answers["tight"] = answer
        report_prediction("tight", answer, y, deadline)
        if squeezed(answer):
            break

    _stage("7. explain one instance with Grad-CAM and LIME")
    out.mkdir(parents=True, exist_ok=True)
    instance = x_val[0]
    for method, options in (("gradcam", {}), ("lime", {"num_samples": plan.lime_samples})):
        with ticking(f"explaining with {method}"):
            explanation = client.explain(job.app, job.app_version, instance.tolist(), method, options=options)
        path = out / f"{method}.png"
        explanation.save_overlay(path)
        result.explanations[method] = explanation
        result.overlays.append(path)
        where = explanation.details.get("target_layer") or f"{len(explanation.details.get('superpixels', []))} superpixels"
        print(f"  {method:<8} label {explanation.label} (true {int(y_val[0])}), {where}, computed in "
              f"{explanation.compute_s:.2f}s -> {path}", flush=True)
    print(f"  overlays in {out}")

    _stage("8. dashboard")
    if webui_built(get_settings().webui_dist):
        result.dashboard = f"{client.base_url}/"
        print(f"  open {result.dashboard} (log in as above)")
    else:
        print("  the web UI is not built (make webui); skipped")
    return result


def main() -> int:
    settings = get_settings()
    began = _stage(f"1. easel up  (data dir {settings.data_dir})")
    if cli_main(["up"]) != 0:
        return 1
    print(f"  up in {time.perf_counter() - began:.1f}s")
    settings = apply_local_credentials(settings)  # `up` generated the superadmin password on its first run
    from sdk import Client

    client = Client(settings.resolved_admin_url, timeout=120)
    result = None
    try:
        cli_main(["status"])
        client.login(settings.superadmin_email, settings.superadmin_password)
        result = run_life_cycle(client, DemoPlan(), settings.data_dir / "demo")
    finally:
        began = _stage("9. stop the inference job and easel down")
        if result is not None:
            with ticking("draining the inference job"):
                client.stop_inference_job(result.app, result.version)
        client.close()
        cli_main(["down"])
    return 0

