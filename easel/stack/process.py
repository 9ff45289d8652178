"""Detached server processes tracked by a pid file, and the port checks around them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """A part of the local stack could not be started, reached or stopped."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive (and not a zombie), else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.NoSuchProcess:
        return None
    return pid


def spawn_detached(argv: Sequence[str], log_path: Path, pid_file: Path, env: dict[str, str] | None = None,
                   user: str | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` in its own session (it outlives the caller), output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, user=user, cwd=cwd,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, log_path: Path | None = None,
               alive: Callable[[], bool] | None = None) -> None:
    """Poll ``check`` until true; fail with the log's tail if it times out or the process dies."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up{_log_tail(log_path)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise StackError(f"{what} did not become ready within {timeout_s:.0f}s{_log_tail(log_path)}")


def terminate(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``timeout_s``."""
    try:
        process = psutil.Process(pid)
        os.kill(pid, signal.SIGTERM)
        process.wait(timeout_s)
    except psutil.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(5)
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass


def _log_tail(log_path: Path | None, lines: int = 15) -> str:
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log_path}:\n  " + "\n  ".join(tail)
