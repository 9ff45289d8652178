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

This module imports only the SDK (httpx) and, when installed (the `completion` extra), argcomplete. The platform's server verbs (``up``, ``down``,
``status``, ``admin``) are not here: an installed distribution contributes verbs through the entry-point
group ``easel.cli`` — an object ``register(subparsers)`` that adds parsers each setting
``handler(args) -> int`` — so the SDK and the platform never import each other and users still have one
``easel`` command. Installed alone (``pip install ./sdk``), ``easel`` has the client verbs only.

Where it connects: ``--url``, else the URL saved by ``login``, else ``EASEL_ADMIN_URL``, else
``http://EASEL_ADMIN_HOST:EASEL_ADMIN_PORT`` (127.0.0.1:3000). ``login`` keeps the token in
``$EASEL_DATA_DIR/credentials.json`` (``~/.easel``; mode 600).

This module is the command's machinery (where to connect, output, the verb registry, the parser); the
verbs live in :mod:`sdk.verbs`. Adding a verb is one decorated function there that returns what to print
(a table of ``columns``, or JSON with ``--json``)::

    @command("models", "show", help="one model template", args=[arg("id")], columns=MODEL_COLUMNS)
    def models_show(client: Client, args: argparse.Namespace) -> Model:
        return client.get_model(args.id)
"""

from __future__ import annotations

import argparse
import dataclasses
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

PLUGIN_GROUP = "easel.cli"
CREDENTIALS = "credentials.json"


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
GROUPS: dict[str, str] = {}  # group name -> help, e.g. "datasets" (its actions are verbs)


def group(name: str, help: str) -> None:
    """Declare ``easel <name> <action>``'s help; its actions are verbs registered with ``("name", "action")``."""
    GROUPS[name] = help


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
    import sdk.verbs  # noqa: F401 - registers the client verbs

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
    except ImportError:  # argcomplete is the `completion` extra; without it there is no tab completion
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
