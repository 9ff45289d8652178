"""The platform's server verbs: ``up``, ``down``, ``status`` (the local stack), ``admin`` (serve the API) and
the service entry points of the container image: ``advisor``, ``train-worker``, ``predictor``,
``inference-worker``, ``explainer``.

Users have one ``easel`` command: the SDK owns it (``sdk/cli.py``: login, datasets, train, predict, ...) and
this module contributes the server verbs through the ``easel.cli`` entry-point group (see ``pyproject.toml``),
so neither imports the other. ``python -m easel`` runs the server verbs alone (what tests and the demo use).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from easel.credentials import ensure_local_credentials
from easel.local_stack import LocalStack, StackError
from easel.settings import Settings, SettingsError, get_settings
from easel.stack.admin_server import AdminPart
from easel.stack.job_services import JobServices

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    print(f"Starting the Easel stack in {settings.data_dir} ...", flush=True)
    began = time.perf_counter()
    settings, created = ensure_local_credentials(settings)
    report = LocalStack(settings).up(progress=_say)
    if created:
        # Shown this once; afterwards it lives only in the 0600 file (and the superadmin can change it).
        _say(f"generated a signing key and the superadmin password, kept in {settings.data_dir}/credentials.json:")
        _say(f"  superadmin {settings.superadmin_email} password: {settings.superadmin_password}")
    if not args.no_admin:
        admin = AdminPart(settings)
        started = admin.start()
        _say(f"admin: {'started' if started else 'already running'} at {admin.url} (API docs at {admin.url}/docs)")
    print(f"Ready in {time.perf_counter() - began:.1f}s. It listens at:")
    for name, url in report.urls.items():
        print(f"  {name}={url}")
    print(f"  (database passwords, per service role, in {settings.data_dir}/database.json — kept 0600; processes "
          "using this data dir find them there)")
    if not args.no_admin:
        print(f"Log in with: easel login --email {settings.superadmin_email}")
        print(f"Dashboard: {AdminPart(settings).url}/")
    return 0


def _job_services(settings: Settings) -> JobServices | None:
    """The jobs' services, if the database is up to say what they are."""
    if not LocalStack(settings).postgres.health().healthy:
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


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    health = [*LocalStack(settings).status(), AdminPart(settings).health()]
    jobs = _job_services(settings)
    live, rows = [], []
    if jobs is not None:
        try:
            live = jobs.live_jobs()
            rows = jobs.services()  # reconciled with the process table: a dead process shows as ended
        finally:
            jobs.close()
    if args.json:
        print(json.dumps({"parts": [dataclasses.asdict(part) for part in health],
                          "live_jobs": [dataclasses.asdict(job) for job in live],
                          "job_services": [dataclasses.asdict(row) for row in rows]}, indent=2))
    else:
        print(f"{'part':<10} {'state':<10} {'pid':>7}  {'version':<48} url")
        for part in health:
            state = "healthy" if part.healthy else ("UNHEALTHY" if part.running else "stopped")
            print(f"{part.name:<10} {state:<10} {part.pid or '-':>7}  {(part.version or part.detail):<48} {part.url}")
        if live or rows:
            print(f"\n{'job service':<56} {'kind':<17} {'state':<8} {'pid':>7}")
            for row in rows:
                print(f"{row.name:<56} {row.kind:<17} {row.status:<8} {row.pid or '-':>7}")
            for job in live:
                print(f"live: {job.describe()}")
    services_ok = all(row.status == "RUNNING" for row in rows)
    return 0 if all(part.healthy for part in health) and services_ok else 1


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "admin", "--log-level", args.log_level]
    if args.host:
        argv += ["--host", args.host]
    if args.port:
        argv += ["--port", str(args.port)]
    settings, _created = ensure_local_credentials(settings)
    env = {**os.environ, "EASEL_SECRET_KEY": settings.secret_key,
           "EASEL_SUPERADMIN_PASSWORD": settings.superadmin_password}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    print(f"Serving the admin API on http://{args.host or settings.admin_host}:{args.port or settings.admin_port}"
          " (Ctrl-C stops it)", flush=True)
    process = subprocess.Popen(argv, env=env, cwd=PROJECT_ROOT)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait() or 130


def _handler(command: Callable[[Settings, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The verb with settings loaded and the platform's errors turned into a message and an exit code."""

    def handle(args: argparse.Namespace) -> int:
        try:
            return command(get_settings(), args)
        except SettingsError as error:
            print(f"easel: {error}", file=sys.stderr)
            return 2
        except StackError as error:
            print(f"easel {args.command}: {error}", file=sys.stderr)
            return 1

    return handle


# Service entry points: one image runs them all (``easel advisor --sub-train-job-id ...``). The verb replaces
# this process with ``python -m <module>``, so in a container the service is PID 1 and gets signals directly.
SERVICE_VERBS = {
    "advisor": ("advisor", "run an advisor (Bayesian optimisation) of a sub-train-job"),
    "train-worker": ("train_worker", "run a train worker of a sub-train-job"),
    "predictor": ("predictor", "run the predictor (HTTP front) of an inference job"),
    "inference-worker": ("inference_worker", "run an inference worker of an inference job"),
    "explainer": ("inference_worker.explain", "run an explainer (LIME, Grad-CAM) of an inference job"),
}


def _exec_service(args: argparse.Namespace) -> int:
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", SERVICE_VERBS[args.command][0], *args.service_args])
    return 1  # not reached


def _register_services(sub: Any) -> None:
    for verb, (module, help_text) in SERVICE_VERBS.items():
        # No options of its own ('+' is no option prefix here): everything after the verb, --help included,
        # goes to the service's own parser.
        service = sub.add_parser(verb, help=help_text, add_help=False, prefix_chars="+",
                                 description=f"Runs python -m {module}; its arguments follow the verb.")
        service.add_argument("service_args", nargs="*", metavar="ARG", help=f"arguments of python -m {module}")
        service.set_defaults(handler=_exec_service)


def register(sub: Any) -> None:
    """Add the server verbs to ``easel``'s subparsers (the ``easel.cli`` entry point); each sets ``handler``."""
    up = sub.add_parser("up", help="start PostgreSQL, Redis, the Kafka broker and admin; apply migrations")
    up.add_argument("--no-admin", action="store_true", help="start the data services only")
    up.set_defaults(handler=_handler(cmd_up))
    down = sub.add_parser("down", help="stop the local stack (metadata is kept); refuses while jobs are live")
    down.add_argument("--force", action="store_true",
                      help="stop (drain) the services of live jobs first and mark the jobs STOPPED")
    down.set_defaults(handler=_handler(cmd_down))
    status = sub.add_parser("status", help="show each part's health and the live jobs' services; exit 1 if any "
                            "is not healthy")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(handler=_handler(cmd_status))
    admin = sub.add_parser("admin", help="serve the admin REST API in the foreground")
    admin.add_argument("--host", help="bind address (default EASEL_ADMIN_HOST)")
    admin.add_argument("--port", type=int, help="port (default EASEL_ADMIN_PORT)")
    admin.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    admin.set_defaults(handler=_handler(cmd_admin))
    _register_services(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m easel", description="Easel's server verbs (the full "
                                     "`easel` command, with the client verbs, comes with the SDK)")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
