"""The ``easel`` command line: run the local stack (``up``, ``down``, ``status``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from easel.local_stack import LocalStack, StackError
from easel.settings import Settings, SettingsError, get_settings


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def cmd_up(settings: Settings, _args: argparse.Namespace) -> int:
    print(f"Starting the Easel stack in {settings.data_dir} ...", flush=True)
    began = time.perf_counter()
    report = LocalStack(settings).up(progress=_say)
    print(f"Ready in {time.perf_counter() - began:.1f}s. Export these to point services at it:")
    for name, url in report.urls.items():
        print(f"  export {name}={url}")
    return 0


def cmd_down(settings: Settings, _args: argparse.Namespace) -> int:
    print(f"Stopping the Easel stack in {settings.data_dir} ...", flush=True)
    LocalStack(settings).down(progress=_say)
    return 0


def cmd_status(settings: Settings, _args: argparse.Namespace) -> int:
    health = LocalStack(settings).status()
    print(f"{'part':<10} {'state':<10} {'pid':>7}  {'version':<48} url")
    for part in health:
        state = "healthy" if part.healthy else ("UNHEALTHY" if part.running else "stopped")
        print(f"{part.name:<10} {state:<10} {part.pid or '-':>7}  {(part.version or part.detail):<48} {part.url}")
    return 0 if all(part.healthy for part in health) else 1


COMMANDS: dict[str, tuple[str, Callable[[Settings, argparse.Namespace], int]]] = {
    "up": ("start PostgreSQL, Redis and the Kafka broker; apply migrations", cmd_up),
    "down": ("stop the local stack (metadata is kept)", cmd_down),
    "status": ("show each part's health; exit 1 if any is not healthy", cmd_status),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easel", description="Easel: elastic model-sliced ML platform")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _handler) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        return COMMANDS[args.command][1](settings, args)
    except SettingsError as error:
        print(f"easel: {error}", file=sys.stderr)
        return 2
    except StackError as error:
        print(f"easel {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
