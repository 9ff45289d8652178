"""Process signal handling shared by every service."""

from __future__ import annotations

import signal


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def exit_on_sigterm() -> None:
    """Make SIGTERM (the launcher's stop) exit through SystemExit, so finally-blocks and cleanup run."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
