"""The ``easel`` command's client verbs: one decorated function each, returning what to print.

``run(client, args)`` gets a connected :class:`sdk.Client` (``needs="login"``: with the saved token); the
table of ``columns`` (or, with ``--json``, JSON) of what it returns is printed by :mod:`sdk.cli`, which
also turns SDK errors into a message and exit code 1. A verb that prints for itself returns None.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdk.cli import CliError, arg, command, credentials_path, group, save_credentials, say
from sdk.client import Client
from sdk.types import PRUNERS, TrainBudget

SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")
DATASET_COLUMNS = ("id", "name", "task", "format", "num_samples", "num_classes", "size_bytes", "created_at")
MODEL_COLUMNS = ("id", "name", "task", "source", "model_class", "access_right")
USER_COLUMNS = ("id", "email", "role", "created_at", "banned_at")
TRAIN_JOB_COLUMNS = ("app", "app_version", "task", "status", "created_at", "stopped_at")
TRIAL_COLUMNS = ("no", "id", "model_name", "status", "score", "knobs")
INFERENCE_COLUMNS = ("app", "app_version", "status", "workers", "predictor_url", "created_at", "stopped_at")
LOG_COLUMNS = ("time", "level", "message")
KEY_COLUMNS = ("id", "name", "prefix", "created_at", "revoked_at")
PREDICTION_COLUMNS = ("index", "status", "label", "slice_rate", "latency_s", "model_version")
VERSION_COLUMNS = ("number", "stage", "trial_id", "train_dataset_id", "created_at")
HISTORY_COLUMNS = ("at", "from_stage", "to_stage", "by_user_id", "reason", "verdict_id")
VERDICT_COLUMNS = ("created_at", "passed", "overridden", "tolerance", "dataset_id", "against_version_id")
UPDATE_COLUMNS = ("id", "status", "from_version_id", "to_version_id", "created_at", "stopped_at", "error")

group("datasets", "upload, list, show and delete datasets")
group("models", "upload, list, show and delete model templates")
group("jobs", "list, show and stop train jobs (default: list)")
group("inference", "list, show and stop inference jobs (default: list)")
group("users", "create, list, show and ban users (admins)")
group("keys", "create, list and revoke API keys of an inference job's predictor")
group("versions", "register model versions, list them, show their history, promote through the gate")
group("apps", "an app's options: automatic serving updates, knowledge-base growth")
SCHEMA_COLUMNS = ("task", "input_shape", "dtype", "num_classes", "classes", "status")
APP_COLUMNS = ("name", "auto_update", "auto_tune", "updated_at")


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    if args.quiet or args.json:
        return None

    def report(sent: int, total: int) -> None:
        percent = 100.0 * sent / total if total else 100.0
        print(f"\r  uploading: {sent}/{total} bytes ({percent:5.1f}%)", end="" if sent < total else "\n",
              file=sys.stderr, flush=True)

    return report


# -- auth -----------------------------------------------------------------------------------------------
@command("login", help="log in to admin and save the token", needs="url", args=[
    arg("--email", help="default: EASEL_EMAIL, else asked"),
    arg("--password-stdin", action="store_true",
        help="read the password from stdin (default: EASEL_PASSWORD, else asked without echo)"),
])
def login(client: Client, args: argparse.Namespace) -> None:
    email = args.email or os.environ.get("EASEL_EMAIL") or input("e-mail: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = os.environ.get("EASEL_PASSWORD") or getpass.getpass("password: ")
    token = client.login(email, password)
    path = save_credentials({"url": client.base_url, "token": token.token, "email": token.user.email,
                             "expires_at": token.expires_at.isoformat()})
    say(args, f"Logged in to {client.base_url} as {token.user.email} ({token.user.role}); the token expires at "
        f"{token.expires_at:%Y-%m-%d %H:%M:%S %Z} and is saved in {path}",
        url=client.base_url, user=token.user, expires_at=token.expires_at, credentials=str(path))


@command("logout", help="forget the saved token", needs="nothing")
def logout(args: argparse.Namespace) -> None:
    path = credentials_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    say(args, "Logged out (the saved token was deleted).", logged_out=existed)


@command("whoami", help="show the logged-in user", columns=USER_COLUMNS)
def whoami(client: Client, args: argparse.Namespace) -> Any:
    return client.me()


# -- users (admins) -------------------------------------------------------------------------------------
@command("users", "create", help="create a user (admins); the password is asked, or read with --password-stdin",
         columns=USER_COLUMNS, args=[
             arg("email"),
             arg("--role", required=True, choices=["ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER", "APP_USER"]),
             arg("--password-stdin", action="store_true", help="read the new user's password from stdin"),
         ])
def users_create(client: Client, args: argparse.Namespace) -> Any:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.email}: ")
    return client.create_user(args.email, password, args.role)


@command("users", "list", help="list users, oldest first (admins)", columns=USER_COLUMNS,
         args=[arg("--role")])
def users_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_users, role=args.role))


@command("users", "show", help="one user (admins)", columns=USER_COLUMNS, args=[arg("id")])
def users_show(client: Client, args: argparse.Namespace) -> Any:
    return client.get_user(args.id)


@command("users", "ban", help="ban a user (admins): their tokens stop working, their objects stay",
         args=[arg("id")])
def users_ban(client: Client, args: argparse.Namespace) -> None:
    client.delete_user(args.id)
    say(args, f"Banned user {args.id}.", banned=args.id)


# -- datasets -------------------------------------------------------------------------------------------
@command("datasets", "upload", help="upload a .zip of class folders, a .npz or a .csv", columns=DATASET_COLUMNS,
         args=[arg("name"), arg("file", type=Path), arg("--task", help="default: the task kind inferred from the data"),
               arg("--quiet", action="store_true", help="no progress line")])
def datasets_upload(client: Client, args: argparse.Namespace) -> Any:
    return client.upload_dataset(args.name, args.task, args.file, progress=_progress(args))


@command("datasets", "list", help="list your datasets", columns=DATASET_COLUMNS, args=[arg("--task")])
def datasets_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_datasets, task=args.task))


@command("datasets", "show", help="one dataset, with its stats", columns=(*DATASET_COLUMNS, "stats"),
         args=[arg("id")])
def datasets_show(client: Client, args: argparse.Namespace) -> Any:
    return client.get_dataset(args.id)


def _ints(text: str) -> list[int | None]:
    """``3,32,32`` → ``[3, 32, 32]``; ``any`` (or ``?``) for a size that varies."""
    return [None if part.strip() in ("any", "?") else int(part) for part in text.split(",")]


@command("datasets", "schema", help="show a dataset's schema; with options, confirm or edit it",
         columns=SCHEMA_COLUMNS, args=[
             arg("id"), arg("--confirm", action="store_true", help="confirm it as it is"),
             arg("--task", help="IMAGE_CLASSIFICATION or TABULAR_CLASSIFICATION"),
             arg("--input-shape", type=_ints, metavar="C,H,W", help="one instance's shape, e.g. 3,32,32 or 12"),
             arg("--dtype"), arg("--num-classes", type=int),
             arg("--classes", type=lambda text: [c.strip() for c in text.split(",")] if text else [],
                 metavar="A,B,...", help="class labels in index order"),
         ])
def datasets_schema(client: Client, args: argparse.Namespace) -> Any:
    changes = {name: getattr(args, name) for name in ("task", "input_shape", "dtype", "num_classes", "classes")
               if getattr(args, name) is not None}
    if changes or args.confirm:
        return client.edit_dataset_schema(args.id, **changes)
    return client.get_dataset_schema(args.id)


@command("datasets", "delete", help="delete a dataset", args=[arg("id")])
def datasets_delete(client: Client, args: argparse.Namespace) -> None:
    client.delete_dataset(args.id)
    say(args, f"Deleted dataset {args.id}.", deleted=args.id)


# -- models ---------------------------------------------------------------------------------------------
@command("models", "upload", help="upload a .py model template (model developers)", columns=MODEL_COLUMNS, args=[
    arg("name"), arg("file", type=Path), arg("--task", default="IMAGE_CLASSIFICATION"),
    arg("--class-name", help="the template class (default: the one BaseModel subclass)"),
    arg("--public", action="store_true", help="let every developer use it"),
])
def models_upload(client: Client, args: argparse.Namespace) -> Any:
    return client.upload_model(args.name, args.task, args.file, class_name=args.class_name,
                               access_right="PUBLIC" if args.public else "PRIVATE")


@command("models", "list", help="list the templates you can use", columns=MODEL_COLUMNS, args=[arg("--task")])
def models_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_models, task=args.task))


@command("models", "show", help="one model template, with its knobs", columns=(*MODEL_COLUMNS, "knob_config"),
         args=[arg("id")])
def models_show(client: Client, args: argparse.Namespace) -> Any:
    return client.get_model(args.id)


@command("models", "access", help="make a template you uploaded PUBLIC (opted-in apps it fits get it tuned) or "
         "PRIVATE", columns=MODEL_COLUMNS, args=[arg("id"), arg("access_right", choices=["PUBLIC", "PRIVATE"])])
def models_access(client: Client, args: argparse.Namespace) -> Any:
    return client.set_model_access(args.id, args.access_right)


@command("models", "delete", help="delete a template you uploaded", args=[arg("id")])
def models_delete(client: Client, args: argparse.Namespace) -> None:
    client.delete_model(args.id)
    say(args, f"Deleted model {args.id}.", deleted=args.id)


# -- train jobs, trials ---------------------------------------------------------------------------------
APP_VERSION = (arg("app"), arg("version", type=int))


@command("train", help="start a train job (the next version of an app)", args=[
    arg("--app", required=True), arg("--task", help="default: the training dataset's"),
    arg("--train", required=True, metavar="DATASET_ID", help="training dataset id"),
    arg("--val", required=True, metavar="DATASET_ID", help="validation dataset id"),
    arg("--model", action="append", metavar="MODEL_ID", help="repeat for more models (none: every template "
        "whose declared schema fits the training data)"),
    arg("--trials", type=int, default=5, help="MODEL_TRIAL_COUNT (per model)"),
    arg("--hours", type=float, default=1.0, help="TIME_HOURS"),
    arg("--gpus", type=int, default=0, help="GPU_COUNT"),
    arg("--workers", type=int, default=1, help="WORKERS per model"),
    arg("--no-early-stop", action="store_true", help="never stop a trial early"),
    arg("--pruner", choices=PRUNERS, default="median", help="PRUNER: how hopeless trials are found after each epoch"),
    arg("--asha-min-epochs", type=int, metavar="N", help="ASHA_MIN_EPOCHS: epochs before the first rung"),
    arg("--asha-eta", type=int, metavar="ETA", help="ASHA_REDUCTION_FACTOR: each rung keeps the best 1/ETA"),
    arg("--asha-brackets", type=int, metavar="B", help="ASHA_BRACKETS (asha_promote): asynchronous Hyperband "
        "over B brackets, bracket j judging first at ASHA_MIN_EPOCHS·ETA^j epochs"),
    arg("--mop", action="store_true", help="MOP: model hopper parallelism over shards of the training set"),
    arg("--seed", type=int, metavar="S", help="SEED: the search's random seed (the same seed proposes the same "
        "knob sets)"),
])
def train(client: Client, args: argparse.Namespace) -> Any:
    try:
        budget = TrainBudget(model_trial_count=args.trials, time_hours=args.hours, gpu_count=args.gpus,
                             workers=args.workers, early_stop=not args.no_early_stop, pruner=args.pruner,
                             mop=args.mop, asha_min_epochs=args.asha_min_epochs,
                             asha_reduction_factor=args.asha_eta, asha_brackets=args.asha_brackets,
                             seed=args.seed)
    except ValueError as error:
        raise CliError(str(error), exit_code=2) from None
    job = client.create_train_job(args.app, args.task, args.train, args.val, args.model, budget=budget)
    if args.json:
        return job
    print(f"Train job {job.app} v{job.app_version}: {job.status}, {len(job.sub_train_jobs)} model(s), "
          f"budget {json.dumps(job.budget)}")
    reasons = {c["model_id"]: c["reason"] for c in (job.candidates or {}).get("chosen", [])}
    for sub in job.sub_train_jobs:
        print(f"  {sub.model_name}: {len(sub.services)} service(s) "
              f"({', '.join(sorted({f'{s.kind} {s.status}/{s.launcher}' for s in sub.services}))})")
        if sub.model_id in reasons:
            print(f"    chosen: {reasons[sub.model_id]}")
    print(f"Follow it with: easel trials {job.app} {job.app_version}")
    return None


@command("jobs", "list", help="list your train jobs", columns=TRAIN_JOB_COLUMNS, args=[arg("--app")], default=True)
def jobs_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_train_jobs, app=args.app))


@command("jobs", "show", help="one train job", columns=(*TRAIN_JOB_COLUMNS, "budget"), args=APP_VERSION)
def jobs_show(client: Client, args: argparse.Namespace) -> Any:
    return client.get_train_job(args.app, args.version)


@command("jobs", "stop", help="stop a train job's services and unfinished trials", columns=TRAIN_JOB_COLUMNS,
         args=APP_VERSION)
def jobs_stop(client: Client, args: argparse.Namespace) -> Any:
    return client.stop_train_job(args.app, args.version)


@command("pool", help="the shared train pool: each user's share of its workers, and why",
         columns=("user_id", "workers_now", "assignments", "recent_share", "floor_assignments", "waiting",
                  "owed_s", "last_reason", "last_rate"))
def pool(client: Client, args: argparse.Namespace) -> Any:
    state = client.get_pool()
    if args.json:
        return state
    if not state.enabled:
        print(f"No shared train pool: each train job runs its own workers (pool size {state.size}).")
        return None
    print(f"Train pool: {state.live_workers}/{state.size} workers live, policy {state.policy}, "
          f"{state.assignments} assignment(s)")
    print(f"Fairness floor: {state.fairness_floor}")
    for worker in state.workers:
        doing = (f"job {worker.train_job_id} ({worker.reason}"
                 + (f", {worker.rate:.3g}/s)" if worker.rate is not None else ")")) if worker.user_id else (
                 "busy" if worker.busy else "free")
        print(f"  {worker.worker}: {doing}")
    return state.users


@command("trials", help="list the trials of a train job", columns=TRIAL_COLUMNS, args=[
    *APP_VERSION, arg("--best", type=int, help="only the k best completed trials"),
    arg("--objective", choices=["full_width", "mean_across_rates"], help="what --best ranks by"),
])
def trials(client: Client, args: argparse.Namespace) -> Any:
    if args.best:
        items = client.list_trials(args.app, args.version, best=args.best, objective=args.objective).items
    else:
        items = list(client.iter_all(client.list_trials, args.app, args.version))
    if not args.json:
        print(f"{len(items)} trial(s) of {args.app} v{args.version}")
    return items


@command("trial", help="one trial: knobs, score, per-rate profile, error", args=[arg("id")],
         columns=(*TRIAL_COLUMNS, "attempts", "error"))
def trial(client: Client, args: argparse.Namespace) -> Any:
    return client.get_trial(args.id)


@command("logs", help="a trial's log lines (with per-epoch metrics), oldest first", columns=LOG_COLUMNS,
         args=[arg("trial_id")])
def logs(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.get_trial_logs, args.trial_id))


@command("params", help="save a trial's trained parameters (safetensors) to a file", args=[
    arg("trial_id"), arg("file", type=Path)])
def params(client: Client, args: argparse.Namespace) -> None:
    path = client.download_trial_parameters(args.trial_id, args.file)
    say(args, f"Saved {path.stat().st_size} bytes to {path}.", path=str(path), bytes=path.stat().st_size)


# -- inference jobs, predictions ------------------------------------------------------------------------
@command("deploy", help="deploy an app version's best trials (an inference job)", args=[
    arg("app"), arg("version", type=int, nargs="?", default=-1, help="default: the latest version"),
    arg("--workers", type=int, default=1), arg("--gpus", type=int, default=0),
    arg("--model-version", type=int, help="serve this registered model version (default: the best trials)"),
])
def deploy(client: Client, args: argparse.Namespace) -> Any:
    job = client.create_inference_job(args.app, args.version, workers=args.workers, gpu_count=args.gpus,
                                      model_version=args.model_version)
    if args.json:
        return job
    print(f"Inference job for {job.app} v{job.app_version}: {job.status}, {job.workers} worker(s), "
          f"trials {', '.join(job.trial_ids)}")
    print(f"Predictor: {job.predictor_url or 'not serving yet (the URL appears once the predictor runs)'}")
    return None


@command("inference", "list", help="list your inference jobs", columns=INFERENCE_COLUMNS, args=[arg("--app")],
         default=True)
def inference_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_inference_jobs, app=args.app))


@command("inference", "show", help="an app version's running (else latest) inference job",
         columns=(*INFERENCE_COLUMNS, "trial_ids"), args=APP_VERSION)
def inference_show(client: Client, args: argparse.Namespace) -> Any:
    return client.get_inference_job(args.app, args.version)


@command("inference", "stop", help="stop an inference job (drains it, then stops its services)",
         columns=INFERENCE_COLUMNS, args=APP_VERSION)
def inference_stop(client: Client, args: argparse.Namespace) -> Any:
    return client.stop_inference_job(args.app, args.version)


@command("keys", "create", help="create an API key of an app version's inference job (the secret is shown once)",
         args=[*APP_VERSION, arg("--name", default="default", help="a label to tell your keys apart")])
def keys_create(client: Client, args: argparse.Namespace) -> Any:
    key = client.create_api_key(args.app, args.version, args.name)
    if args.json:
        return key
    print(f"API key {key.id} ({key.name}) of {args.app} v{args.version}. The secret, shown only now:")
    print(key.key)
    print("Use it with `easel predict --key ...` or EASEL_API_KEY, or send `Authorization: Bearer <key>`.")
    return None


@command("keys", "list", help="list an inference job's API keys (no secrets)", columns=KEY_COLUMNS,
         args=APP_VERSION)
def keys_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_api_keys, args.app, args.version))


@command("keys", "revoke", help="revoke an API key (its predictor refuses it within seconds)",
         args=[*APP_VERSION, arg("key_id")])
def keys_revoke(client: Client, args: argparse.Namespace) -> None:
    client.revoke_api_key(args.app, args.version, args.key_id)
    say(args, f"Revoked API key {args.key_id} of {args.app} v{args.version}.", revoked=args.key_id)


@command("predict", help="predict instances from .npy/.npz/.json/image files, or JSON on stdin",
         columns=PREDICTION_COLUMNS, args=[
             *APP_VERSION,
             arg("files", nargs="*", metavar="FILE",
                 help="'-' or none: JSON on stdin (a list of instances, or {\"instances\": [...]})"),
             arg("--deadline", type=float, default=1.0, help="seconds to answer each instance by"),
             arg("--size", type=int, nargs=2, metavar=("H", "W"), help="resize images to H x W"),
             arg("--grayscale", action="store_true", help="read images as one channel"),
             arg("--predictor-url", help="skip looking the inference job up"),
             arg("--key", help="an API key of the inference job (default: EASEL_API_KEY); see `easel keys create`"),
         ])
def predict(client: Client, args: argparse.Namespace) -> Any:
    from sdk.instances import read_instances

    try:
        instances = read_instances(args.files, sys.stdin, size=args.size, grayscale=args.grayscale)
    except ValueError as error:
        raise CliError(str(error)) from None
    # Without a key the predictor's 401 says how to get one.
    answer = client.predict(args.app, args.version, instances, args.deadline, predictor_url=args.predictor_url,
                            api_key=args.key or os.environ.get("EASEL_API_KEY"))
    if args.json:
        return answer
    print(f"{answer.served} served, {answer.dropped} dropped of {len(answer)} instance(s)")
    return answer.predictions


@command("explain", help="explain one instance with Grad-CAM or LIME (runs off the deadline path)", args=[
    *APP_VERSION,
    arg("file", metavar="FILE", help="instances as `predict` reads them (.npy, .npz x, .json, images)"),
    arg("--index", type=int, default=0, help="which instance of FILE (default: the first)"),
    arg("--method", choices=["gradcam", "lime"], default="gradcam"),
    arg("--rate", type=float, help="slice rate to explain (default: full width)"),
    arg("--samples", type=int, help="LIME: perturbed samples"),
    arg("--target-class", type=int, help="class to explain (default: the predicted one)"),
    arg("--layer", help="Grad-CAM: a convolution's module name"),
    arg("--out", type=Path, help="folder to write the overlay PNG into (images)"),
])
def explain(client: Client, args: argparse.Namespace) -> Any:
    from sdk.instances import read_instances

    try:
        instances = read_instances([args.file], sys.stdin)
    except ValueError as error:
        raise CliError(str(error)) from None
    if not 0 <= args.index < len(instances):
        raise CliError(f"--index {args.index}: {args.file} holds {len(instances)} instance(s)")
    options = {k: v for k, v in {"num_samples": args.samples, "target_class": args.target_class,
                                 "layer": args.layer}.items() if v is not None}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    result = client.explain(args.app, args.version, instances[args.index], args.method, slice_rate=args.rate,
                            options=options, save_overlay=args.out if args.out and not args.json else None)
    if args.json:
        return result
    print(f"Explanation {result.id} ({result.method} at slice rate {result.slice_rate:g}): label {result.label}, "
          f"p={max(result.probabilities or [0.0]):.3f}, computed in {result.compute_s or 0.0:.2f}s")
    if result.details.get("target_layer"):
        print(f"  Grad-CAM target layer: {result.details['target_layer']}")
    for name, weight in result.top_features():
        print(f"  {name:<20} {weight:+.4f}")
    if args.out is not None and result.overlay_png:
        print(f"  overlay written to {args.out / f'{result.id}-{result.method}.png'}")
    return None


# -- shell completion -----------------------------------------------------------------------------------
@command("completion", help="print the shell code that enables tab completion: eval \"$(easel completion bash)\"",
         needs="nothing", args=[arg("shell", choices=SHELLS, nargs="?", default="bash")])
def completion(args: argparse.Namespace) -> None:
    try:
        import argcomplete
    except ImportError:
        raise CliError("tab completion needs argcomplete: pip install 'easel-sdk[completion]' (or argcomplete)") from None

    print(argcomplete.shellcode(["easel"], shell=args.shell))


# -- model registry, rolling updates ---------------------------------------------------------------------
@command("versions", "list", help="an app's model versions and their stages", columns=VERSION_COLUMNS,
         args=[arg("app")])
def versions_list(client: Client, args: argparse.Namespace) -> Any:
    return list(client.iter_all(client.list_versions, args.app))


@command("versions", "register", help="register a trial as the app's next version (staging)",
         columns=VERSION_COLUMNS, args=[
             arg("app"), arg("--trial", help="the trial id (default: the best of --train-version)"),
             arg("--train-version", type=int, default=-1, help="the train job's version (default: the latest)"),
         ])
def versions_register(client: Client, args: argparse.Namespace) -> Any:
    return client.register_version(args.app, trial_id=args.trial, app_version=args.train_version)


@command("versions", "history", help="a version's stage history (who moved it, when, why)",
         columns=HISTORY_COLUMNS, args=[arg("app"), arg("number", type=int)])
def versions_history(client: Client, args: argparse.Namespace) -> Any:
    return client.get_version(args.app, args.number).history


@command("versions", "verdicts", help="the promotion gate's verdicts on a version", columns=VERDICT_COLUMNS,
         args=[arg("app"), arg("number", type=int)])
def versions_verdicts(client: Client, args: argparse.Namespace) -> Any:
    return client.list_verdicts(args.app, args.number)


@command("versions", "stage", help="move a version to staging, production (through the gate) or archived", args=[
    arg("app"), arg("number", type=int), arg("stage", choices=("staging", "production", "archived")),
    arg("--dataset", help="the held-out dataset id the gate measures on (needed for production)"),
    arg("--tolerance", type=float, help="the gate's tolerance (default: the server's)"),
    arg("--override", action="store_true", help="admins: promote whatever the gate says (recorded)"),
    arg("--reason", default="", help="why, for the history"),
])
def versions_stage(client: Client, args: argparse.Namespace) -> Any:
    version, verdict = client.set_stage(args.app, args.number, args.stage, dataset_id=args.dataset,
                                        tolerance=args.tolerance, override=args.override, reason=args.reason)
    if args.json:
        return {"version": version, "verdict": verdict}
    print(f"{version.app} #{version.number} is {version.stage}")
    if verdict is not None:
        print(f"gate: passed={verdict.passed} overridden={verdict.overridden} tolerance={verdict.tolerance}")
        for row in verdict.numbers.get("rates", []):
            print("  " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    return None


@command("versions", "deploy", help="roll an app version's inference job over to a model version (or back)",
         columns=UPDATE_COLUMNS, args=[
             arg("app"), arg("version", type=int, help="the inference job's app version"),
             arg("model_version", type=int, help="the registered model version to serve"),
             arg("--wait", action="store_true", help="wait until the update has ended"),
         ])
def versions_deploy(client: Client, args: argparse.Namespace) -> Any:
    update = client.update_inference_job(args.app, args.version, args.model_version)
    if args.wait:
        update = client.wait_inference_job_update(args.app, args.version, update.id)
        if update.status == "ERRORED":
            raise CliError(f"update {update.id} ERRORED (the old version keeps serving): {update.error}")
    return update


@command("versions", "updates", help="an inference job's rolling updates, newest first", columns=UPDATE_COLUMNS,
         args=[arg("app"), arg("version", type=int, help="the inference job's app version")])
def versions_updates(client: Client, args: argparse.Namespace) -> Any:
    return client.list_inference_job_updates(args.app, args.version)



# -- apps -------------------------------------------------------------------------------------------------
def _on_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise argparse.ArgumentTypeError("use on or off")
    return text.lower() == "on"


@command("apps", "show", help="an app's options", columns=APP_COLUMNS, args=[arg("app")])
def apps_show(client: Client, args: argparse.Namespace) -> Any:
    return client.get_app(args.app)


@command("apps", "set", help="opt an app in or out of auto-update and auto-tune", columns=APP_COLUMNS, args=[
    arg("app"),
    arg("--auto-update", type=_on_off, metavar="on|off",
        help="roll its running inference jobs over to each version the promotion gate passes"),
    arg("--auto-tune", type=_on_off, metavar="on|off",
        help="tune newly published templates that fit its data, within its latest train job's budget"),
])
def apps_set(client: Client, args: argparse.Namespace) -> Any:
    return client.set_app(args.app, auto_update=args.auto_update, auto_tune=args.auto_tune)
