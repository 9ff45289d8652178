"""The model-runner: ``python -m easel.sandbox.runner --socket-dir DIR [--scratch-dir D] [--peer-uid U]
[--isolation auto|bwrap|none]``.

It runs where no secret is — in Kubernetes its own container in every pod that runs model code: a uid of its
own, no Secret, no service-account token, a read-only root — and starts template children for the platform
container beside it (runner mode, ``EASEL_SANDBOX_MODE=runner``). It listens on ``DIR/runner.sock``; every
connection is one sandbox:

1. the platform sends a start frame with the batch buffer's and the given files' descriptors
   (:mod:`easel.sandbox.handoff`); the runner copies the files into the connection's private scratch dir
   and starts one child (:mod:`easel.sandbox.child`, the same protocol and limits as in bwrap mode) on that
   very connection;
2. the platform then talks to the child directly, as it does to a bubblewrap child;
3. when the platform closes (or half-closes) the connection, or the child exits, everything the child started
   is killed — including processes that left its process group: each connection is served by a forked
   handler that is a *child subreaper*, so every orphan of the sandbox becomes the handler's to kill — and the
   scratch dir is removed; only then does the connection close on the runner's side, so the platform's
   ``close`` returns once the sandbox is gone.

Isolation of a child: its environment is a handful of variables (:func:`easel.sandbox.bwrap.child_env`), its
rlimits are the platform's, it is not dumpable (siblings cannot ptrace it). With ``bwrap`` (``auto`` picks it
where unprivileged user namespaces work, e.g. a pod with ``hostUsers: false``) each child is also in its own
user, PID, mount and network namespaces, seeing only its files; with ``none`` the container is the boundary
and the pod's NetworkPolicy keeps it off the network's services. Connections from the runner's own uid (a
child of this runner, when it is not root) are refused, as are, with ``--peer-uid``, any from another uid
than the platform's.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import json
import logging
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from easel.sandbox import handoff, wire
from easel.sandbox.bwrap import PROJECT_ROOT, SandboxSpec, bwrap_argv, child_env, inside_path
from easel.sandbox.errors import SandboxError
from easel.sandbox.limits import SandboxLimits

log = logging.getLogger("easel.sandbox.runner")

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
START_TIMEOUT_S = 30.0
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class RunnerConfig:
    socket_dir: Path
    scratch_dir: Path
    isolation: str  # "bwrap" or "none" (``auto`` resolved at start)
    peer_uid: int | None = None


def _prctl(option: int, value: int) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def bwrap_works() -> bool:
    """Whether this process can start an unprivileged bubblewrap sandbox without network (user namespaces)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    if os.geteuid() == 0:
        probe = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        return subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve_isolation(requested: str) -> str:
    if requested == "auto":
        return "bwrap" if bwrap_works() else "none"
    if requested == "bwrap" and not bwrap_works():
        raise SystemExit("--isolation bwrap: bubblewrap cannot create a sandbox here (no user namespaces?)")
    if requested == "none" and os.geteuid() == 0:
        raise SystemExit("--isolation none would run template code as root: run the runner as another user")
    return requested


# -- one connection ----------------------------------------------------------------------------------------
def _copy_in(fd: int, target: Path) -> None:
    """The given file's bytes at ``target``, read-only (the child's own copy: it reads nothing else)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.dup(fd), "rb") as source, target.open("wb") as out:
        source.seek(0)
        shutil.copyfileobj(source, out, COPY_CHUNK)
    target.chmod(0o444)


def _file_names(request: dict[str, Any], count: int) -> list[str]:
    names = request.get("files")
    if not isinstance(names, list) or len(names) != count or not all(
            isinstance(n, str) and n and "/" not in n and n not in (".", "..") for n in names):
        raise ValueError("files: one plain file name per given descriptor")
    return names


def start_child(config: RunnerConfig, request: dict[str, Any], conn: socket.socket, fds: list[int],
                scratch: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start the template child on ``conn``; returns it and where it sees each given file."""
    if request.get("op") != "start" or not fds:
        raise ValueError("the first frame must be a start with the batch buffer's descriptor")
    limits = SandboxLimits.from_json(dict(request.get("limits") or {}))
    # GPUs are the runner's (in Kubernetes its container is the one given them): its children may use them, and
    # then, as in bwrap mode, without an address-space cap (CUDA reserves far more than it uses).
    devices = sorted(glob.glob("/dev/nvidia*"))
    if devices:
        limits = replace(limits, memory_mb=0)
    threads = int(request.get("threads") or 1)
    shm_fd, file_fds = fds[0], fds[1:]
    names = _file_names(request, len(file_fds))
    output = sys.stderr.fileno() if request.get("show_output", True) else subprocess.DEVNULL
    child = [sys.executable, "-m", "easel.sandbox.child", "--socket-fd", str(conn.fileno()),
             "--shm-fd", str(shm_fd), "--limits", json.dumps(limits.to_json())]
    if config.isolation == "bwrap":
        privileged = os.geteuid() == 0
        given = {Path(f"/given/{i}/{name}"): inside_path(Path(name), i) for i, name in enumerate(names)}
        # The runner's own import paths beyond the platform packages (bound anyway) go in too, read-only.
        extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                 if p and os.path.isdir(p) and Path(p).resolve() != PROJECT_ROOT]
        spec = SandboxSpec(limits=limits, files=given, threads=threads, devices=devices, import_paths=extra)
        argv = bwrap_argv(spec, child + (["--uid", str(spec.uid)] if privileged else []), privileged=privileged,
                          data_fds=dict(zip(given, file_fds, strict=True)))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        inside = list(given.values())
        cwd: Path | None = None
    else:
        home = scratch / "home"
        home.mkdir(mode=0o700)
        inside = []
        for i, (name, fd) in enumerate(zip(names, file_fds, strict=True)):
            target = scratch / "files" / str(i) / name
            _copy_in(fd, target)
            inside.append(str(target))
        argv = child
        env = child_env(threads, home=str(home), pythonpath=os.environ.get("PYTHONPATH"))
        cwd = home
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env, cwd=cwd,
        # bwrap copies the given files from their descriptors; a plain child has its copies and needs none.
        pass_fds=(conn.fileno(), shm_fd, *(file_fds if config.isolation == "bwrap" else ())), start_new_session=True,
        preexec_fn=lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGKILL),  # noqa: PLW1509 - the handler has one thread
    )
    return process, inside


def _own_children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry))
    return found


def kill_everything_started() -> int:
    """SIGKILL every descendant (orphans were re-parented to this subreaper) until none is left; how many."""
    killed = 0
    while children := _own_children():
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        killed += len(children)
    return killed


def wait_for_end(conn: socket.socket, process: subprocess.Popen[bytes]) -> None:
    """Until the platform closes or half-closes the connection, or the child exits."""
    pidfd = os.pidfd_open(process.pid)
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLRDHUP)  # not POLLIN: the child reads this socket, not us
        poller.register(pidfd, select.POLLIN)
        while not poller.poll():
            pass
    finally:
        os.close(pidfd)


def serve_connection(config: RunnerConfig, conn: socket.socket) -> None:
    """One sandbox, in a forked handler process (single-threaded, a subreaper): start, watch, kill, clean."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a dead runner takes its handlers (and their children) along
    scratch = Path(tempfile.mkdtemp(dir=config.scratch_dir, prefix="sandbox-"))
    fds: list[int] = []
    try:
        try:
            conn.settimeout(START_TIMEOUT_S)
            request, fds = handoff.receive_start(conn)
            conn.settimeout(None)
            process, inside = start_child(config, request, conn, fds, scratch)
        except (OSError, EOFError, ValueError, TypeError, SandboxError) as error:
            with contextlib.suppress(OSError):
                conn.settimeout(5)
                wire.send(conn, {"ok": False, "message": f"{type(error).__name__}: {error}"[:2000]})
            return
        finally:
            for fd in fds:
                os.close(fd)
        # The child writes only in answer to a request, and none comes before the platform reads this reply.
        wire.send(conn, {"ok": True, "files": inside, "isolation": config.isolation})
        wait_for_end(conn, process)
    finally:
        kill_everything_started()
        shutil.rmtree(scratch, ignore_errors=True)
        conn.close()


# -- the service -------------------------------------------------------------------------------------------
def peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid


def accepted(config: RunnerConfig, conn: socket.socket) -> bool:
    uid = peer_uid(conn)
    if uid == os.getuid() and uid != 0:
        log.warning("refused a connection from the runner's own uid %d (a sandboxed child)", uid)
        return False
    if config.peer_uid is not None and uid != config.peer_uid:
        log.warning("refused a connection from uid %d (only %d may start sandboxes)", uid, config.peer_uid)
        return False
    return True


def listen(socket_dir: Path) -> socket.socket:
    """The runner's socket, made under a temporary name and renamed, so a client never finds it half-ready."""
    socket_dir.mkdir(parents=True, exist_ok=True)
    path, temporary = socket_dir / handoff.SOCKET_NAME, socket_dir / f".{handoff.SOCKET_NAME}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(temporary))
    temporary.chmod(0o666)  # who may start sandboxes is checked by peer credentials, not file modes
    server.listen(64)
    os.replace(temporary, path)
    return server


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def serve(config: RunnerConfig, server: socket.socket) -> None:
    """Accept connections forever, one forked handler each; reap handlers (and, as PID 1, any orphan)."""
    server.settimeout(1.0)
    while True:
        reap()
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        if not accepted(config, conn):
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:  # the handler
            code = 0
            try:
                server.close()
                serve_connection(config, conn)
            except BaseException:  # noqa: BLE001 - a handler must never return into the accept loop
                log.exception("sandbox handler failed")
                code = 1
            finally:
                os._exit(code)
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m easel.sandbox.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--socket-dir", type=Path, required=True, help="where runner.sock is made")
    parser.add_argument("--scratch-dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where each sandbox's private dir (HOME, its copies of the given files) is made")
    parser.add_argument("--peer-uid", type=int, default=None, help="the only uid that may start sandboxes")
    parser.add_argument("--isolation", choices=["auto", "bwrap", "none"], default="auto",
                        help="bwrap: each child also in its own namespaces, without network; auto: bwrap if it works")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = RunnerConfig(socket_dir=args.socket_dir, scratch_dir=args.scratch_dir,
                          isolation=resolve_isolation(args.isolation), peer_uid=args.peer_uid)
    _prctl(PR_SET_DUMPABLE, 0)  # children share this uid: none may ptrace the runner
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config.scratch_dir.mkdir(parents=True, exist_ok=True)
    server = listen(config.socket_dir)
    log.info("model runner on %s (uid %d, isolation %s)", config.socket_dir / handoff.SOCKET_NAME, os.getuid(),
             config.isolation)
    try:
        serve(config, server)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
