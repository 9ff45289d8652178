"""A running sandbox: the bwrap process, the socket to the child, the shared batch buffer, and requests.

:meth:`SandboxProcess.call` sends one request and waits for its reply, answering the child's callbacks
(``log``, ``should_stop`` of a training context) meanwhile. A call that overruns its timeout, a protocol
violation or a dead child kills the whole sandbox: bwrap's own process group, and with bwrap (PID 1 of the
sandbox's PID namespace) every process the template started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from easel.sandbox import wire
from easel.sandbox.bwrap import SandboxSpec, bwrap_argv
from easel.sandbox.errors import SandboxError, truncate
from easel.sandbox.shm import SharedBuffer

log = logging.getLogger("easel.sandbox")

MAX_REPLY_BYTES = 1 << 30  # parameters of a big model come back in one frame
Callback = Callable[..., Any]


def _readable_by_others(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o004)


class SandboxProcess:
    """Start with :meth:`start`; always :meth:`close` (or use it as a context manager)."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket, shm: SharedBuffer,
                 spec: SandboxSpec) -> None:
        self.process, self.sock, self.shm, self.spec = process, sock, shm, spec
        self.closed = False

    @classmethod
    def start(cls, spec: SandboxSpec) -> SandboxProcess:
        privileged = os.geteuid() == 0
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        shm = SharedBuffer.create()
        data_files = {host: os.open(host, os.O_RDONLY | os.O_CLOEXEC) for host in spec.files
                      if privileged and not _readable_by_others(Path(host))}
        try:
            child = [sys.executable, "-m", "easel.sandbox.child", "--socket-fd", str(child_sock.fileno()),
                     "--shm-fd", str(shm.fd), "--limits", json.dumps(spec.limits.to_json())]
            if privileged:
                child += ["--uid", str(spec.uid)]
            argv = bwrap_argv(spec, child, privileged=privileged, data_fds=data_files)
            # bwrap passes inherited descriptors on to the child: the socket, the batch buffer.
            output = sys.stderr.fileno() if spec.show_output else subprocess.DEVNULL
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                pass_fds=(child_sock.fileno(), shm.fd, *data_files.values()), start_new_session=True,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        except BaseException:
            parent_sock.close()
            shm.close()
            raise
        finally:
            child_sock.close()
            for fd in data_files.values():
                os.close(fd)
        return cls(process, parent_sock, shm, spec)

    # -- requests ------------------------------------------------------------------------------------------
    def call(self, op: str, *, timeout_s: float | None, callbacks: dict[str, Callback] | None = None,
             **fields: Any) -> Any:
        """Send ``{"op": op, **fields}``; return the reply's decoded result or raise :class:`SandboxError`."""
        if self.closed:
            raise SandboxError("the sandbox is closed", kind="Closed")
        request = wire.frame({"op": op, **fields})  # a bad argument fails here, leaving the sandbox as it was
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            self.sock.sendall(request)
            while True:
                message = self._receive(deadline, op)
                if "callback" in message:
                    self._answer(message, callbacks or {})
                    continue
                if message.get("ok") is True:
                    return wire.decode(message.get("result"))
                raise SandboxError(self._error_text(message), kind=str(message.get("kind", "Error"))[:64],
                                   detail=str(message.get("message", "")))
        except SandboxError:
            raise
        except (OSError, EOFError, wire.ProtocolError) as error:
            verdict = self._death_verdict()
            self.close()
            raise SandboxError(f"the sandboxed template process {verdict} during {op}"
                               + ("" if isinstance(error, EOFError) else f" ({error})"), kind="Died") from None
        except BaseException:  # a callback failed (e.g. the database): the conversation is lost mid-call
            self.close()
            raise

    def _receive(self, deadline: float | None, op: str) -> dict[str, Any]:
        if deadline is not None:
            left = deadline - time.monotonic()
            ready = select.select([self.sock], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                self.close()
                raise SandboxError(f"{op} did not finish within its time limit; the sandbox was killed",
                                   kind="Timeout")
        return wire.receive(self.sock, max_bytes=MAX_REPLY_BYTES)

    def _answer(self, message: dict[str, Any], callbacks: dict[str, Callback]) -> None:
        name = message.get("callback")
        handler = callbacks.get(name) if isinstance(name, str) else None
        args = message.get("args") if isinstance(message.get("args"), list) else []
        kwargs = message.get("kwargs") if isinstance(message.get("kwargs"), dict) else {}
        result = handler(*args, **kwargs) if handler is not None else None
        if message.get("wants_answer"):
            wire.send(self.sock, {"answer": wire.encode(result)})

    @staticmethod
    def _error_text(message: dict[str, Any]) -> str:
        kind = str(message.get("kind", "Error"))[:64]
        text = f"{kind}: {message.get('message', '')}"
        trace = message.get("traceback")
        if isinstance(trace, str) and trace:
            text += "\n" + truncate(trace, 2500)
        return text

    def _death_verdict(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code > 128:  # bwrap reports a child killed by a signal as 128 + signal
            name = signal.Signals(code - 128).name if code - 128 in signal.Signals._value2member_map_ else code
            hint = " (its memory or CPU-time limit?)" if code - 128 in (signal.SIGKILL, signal.SIGXCPU) else ""
            return f"was killed by {name}{hint}"
        return f"exited with code {code}"

    # -- lifetime ------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill everything in the sandbox (bwrap's process group; its PID namespace dies with it) and reap."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.sock.close()
        self.shm.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
