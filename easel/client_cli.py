"""The ``easel`` verbs that talk to admin through the SDK (and ``easel admin``, which serves it).

Example session::

    easel up
    easel login --email superadmin@easel.local          # prompts for the password
    easel datasets upload digits-train train.npz --task IMAGE_CLASSIFICATION
    easel datasets upload digits-val val.npz --task IMAGE_CLASSIFICATION
    easel models list
    easel train --app digits --task IMAGE_CLASSIFICATION --train <id> --val <id> --model <id> --trials 10
    easel trials digits 1 --best 3
    easel deploy digits 1 --workers 2

``easel`` does not import the ``admin`` package (``easel admin`` runs ``python -m admin``); the SDK is
imported only when a client verb runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from easel.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = "credentials.json"


class CliError(Exception):
    """A client verb failed; the message is printed, the exit code returned."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- credentials ----------------------------------------------------------------------------------------
def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS


def load_credentials(settings: Settings) -> dict[str, Any]:
    try:
        data = json.loads(credentials_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_credentials(settings: Settings, data: dict[str, Any]) -> Path:
    path = credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
    return path


def _url(settings: Settings, args: argparse.Namespace) -> str:
    return (getattr(args, "url", None) or load_credentials(settings).get("url") or settings.resolved_admin_url).rstrip("/")


def make_client(settings: Settings, args: argparse.Namespace, *, authenticated: bool = True) -> Any:
    from sdk import Client

    url = _url(settings, args)
    token = None
    if authenticated:
        saved = load_credentials(settings)
        if saved.get("url") == url:
            token = saved.get("token")
        if not token:
            raise CliError(f"not logged in to {url}: run `easel login` first")
    return Client(url, token)


def _sdk_call(function: Any, *args: Any, **kwargs: Any) -> Any:
    from sdk import EaselError, Unauthorized

    try:
        return function(*args, **kwargs)
    except Unauthorized as error:
        raise CliError(f"{error.detail} (run `easel login`)") from None
    except EaselError as error:
        raise CliError(str(error)) from None


# -- output ---------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _emit(args: argparse.Namespace, value: Any, columns: list[str], title: str | None = None) -> None:
    items = list(value) if isinstance(value, list) else [value]
    if getattr(args, "json", False):
        print(json.dumps(_plain(value), indent=2))
        return
    if title:
        print(title)
    rows = [[_cell(getattr(item, column, "")) for column in columns] for item in items]
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns)]
    print("  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns)).rstrip())
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None

    def report(sent: int, total: int) -> None:
        percent = 100.0 * sent / total if total else 100.0
        print(f"\r  uploading: {sent}/{total} bytes ({percent:5.1f}%)", end="" if sent < total else "\n",
              file=sys.stderr, flush=True)

    return report


# -- verbs ----------------------------------------------------------------------------------------------
def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "admin", "--log-level", args.log_level]
    if args.host:
        argv += ["--host", args.host]
    if args.port:
        argv += ["--port", str(args.port)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    print(f"Serving the admin API on http://{args.host or settings.admin_host}:{args.port or settings.admin_port}"
          " (Ctrl-C stops it)", flush=True)
    process = subprocess.Popen(argv, env=env, cwd=PROJECT_ROOT)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait() or 130


def cmd_login(settings: Settings, args: argparse.Namespace) -> int:
    email = args.email or os.environ.get("EASEL_EMAIL") or input("e-mail: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = os.environ.get("EASEL_PASSWORD") or getpass.getpass("password: ")
    with make_client(settings, args, authenticated=False) as client:
        token = _sdk_call(client.login, email, password)
    path = save_credentials(settings, {"url": client.base_url, "token": token.token, "email": token.user.email,
                                       "expires_at": token.expires_at.isoformat()})
    print(f"Logged in to {client.base_url} as {token.user.email} ({token.user.role}); "
          f"the token expires at {token.expires_at:%Y-%m-%d %H:%M:%S %Z} and is saved in {path}")
    return 0


def cmd_logout(settings: Settings, _args: argparse.Namespace) -> int:
    credentials_path(settings).unlink(missing_ok=True)
    print("Logged out (the saved token was deleted).")
    return 0


def cmd_whoami(settings: Settings, args: argparse.Namespace) -> int:
    with make_client(settings, args) as client:
        _emit(args, _sdk_call(client.me), ["id", "email", "role", "created_at"])
    return 0


def cmd_datasets(settings: Settings, args: argparse.Namespace) -> int:
    columns = ["id", "name", "task", "format", "num_samples", "num_classes", "size_bytes", "created_at"]
    with make_client(settings, args) as client:
        if args.action == "upload":
            dataset = _sdk_call(client.upload_dataset, args.name, args.task, args.file,
                                progress=_progress(not args.quiet and not args.json))
            _emit(args, dataset, columns)
        elif args.action == "list":
            _emit(args, _sdk_call(lambda: list(client.iter_all(client.list_datasets, task=args.task))), columns)
        else:
            _sdk_call(client.delete_dataset, args.id)
            print(f"Deleted dataset {args.id}.")
    return 0


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    columns = ["id", "name", "task", "source", "model_class", "access_right"]
    with make_client(settings, args) as client:
        if args.action == "upload":
            model = _sdk_call(client.upload_model, args.name, args.task, args.file, class_name=args.class_name,
                              access_right="PUBLIC" if args.public else "PRIVATE")
            _emit(args, model, columns)
        else:
            _emit(args, _sdk_call(lambda: list(client.iter_all(client.list_models, task=args.task))), columns)
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from sdk import TrainBudget

    budget = TrainBudget(model_trial_count=args.trials, time_hours=args.hours, gpu_count=args.gpus,
                         workers=args.workers, early_stop=not args.no_early_stop)
    with make_client(settings, args) as client:
        job = _sdk_call(client.create_train_job, args.app, args.task, args.train, args.val, args.model, budget=budget)
    if args.json:
        _emit(args, job, [])
        return 0
    print(f"Train job {job.app} v{job.app_version}: {job.status}, {len(job.sub_train_jobs)} model(s), "
          f"budget {json.dumps(job.budget)}")
    for sub in job.sub_train_jobs:
        print(f"  {sub.model_name}: {len(sub.services)} service(s) "
              f"({', '.join(sorted({f'{s.kind} {s.status}/{s.launcher}' for s in sub.services}))})")
    print(f"Follow it with: easel trials {job.app} {job.app_version}")
    return 0


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    with make_client(settings, args) as client:
        jobs = _sdk_call(lambda: list(client.iter_all(client.list_train_jobs, app=args.app)))
    _emit(args, jobs, ["app", "app_version", "task", "status", "created_at", "stopped_at"])
    return 0


def cmd_trials(settings: Settings, args: argparse.Namespace) -> int:
    with make_client(settings, args) as client:
        if args.best:
            trials = _sdk_call(client.list_trials, args.app, args.version, best=args.best).items
        else:
            trials = _sdk_call(lambda: list(client.iter_all(client.list_trials, args.app, args.version)))
    _emit(args, trials, ["no", "id", "model_name", "status", "score", "knobs"],
          None if args.json else f"{len(trials)} trial(s) of {args.app} v{args.version}")
    return 0


def cmd_deploy(settings: Settings, args: argparse.Namespace) -> int:
    with make_client(settings, args) as client:
        job = _sdk_call(client.create_inference_job, args.app, args.version, workers=args.workers, gpu_count=args.gpus)
    if args.json:
        _emit(args, job, [])
        return 0
    print(f"Inference job for {job.app} v{job.app_version}: {job.status}, {job.workers} worker(s), "
          f"trials {', '.join(job.trial_ids)}")
    print(f"Predictor: {job.predictor_url or 'not serving yet (the URL appears once the predictor runs)'}")
    return 0


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    """One instance from a ``.npy``/``.npz`` (``x``) or ``.json`` file (``--index`` picks a row of a batch)."""
    import numpy as np

    path = Path(args.input)
    if path.suffix == ".json":
        data = np.asarray(json.loads(path.read_text()), dtype=np.float32)
    elif path.suffix == ".npy":
        data = np.load(path, allow_pickle=False).astype(np.float32)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive:
                raise CliError(f"{path.name} has no array named x")
            data = archive["x"].astype(np.float32)
    else:
        raise CliError(f"{path.name}: give the instance as .json, .npy or .npz (array x)")
    instance = data[args.index] if args.index is not None else data
    options = {k: v for k, v in {"num_samples": args.samples, "target_class": args.target_class,
                                 "layer": args.layer}.items() if v is not None}
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    with make_client(settings, args) as client:
        result = _sdk_call(client.explain, args.app, args.version, instance.tolist(), args.method,
                           slice_rate=args.rate, options=options, save_overlay=out if out else None)
    if args.json:
        _emit(args, result, [])
        return 0
    print(f"Explanation {result.id} ({result.method} at slice rate {result.slice_rate:g}): label {result.label}, "
          f"p={max(result.probabilities or [0.0]):.3f}, computed in {result.compute_s or 0.0:.2f}s")
    if result.details.get("target_layer"):
        print(f"  Grad-CAM target layer: {result.details['target_layer']}")
    for name, weight in result.top_features():
        print(f"  {name:<20} {weight:+.4f}")
    if out is not None and result.overlay_png:
        print(f"  overlay written to {out / f'{result.id}-{result.method}.png'}")
    return 0


# -- parser ---------------------------------------------------------------------------------------------
def add_commands(sub: Any) -> None:
    """Add the client verbs (and ``admin``) to ``easel``'s subparsers; each sets ``handler``."""
    admin = sub.add_parser("admin", help="serve the admin REST API in the foreground")
    admin.add_argument("--host", help="bind address (default EASEL_ADMIN_HOST)")
    admin.add_argument("--port", type=int, help="port (default EASEL_ADMIN_PORT)")
    admin.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    admin.set_defaults(handler=cmd_admin)

    def client_parser(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help_text)
        parser.add_argument("--url", help="admin's URL (default: the logged-in one, else EASEL_ADMIN_URL/host/port)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return parser

    login = client_parser("login", "log in to admin and save the token")
    login.add_argument("--email", help="default: EASEL_EMAIL, else asked")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin "
                       "(default: EASEL_PASSWORD, else asked without echo)")
    login.set_defaults(handler=cmd_login)
    sub.add_parser("logout", help="forget the saved token").set_defaults(handler=cmd_logout)
    client_parser("whoami", "show the logged-in user").set_defaults(handler=cmd_whoami)

    datasets = sub.add_parser("datasets", help="upload, list and delete datasets")
    actions = datasets.add_subparsers(dest="action", required=True)
    upload = client_parser("upload", "upload a .zip of class folders, a .npz or a .csv", actions)
    upload.add_argument("name")
    upload.add_argument("file", type=Path)
    upload.add_argument("--task", default="IMAGE_CLASSIFICATION")
    upload.add_argument("--quiet", action="store_true", help="no progress line")
    listing = client_parser("list", "list your datasets", actions)
    listing.add_argument("--task")
    delete = client_parser("delete", "delete a dataset", actions)
    delete.add_argument("id")
    datasets.set_defaults(handler=cmd_datasets)

    models = sub.add_parser("models", help="upload and list model templates")
    actions = models.add_subparsers(dest="action", required=True)
    upload = client_parser("upload", "upload a .py model template (model developers)", actions)
    upload.add_argument("name")
    upload.add_argument("file", type=Path)
    upload.add_argument("--task", default="IMAGE_CLASSIFICATION")
    upload.add_argument("--class-name", help="the template class (default: the one BaseModel subclass)")
    upload.add_argument("--public", action="store_true", help="let every developer use it")
    listing = client_parser("list", "list the templates you can use", actions)
    listing.add_argument("--task")
    models.set_defaults(handler=cmd_models)

    train = client_parser("train", "start a train job (the next version of an app)")
    train.add_argument("--app", required=True)
    train.add_argument("--task", default="IMAGE_CLASSIFICATION")
    train.add_argument("--train", required=True, metavar="DATASET_ID", help="training dataset id")
    train.add_argument("--val", required=True, metavar="DATASET_ID", help="validation dataset id")
    train.add_argument("--model", required=True, action="append", metavar="MODEL_ID", help="repeat for more models")
    train.add_argument("--trials", type=int, default=5, help="MODEL_TRIAL_COUNT (per model)")
    train.add_argument("--hours", type=float, default=1.0, help="TIME_HOURS")
    train.add_argument("--gpus", type=int, default=0, help="GPU_COUNT")
    train.add_argument("--workers", type=int, default=1, help="WORKERS per model")
    train.add_argument("--no-early-stop", action="store_true", help="never stop a trial early")
    train.set_defaults(handler=cmd_train)

    jobs = client_parser("jobs", "list your train jobs")
    jobs.add_argument("--app")
    jobs.set_defaults(handler=cmd_jobs)

    trials = client_parser("trials", "list the trials of a train job")
    trials.add_argument("app")
    trials.add_argument("version", type=int)
    trials.add_argument("--best", type=int, help="only the k best completed trials")
    trials.set_defaults(handler=cmd_trials)

    deploy = client_parser("deploy", "deploy an app version's best trials (an inference job)")
    deploy.add_argument("app")
    deploy.add_argument("version", type=int, nargs="?", default=-1, help="default: the latest version")
    deploy.add_argument("--workers", type=int, default=1)
    deploy.add_argument("--gpus", type=int, default=0)
    deploy.set_defaults(handler=cmd_deploy)

    explain = client_parser("explain", "explain one instance with LIME or Grad-CAM (runs off the deadline path)")
    explain.add_argument("app")
    explain.add_argument("version", type=int)
    explain.add_argument("input", help="the instance: .json, .npy, or .npz with an array x")
    explain.add_argument("--index", type=int, help="row of a batch in the file (default: the file is one instance)")
    explain.add_argument("--method", choices=["gradcam", "lime"], default="gradcam")
    explain.add_argument("--rate", type=float, help="slice rate to explain (default: full width)")
    explain.add_argument("--samples", type=int, help="LIME: perturbed samples")
    explain.add_argument("--target-class", type=int, help="class to explain (default: the predicted one)")
    explain.add_argument("--layer", help="Grad-CAM: a convolution's module name")
    explain.add_argument("--out", help="folder to write the overlay PNG into")
    explain.set_defaults(handler=cmd_explain)
