"""The ``easel`` command line.

Local stack: ``up`` (PostgreSQL, Redis, Kafka broker, admin), ``down``, ``status``; ``admin`` serves the
admin API in the foreground. Client verbs (through the SDK, against admin's REST API): ``login``,
``logout``, ``whoami``, ``datasets upload|list|delete``, ``models upload|list``, ``train``, ``jobs``,
``trials``, ``deploy``. The token from ``login`` is kept in ``$EASEL_DATA_DIR/credentials.json`` (mode 600).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from easel import client_cli
from easel.local_stack import LocalStack, StackError
from easel.settings import Settings, SettingsError, get_settings
from easel.stack.admin_server import AdminPart
from easel.stack.job_services import JobServices


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


def _job_services(settings: Settings) -> JobServices | None:
    """The jobs' services, if the database is up to say what they are."""
    stack = LocalStack(settings)
    if not stack.postgres.health().healthy:
        return None
    return JobServices(settings)


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    jobs = _job_services(settings)
    try:
        if jobs is not None:
            live = jobs.live_jobs()
            if live and not args.force:
                print("easel down: these jobs are live; stop them first, or pass --force to stop (drain) their "
                      "services and mark them STOPPED:", file=sys.stderr)
                for job in live:
                    print(f"  {job.describe()}", file=sys.stderr)
                return 1
        print(f"Stopping the Easel stack in {settings.data_dir} ...", flush=True)
        # Admin first, so its supervisor does not relaunch what is being stopped.
        _say("admin: stopped" if AdminPart(settings).stop() else "admin: was not running")
        if jobs is not None:
            for row in jobs.stop_all(timeout_s=settings.serving_drain_s + 5.0):
                _say(f"{row.name}: {row.status.lower()}")
    finally:
        if jobs is not None:
            jobs.close()
    LocalStack(settings).down(progress=_say)
    return 0


def cmd_status(settings: Settings, _args: argparse.Namespace) -> int:
    health = [*LocalStack(settings).status(), AdminPart(settings).health()]
    print(f"{'part':<10} {'state':<10} {'pid':>7}  {'version':<48} url")
    for part in health:
        state = "healthy" if part.healthy else ("UNHEALTHY" if part.running else "stopped")
        print(f"{part.name:<10} {state:<10} {part.pid or '-':>7}  {(part.version or part.detail):<48} {part.url}")
    jobs = _job_services(settings)
    services_ok = True
    if jobs is not None:
        try:
            live = jobs.live_jobs()
            rows = jobs.services()  # reconciled with the process table: a dead process shows as ended
        finally:
            jobs.close()
        if live or rows:
            print(f"\n{'job service':<56} {'kind':<17} {'state':<8} {'pid':>7}")
            for row in rows:
                print(f"{row.name:<56} {row.kind:<17} {row.status:<8} {row.pid or '-':>7}")
            for job in live:
                print(f"live: {job.describe()}")
        services_ok = all(row.status == "RUNNING" for row in rows)
    return 0 if all(part.healthy for part in health) and services_ok else 1


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
    "up": ("start PostgreSQL, Redis, the Kafka broker and admin; apply migrations", cmd_up),
    "down": ("stop the local stack (metadata is kept); refuses while jobs are live unless --force", cmd_down),
    "status": ("show each part's health and the live jobs' services; exit 1 if any is not healthy", cmd_status),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easel", description="Easel: elastic model-sliced ML platform")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _handler) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name == "up":
            command.add_argument("--no-admin", action="store_true", help="start the data services only")
        if name == "down":
            command.add_argument("--force", action="store_true",
                                 help="stop (drain) the services of live jobs and mark the jobs STOPPED")
    client_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
