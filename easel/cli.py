"""The ``easel`` command line.

Local stack: ``up`` (PostgreSQL, Redis, Kafka broker, admin), ``down``, ``status``; ``admin`` serves the
admin API in the foreground. Service entry points (the container image's commands): ``advisor``,
``train-worker``, ``predictor``, ``inference-worker``. Client verbs (through the SDK, against admin's REST API): ``login``,
``logout``, ``whoami``, ``datasets upload|list|delete``, ``models upload|list``, ``train``, ``jobs``,
``trials``, ``deploy``. The token from ``login`` is kept in ``$EASEL_DATA_DIR/credentials.json`` (mode 600).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from easel import client_cli
from easel.local_stack import LocalStack, StackError
from easel.settings import Settings, SettingsError, get_settings
from easel.stack.admin_server import AdminPart


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    print(f"Starting the Easel stack in {settings.data_dir} ...", flush=True)
    began = time.perf_counter()
    report = LocalStack(settings).up(progress=_say)
    if not getattr(args, "no_admin", False):
        admin = AdminPart(settings)
        started = admin.start()
        _say(f"admin: {'started' if started else 'already running'} at {admin.url} (API docs at {admin.url}/docs)")
    print(f"Ready in {time.perf_counter() - began:.1f}s. Export these to point services at it:")
    for name, url in report.urls.items():
        print(f"  export {name}={url}")
    if not getattr(args, "no_admin", False):
        print(f"Log in with: easel login --email {settings.superadmin_email}")
    return 0


def cmd_down(settings: Settings, _args: argparse.Namespace) -> int:
    print(f"Stopping the Easel stack in {settings.data_dir} ...", flush=True)
    _say("admin: stopped" if AdminPart(settings).stop() else "admin: was not running")
    LocalStack(settings).down(progress=_say)
    return 0


def cmd_status(settings: Settings, _args: argparse.Namespace) -> int:
    health = [*LocalStack(settings).status(), AdminPart(settings).health()]
    print(f"{'part':<10} {'state':<10} {'pid':>7}  {'version':<48} url")
    for part in health:
        state = "healthy" if part.healthy else ("UNHEALTHY" if part.running else "stopped")
        print(f"{part.name:<10} {state:<10} {part.pid or '-':>7}  {(part.version or part.detail):<48} {part.url}")
    return 0 if all(part.healthy for part in health) else 1


# Service entry points (one image runs them all: ``easel advisor --sub-train-job-id ...``). The verb replaces
# this process with ``python -m <module>`` so the service is PID 1 in a container and gets signals directly.
SERVICE_VERBS = {
    "advisor": ("advisor", "run an advisor (Bayesian optimisation) for a sub-train-job"),
    "train-worker": ("train_worker", "run a train worker for a sub-train-job"),
    "predictor": ("predictor", "run the predictor (HTTP front) of an inference job"),
    "inference-worker": ("inference_worker", "run an inference worker of an inference job"),
}


def exec_service(verb: str, args: Sequence[str]) -> int:
    module = SERVICE_VERBS[verb][0]
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])
    return 1  # not reached


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
    "up": ("start PostgreSQL, Redis, the Kafka broker and admin; apply migrations", cmd_up),
    "down": ("stop the local stack (metadata is kept)", cmd_down),
    "status": ("show each part's health; exit 1 if any is not healthy", cmd_status),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easel", description="Easel: elastic model-sliced ML platform")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _handler) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name == "up":
            command.add_argument("--no-admin", action="store_true", help="start the data services only")
    client_cli.add_commands(sub)
    for verb, (module, help_text) in SERVICE_VERBS.items():
        service = sub.add_parser(verb, help=help_text, add_help=False,
                                 description=f"Runs python -m {module}; its arguments follow the verb.")
        service.add_argument("args", nargs=argparse.REMAINDER, help=f"arguments of python -m {module}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SERVICE_VERBS:  # the service parses its own arguments (and --help)
        return exec_service(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        if args.command in COMMANDS:
            return COMMANDS[args.command][1](settings, args)
        return args.handler(settings, args)
    except SettingsError as error:
        print(f"easel: {error}", file=sys.stderr)
        return 2
    except StackError as error:
        print(f"easel {args.command}: {error}", file=sys.stderr)
        return 1
    except client_cli.CliError as error:
        print(f"easel {args.command}: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
