"""A warm parent for local services (a *zygote*, as Android and Chromium call theirs): it imports a service's
modules once, then forks a child per start, so a service no longer pays its interpreter start and imports
(the advisor's: SQLAlchemy, redis, NumPy, scikit-optimize with SciPy and scikit-learn — ≈ 2 s of CPU each, and
several advisors start together when several users submit at once).

The zygote (:func:`serve`, given ``MODULE...``) imports each ``MODULE`` (one written ``module:function`` is imported
and the function called: a warm-up of first-use costs) and then serves requests, JSON lines on its stdin,
answering JSON lines on its stdout:

* ``{"id": n, "argv": [python, "-m", module, args...], "env": {...}, "log_path": path}`` — fork a child that runs
  ``module`` as ``__main__`` with ``args``, exactly the environment ``env`` (nothing of the zygote's own), in a
  session of its own, stdin from /dev/null, stdout and stderr appended to ``log_path``; answered
  ``{"id": n, "pid": pid}`` (or ``{"id": n, "error": text}``);
* when a child ends: ``{"exit": pid, "code": exit_code}`` (negative: killed by that signal), so its launcher
  learns of a death at once, as it does from a child of its own.

The zygote starts no thread and opens no connection (a fork copies neither safely); it ends when its stdin closes
(the launcher is gone). Its children outlive it, like any service the launcher started. :class:`Zygote` is the
launcher's side.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger("easel.launcher")

# How the launcher starts a zygote (not ``-m easel.launcher.zygote``: the package imports this module first)
SERVE = "import sys; from easel.launcher.zygote import serve; serve(sys.argv[1:])"
READY_TIMEOUT_S = 120.0  # imports on a loaded machine can take long


def module_of(argv: Sequence[str]) -> str | None:
    """The module a ``python -m module ...`` command line runs with this interpreter, else None."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m" and argv[2]:
        return argv[2]
    return None


# -- the zygote process -----------------------------------------------------------------------------------------
def _write(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _run_child(request: dict[str, Any], keep_closed: Sequence[int]) -> int:
    """In the forked child: become the service ``request`` describes and run it; returns its exit code."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in keep_closed:
        os.close(fd)
    log_fd = os.open(request["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.close(null_fd)
    os.environ.clear()  # the service's environment only, as a fresh process would get it
    os.environ.update(request["env"])
    if "numpy" in sys.modules:  # forked children would share the zygote's global random state
        sys.modules["numpy"].random.seed()
    argv = request["argv"]
    sys.argv = [argv[0], *argv[3:]]
    try:
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return int(done.code or 0)
        print(done.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - reported in the service's log, as an interpreter would
        traceback.print_exc()
        return 1
    return 0


def _spawn(request: dict[str, Any], keep_closed: Sequence[int]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _run_child(request, keep_closed)
            atexit._run_exitfuncs()  # as an interpreter's exit would (logging's flush, say); then no unwinding
        finally:                     # into the zygote's loop: a forked child leaves by os._exit only
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    return pid


def serve(preload: Sequence[str]) -> None:
    """The zygote's loop (see the module's doc)."""
    requests, replies = os.dup(0), os.dup(1)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(2, 1)  # its own prints go to its log, never into the protocol
    os.close(null_fd)
    for entry in preload:
        module, _, function = entry.partition(":")
        imported = importlib.import_module(module)
        if function:
            getattr(imported, function)()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below through the wake-up pipe
    _write(replies, {"ready": os.getpid()})
    pending = b""
    while True:
        readable, _, _ = select.select([requests, wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
        while True:  # reap every child that ended, and say so
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _write(replies, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if requests not in readable:
            continue
        data = os.read(requests, 1 << 16)
        if not data:
            return  # the launcher is gone
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            try:
                pid = _spawn(request, (requests, replies, wake_r, wake_w))
            except OSError as error:
                _write(replies, {"id": request["id"], "error": str(error)})
                continue
            _write(replies, {"id": request["id"], "pid": pid})


# -- the launcher's side ---------------------------------------------------------------------------------------
class ZygoteError(RuntimeError):
    """The zygote could not start a service (it is gone, or the fork failed): start it the cold way."""


class Zygote:
    """A running zygote that imported ``preload``, started with ``env`` (the services' environment without any
    one service's own variables); ``on_exit(pid, code)`` is called (from a reader thread) when a child ends."""

    def __init__(self, preload: Sequence[str], env: Mapping[str, str], log_path: Path,
                 on_exit: Callable[[int, int], None]) -> None:
        self.preload = tuple(preload)
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiting: dict[int, Future[int]] = {}
        self._ready: Future[int] = Future()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            self._process = subprocess.Popen([sys.executable, "-c", SERVE, *self.preload],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                                             env=dict(env), start_new_session=True)
        threading.Thread(target=self._read, name=f"zygote-{self._process.pid}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.poll() is None

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """True once the zygote has imported its modules (False: not within ``timeout_s``, or it failed)."""
        try:
            self._ready.result(timeout_s)
        except Exception:  # noqa: BLE001 - a timeout or its failure: not ready either way
            return False
        return True

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, ready_timeout_s: float = 0.0,
              timeout_s: float = 30.0) -> int:
        """Fork a child running ``argv`` (``python -m module ...``); returns its pid. Raises :class:`ZygoteError`
        when the zygote is not ready within ``ready_timeout_s`` (still importing: the caller starts the service
        cold rather than wait), or is gone."""
        if module_of(argv) is None:
            raise ValueError(f"argv must be [{sys.executable!r}, '-m', module, ...], not {list(argv)!r}")
        if not self.wait_ready(ready_timeout_s):
            raise ZygoteError("the zygote is not ready (still importing, or it failed)")
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            answer: Future[int] = Future()
            self._waiting[request_id] = answer
            try:
                assert self._process.stdin is not None
                self._process.stdin.write((json.dumps({"id": request_id, "argv": list(argv), "env": dict(env),
                                                       "log_path": str(log_path)}) + "\n").encode())
                self._process.stdin.flush()
            except OSError as error:
                self._waiting.pop(request_id, None)
                raise ZygoteError(f"the zygote is gone: {error}") from error
        try:
            return answer.result(timeout_s)
        except Exception as error:
            raise ZygoteError(f"the zygote did not start {list(argv)!r}: {error}") from error

    def close(self) -> None:
        """End the zygote (its children go on)."""
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("zygote %d said something unreadable: %r", self.pid, line[:200])
                continue
            if "ready" in message:
                self._ready.set_result(int(message["ready"]))
            elif "exit" in message:
                try:
                    self._on_exit(int(message["exit"]), int(message["code"]))
                except Exception:  # noqa: BLE001 - a listener's failure must not stop the reader
                    log.exception("zygote exit listener failed")
            elif "id" in message:
                with self._lock:
                    answer = self._waiting.pop(int(message["id"]), None)
                if answer is not None:
                    if "pid" in message:
                        answer.set_result(int(message["pid"]))
                    else:
                        answer.set_exception(ZygoteError(str(message.get("error"))))
        gone = ZygoteError(f"the zygote ended (exit code {self._process.wait()})")
        if not self._ready.done():
            self._ready.set_exception(gone)
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            answer.set_exception(gone)

