"""The ``easel`` command: every user-facing SDK method from a shell, ``--json`` everywhere, tab completion.

Example session::

    easel login --email dev@example.org                 # prompts for the password
    easel datasets upload digits-train train.npz
    easel models list
    easel train --app digits --train <id> --val <id> --model <id> --trials 10 --workers 2
    easel trials digits 1 --best 3
    easel logs <trial id>
    easel deploy digits 1 --workers 2
    easel predict digits 1 images.npy --deadline 0.5     # or image files, or JSON on stdin
    easel inference stop digits 1
    eval "$(easel completion bash)"                      # tab completion (bash, zsh, fish)

This module imports only the SDK (httpx) and argcomplete. The platform's server verbs (``up``, ``down``,
``status``, ``admin``) are not here: an installed distribution contributes verbs through the entry-point
group ``easel.cli`` — an object ``register(subparsers)`` that adds parsers each setting
``handler(args) -> int`` — so the SDK and the platform never import each other and users still have one
``easel`` command. Installed alone (``pip install ./sdk``), ``easel`` has the client verbs only.

Where it connects: ``--url``, else the URL saved by ``login``, else ``EASEL_ADMIN_URL``, else
``http://EASEL_ADMIN_HOST:EASEL_ADMIN_PORT`` (127.0.0.1:3000). ``login`` keeps the token in
``$EASEL_DATA_DIR/credentials.json`` (``~/.easel``; mode 600).

Adding a verb is one decorated function that returns what to print (a table of ``columns``, or JSON)::

    @command("models", "show", help="one model template", args=[arg("id")], columns=MODEL_COLUMNS)
    def models_show(client: Client, args: argparse.Namespace) -> Model:
        return client.get_model(args.id)
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from sdk.client import Client
from sdk.errors import EaselError, Unauthorized
from sdk.types import TrainBudget

PLUGIN_GROUP = "easel.cli"
CREDENTIALS = "credentials.json"
SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")

DATASET_COLUMNS = ("id", "name", "task", "format", "num_samples", "num_classes", "size_bytes", "created_at")
MODEL_COLUMNS = ("id", "name", "task", "source", "model_class", "access_right")
USER_COLUMNS = ("id", "email", "role", "created_at", "banned_at")
TRAIN_JOB_COLUMNS = ("app", "app_version", "task", "status", "created_at", "stopped_at")
TRIAL_COLUMNS = ("no", "id", "model_name", "status", "score", "knobs")
INFERENCE_COLUMNS = ("app", "app_version", "status", "workers", "predictor_url", "created_at", "stopped_at")
LOG_COLUMNS = ("time", "level", "message")
PREDICTION_COLUMNS = ("index", "status", "label", "slice_rate", "latency_s")


class CliError(Exception):
    """A verb failed; the message is printed, the exit code returned."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- where to connect, and the saved token -----------------------------------------------------------------
def data_dir() -> Path:
    return Path(os.environ.get("EASEL_DATA_DIR") or "~/.easel").expanduser()


def credentials_path() -> Path:
    return data_dir() / CREDENTIALS


def load_credentials() -> dict[str, Any]:
    try:
        data = json.loads(credentials_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_credentials(data: dict[str, Any]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
    return path


def default_url() -> str:
    """``EASEL_ADMIN_URL``, else admin's host and port (the same variables admin reads)."""
    if os.environ.get("EASEL_ADMIN_URL"):
        return os.environ["EASEL_ADMIN_URL"]
    host = os.environ.get("EASEL_ADMIN_HOST") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{os.environ.get('EASEL_ADMIN_PORT') or 3000}"


def admin_url(args: argparse.Namespace) -> str:
    return (getattr(args, "url", None) or load_credentials().get("url") or default_url()).rstrip("/")


def connect(args: argparse.Namespace, *, authenticated: bool = True) -> Client:
    url = admin_url(args)
    token = None
    if authenticated:
        saved = load_credentials()
        token = saved.get("token") if saved.get("url") == url else None
        if not token:
            raise CliError(f"not logged in to {url}: run `easel login` first")
    return Client(url, token)


# -- output ---------------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """JSON-ready: dataclasses to dicts, datetimes to ISO strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def emit(args: argparse.Namespace, value: Any, columns: Sequence[str]) -> None:
    """``value`` (one record or a list) as JSON with ``--json``, else as a table of ``columns``."""
    if getattr(args, "json", False):
        print(json.dumps(plain(value), indent=2))
        return
    items = list(value) if isinstance(value, list) else [value]
    rows = [[_cell(getattr(item, column, "")) for column in columns] for item in items]
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns)]
    print("  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns)).rstrip())
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def say(args: argparse.Namespace, text: str, **fields: Any) -> None:
    """A one-line answer: the text, or with ``--json`` the fields."""
    print(json.dumps(plain(fields), indent=2) if getattr(args, "json", False) else text)


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    if args.quiet or args.json:
        return None

    def report(sent: int, total: int) -> None:
        percent = 100.0 * sent / total if total else 100.0
        print(f"\r  uploading: {sent}/{total} bytes ({percent:5.1f}%)", end="" if sent < total else "\n",
              file=sys.stderr, flush=True)

    return report


# -- the verb registry ----------------------------------------------------------------------------------
Arg = tuple[tuple[str, ...], dict[str, Any]]
Needs = Literal["login", "url", "nothing"]


def arg(*flags: str, **kwargs: Any) -> Arg:
    """One ``add_argument`` call, declared: ``arg("--deadline", type=float, default=1.0)``."""
    return flags, kwargs


@dataclass(frozen=True)
class Verb:
    path: tuple[str, ...]  # ("datasets", "upload"), or ("whoami",)
    help: str
    run: Callable[..., Any]  # run(client, args) (run(args) when needs == "nothing"); returns what to print
    args: tuple[Arg, ...]
    columns: tuple[str, ...]  # the table of what ``run`` returns; () when it prints for itself
    needs: Needs  # "login": a saved token; "url": an anonymous client; "nothing": no client
    default: bool  # the verb ``easel <group>`` runs without an action


VERBS: dict[tuple[str, ...], Verb] = {}
GROUPS = {
    "datasets": "upload, list, show and delete datasets",
    "models": "upload, list, show and delete model templates",
    "jobs": "list, show and stop train jobs (default: list)",
    "inference": "list, show and stop inference jobs (default: list)",
    "users": "create, list, show and ban users (admins)",
}


def command(*path: str, help: str, args: Iterable[Arg] = (), columns: Sequence[str] = (),
            needs: Needs = "login", default: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run`` as the verb ``easel <path...>``."""

    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        VERBS[tuple(path)] = Verb(tuple(path), help, run, tuple(args), tuple(columns), needs, default)
        return run

    return register


def run_verb(verb: Verb, args: argparse.Namespace) -> int:
    if verb.needs == "nothing":
        result = verb.run(args)
    else:
        try:
            with connect(args, authenticated=verb.needs == "login") as client:
                result = verb.run(client, args)
        except Unauthorized as error:
            raise CliError(f"{error.detail} (run `easel login`)") from None
        except EaselError as error:
            raise CliError(str(error)) from None
    if result is not None:
        emit(args, result, verb.columns)
    return 0


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
         args=[arg("name"), arg("file", type=Path), arg("--task", default="IMAGE_CLASSIFICATION"),
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


@command("models", "delete", help="delete a template you uploaded", args=[arg("id")])
def models_delete(client: Client, args: argparse.Namespace) -> None:
    client.delete_model(args.id)
    say(args, f"Deleted model {args.id}.", deleted=args.id)


# -- train jobs, trials ---------------------------------------------------------------------------------
APP_VERSION = (arg("app"), arg("version", type=int))


@command("train", help="start a train job (the next version of an app)", args=[
    arg("--app", required=True), arg("--task", default="IMAGE_CLASSIFICATION"),
    arg("--train", required=True, metavar="DATASET_ID", help="training dataset id"),
    arg("--val", required=True, metavar="DATASET_ID", help="validation dataset id"),
    arg("--model", required=True, action="append", metavar="MODEL_ID", help="repeat for more models"),
    arg("--trials", type=int, default=5, help="MODEL_TRIAL_COUNT (per model)"),
    arg("--hours", type=float, default=1.0, help="TIME_HOURS"),
    arg("--gpus", type=int, default=0, help="GPU_COUNT"),
    arg("--workers", type=int, default=1, help="WORKERS per model"),
    arg("--no-early-stop", action="store_true", help="never stop a trial early"),
])
def train(client: Client, args: argparse.Namespace) -> Any:
    budget = TrainBudget(model_trial_count=args.trials, time_hours=args.hours, gpu_count=args.gpus,
                         workers=args.workers, early_stop=not args.no_early_stop)
    job = client.create_train_job(args.app, args.task, args.train, args.val, args.model, budget=budget)
    if args.json:
        return job
    print(f"Train job {job.app} v{job.app_version}: {job.status}, {len(job.sub_train_jobs)} model(s), "
          f"budget {json.dumps(job.budget)}")
    for sub in job.sub_train_jobs:
        print(f"  {sub.model_name}: {len(sub.services)} service(s) "
              f"({', '.join(sorted({f'{s.kind} {s.status}/{s.launcher}' for s in sub.services}))})")
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
])
def deploy(client: Client, args: argparse.Namespace) -> Any:
    job = client.create_inference_job(args.app, args.version, workers=args.workers, gpu_count=args.gpus)
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


@command("predict", help="predict instances from .npy/.npz/.json/image files, or JSON on stdin",
         columns=PREDICTION_COLUMNS, args=[
             *APP_VERSION,
             arg("files", nargs="*", metavar="FILE",
                 help="'-' or none: JSON on stdin (a list of instances, or {\"instances\": [...]})"),
             arg("--deadline", type=float, default=1.0, help="seconds to answer each instance by"),
             arg("--size", type=int, nargs=2, metavar=("H", "W"), help="resize images to H x W"),
             arg("--grayscale", action="store_true", help="read images as one channel"),
             arg("--predictor-url", help="skip looking the inference job up"),
         ])
def predict(client: Client, args: argparse.Namespace) -> Any:
    from sdk.instances import read_instances

    try:
        instances = read_instances(args.files, sys.stdin, size=args.size, grayscale=args.grayscale)
    except ValueError as error:
        raise CliError(str(error)) from None
    answer = client.predict(args.app, args.version, instances, args.deadline, predictor_url=args.predictor_url)
    if args.json:
        return answer
    print(f"{answer.served} served, {answer.dropped} dropped of {len(answer)} instance(s)")
    return answer.predictions


# -- shell completion -----------------------------------------------------------------------------------
@command("completion", help="print the shell code that enables tab completion: eval \"$(easel completion bash)\"",
         needs="nothing", args=[arg("shell", choices=SHELLS, nargs="?", default="bash")])
def completion(args: argparse.Namespace) -> None:
    import argcomplete

    print(argcomplete.shellcode(["easel"], shell=args.shell))


# -- the parser -----------------------------------------------------------------------------------------
def _add_arguments(parser: argparse.ArgumentParser, verb: Verb) -> None:
    for flags, kwargs in verb.args:
        parser.add_argument(*flags, **kwargs)
    if verb.needs != "nothing":
        parser.add_argument("--url", help="admin's URL (default: the logged-in one, else EASEL_ADMIN_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(verb=verb)


def load_plugins() -> list[Callable[[Any], None]]:
    """``register`` functions of the installed ``easel.cli`` entry points (e.g. the platform's server verbs)."""
    plugins = []
    for point in entry_points(group=PLUGIN_GROUP):
        try:
            plugins.append(point.load())
        except Exception as error:  # a broken plugin must not take the client verbs down with it
            print(f"easel: ignoring CLI plugin {point.name} ({point.value}): {error}", file=sys.stderr)
    return plugins


def build_parser(plugins: Iterable[Callable[[Any], None]] | None = None) -> argparse.ArgumentParser:
    """The ``easel`` parser: the SDK's verbs, then each plugin's (default: the installed entry points)."""
    parser = argparse.ArgumentParser(prog="easel", description="Easel: elastic model-sliced ML platform")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for path, verb in VERBS.items():
        if len(path) == 1:
            _add_arguments(sub.add_parser(path[0], help=verb.help, description=verb.help), verb)
            continue
        group, action = path
        if group not in groups:
            group_parser = sub.add_parser(group, help=GROUPS[group], description=GROUPS[group])
            groups[group] = group_parser.add_subparsers(dest="action", metavar="ACTION")
            groups[group].required = not any(v.default for p, v in VERBS.items() if p[0] == group)
        if verb.default:  # `easel jobs --app x` is `easel jobs list --app x`
            _add_arguments(sub.choices[group], verb)
        _add_arguments(groups[group].add_parser(action, help=verb.help, description=verb.help), verb)
    for register in load_plugins() if plugins is None else plugins:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None, plugins: Iterable[Callable[[Any], None]] | None = None) -> int:
    parser = build_parser(plugins)
    try:
        import argcomplete

        argcomplete.autocomplete(parser)  # answers and exits when the shell asks for completions
    except ImportError:  # pragma: no cover - argcomplete is a dependency; completion is a convenience
        pass
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "handler"):  # a plugin's verb
            return int(args.handler(args))
        return run_verb(args.verb, args)
    except CliError as error:
        print(f"easel {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


__all__ = ["CliError", "PLUGIN_GROUP", "VERBS", "arg", "build_parser", "command", "emit", "load_plugins", "main"]
