"""A running sandbox: the child (a bwrap process, or a model-runner's child), the socket to it, the shared
batch buffer, and requests.

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
from dataclasses import replace
from pathlib import Path
from typing import Any

from easel.sandbox import handoff, wire
from easel.sandbox.bwrap import SandboxSpec, bwrap_argv
from easel.sandbox.errors import SandboxError, truncate
from easel.sandbox.shm import SharedBuffer
from easel.sandbox.uids import UidLease

log = logging.getLogger("easel.sandbox")

MAX_REPLY_BYTES = 1 << 30  # parameters of a big model come back in one frame
RUNNER_START_TIMEOUT_S = 60.0  # connecting to a model-runner and its starting a child
RUNNER_CLOSE_WAIT_S = 10.0  # how long close waits for the runner to confirm the sandbox is gone
Callback = Callable[..., Any]


def _readable_by_others(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o004)


class LocalChild:
    """A bwrap process this process started: killed by its process group (its PID namespace dies with it)."""

    def __init__(self, process: subprocess.Popen[bytes], uid: UidLease) -> None:
        self.process, self.uid = process, uid

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.uid.release()  # its processes are gone (the PID namespace died with bwrap): the uid is free

    def verdict(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code > 128:  # bwrap reports a child killed by a signal as 128 + signal
            name = signal.Signals(code - 128).name if code - 128 in signal.Signals._value2member_map_ else code
            hint = " (its memory or CPU-time limit?)" if code - 128 in (signal.SIGKILL, signal.SIGXCPU) else ""
            return f"was killed by {name}{hint}"
        return f"exited with code {code}"


class RunnerChild:
    """A child of the model-runner (runner mode): it dies with the connection, so killing is closing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def kill(self) -> None:
        """Half-close, then wait (bounded) for the runner to close its side: it does so once everything the
        sandbox started is killed, so the sandbox is gone when this returns."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + RUNNER_CLOSE_WAIT_S
            while (left := deadline - time.monotonic()) > 0 and select.select([self.sock], [], [], left)[0]:
                if not self.sock.recv(1 << 16):
                    return
            log.warning("the model runner did not confirm a sandbox's end within %.0f s", RUNNER_CLOSE_WAIT_S)

    def verdict(self) -> str:
        return "ended (its exit status is in the model runner's log)"


class SandboxProcess:
    """Start with :meth:`start` (a bwrap child) or :meth:`connect` (a model-runner's child); always
    :meth:`close` (or use it as a context manager). Requests and replies take one path whichever started it."""

    def __init__(self, child: LocalChild | RunnerChild, sock: socket.socket, shm: SharedBuffer,
                 spec: SandboxSpec) -> None:
        self.child, self.sock, self.shm, self.spec = child, sock, shm, spec
        self.closed = False

    @classmethod
    def start(cls, spec: SandboxSpec) -> SandboxProcess:
        privileged = os.geteuid() == 0
        uid = UidLease.acquire(spec.uid, spec.uid_count) if privileged else UidLease(spec.uid, None)
        spec = replace(spec, uid=uid.uid)
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
            uid.release()
            raise
        finally:
            child_sock.close()
            for fd in data_files.values():
                os.close(fd)
        return cls(LocalChild(process, uid), parent_sock, shm, spec)

    @classmethod
    def connect(cls, spec: SandboxSpec, socket_dir: Path) -> SandboxProcess:
        """A sandbox started by the model-runner listening in ``socket_dir`` (:mod:`easel.sandbox.runner`): the
        batch buffer and the given files go to it as descriptors; it says where the child sees the files."""
        path = Path(socket_dir) / handoff.SOCKET_NAME
        request = {"op": "start", "limits": spec.limits.to_json(), "files": [Path(h).name for h in spec.files],
                   "threads": spec.threads, "show_output": spec.show_output}
        file_fds: list[int] = []
        try:  # a given file that cannot be opened is the caller's error, raised as it is
            for host in spec.files:
                file_fds.append(os.open(host, os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            for fd in file_fds:
                os.close(fd)
            raise
        shm = SharedBuffer.create()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(RUNNER_START_TIMEOUT_S)
            sock.connect(str(path))
            handoff.send_start(sock, request, [shm.fd, *file_fds])
            reply = wire.receive(sock, max_bytes=handoff.MAX_START_BYTES)
            sock.settimeout(None)
        except (OSError, EOFError, wire.ProtocolError) as error:
            sock.close()
            shm.close()
            raise SandboxError(f"no sandbox from the model runner at {path}: {error or type(error).__name__}",
                               kind="NoRunner") from None
        finally:
            for fd in file_fds:
                os.close(fd)
        inside = reply.get("files")
        if not reply.get("ok") or not isinstance(inside, list) or len(inside) != len(spec.files) or not all(
                isinstance(i, str) for i in inside):
            sock.close()
            shm.close()
            raise SandboxError(f"the model runner refused the sandbox: {str(reply.get('message'))[:500]}",
                               kind="NoRunner")
        spec = replace(spec, files=dict(zip(spec.files, inside, strict=True)))
        return cls(RunnerChild(sock), sock, shm, spec)

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
        return self.child.verdict()

    # -- lifetime ------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Kill everything in the sandbox (bwrap's process group, or the runner's child and all it started)."""
        if self.closed:
            return
        self.closed = True
        self.child.kill()
        self.sock.close()
        self.shm.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
