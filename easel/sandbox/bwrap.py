"""The bubblewrap command line of a sandbox: what the child sees, as whom it runs, in which namespaces.

The child sees, read-only: ``/usr`` (and the ``/lib``/``/bin`` links), the Python installation and virtual
environment, the platform packages the child side needs (``CODE_PACKAGES``, mounted under ``/sandbox/code``)
and the files it is given (under ``/sandbox/files``); a private tmpfs at ``/tmp`` is its ``HOME``. No ``/etc``
(beyond the loader's cache), no data dir, no blob store, a fresh ``/proc`` and a minimal ``/dev``; its own
network (loopback only), PID, IPC and UTS namespaces; an environment of a handful of variables.

Two ways to get an unprivileged user, depending on who starts it:

* as root (the local launcher runs services as root): bwrap itself needs no user namespace; it keeps only
  CAP_SETUID/CAP_SETGID for the child, whose first act (:mod:`easel.sandbox.child`) is to become
  ``EASEL_SANDBOX_UID`` — a real unprivileged uid on the host, which the kernel's RLIMIT_NPROC applies to
  (a uid mapped to root in a user namespace would be exempt);
* as anyone else: an unprivileged user namespace (``--unshare-user --uid 65534``), nested ones disabled.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from easel.sandbox.errors import SandboxError
from easel.sandbox.limits import SandboxLimits

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_DIR = "/sandbox/code"
FILES_DIR = "/sandbox/files"
SCRATCH_DIR = "/tmp"
# The platform code the child side imports: the template API and child (easel), the sliced networks and the
# built-in templates uploads may extend (slicing, builtin_templates), and the explanation methods that run
# next to the network (inference_worker).
CODE_PACKAGES = ("easel", "slicing", "builtin_templates", "inference_worker")
LIBRARY_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class SandboxSpec:
    """One sandbox: ``files`` maps host files to their read-only paths inside (see :func:`inside_path`)."""

    limits: SandboxLimits
    uid: int = 65534
    uid_count: int = 1  # as root: the sandbox leases one uid of [uid, uid + uid_count) (easel.sandbox.uids)
    files: Mapping[Path, str] = field(default_factory=dict)
    threads: int = 1
    devices: Sequence[str] = ()  # host device nodes to pass through (GPUs)
    show_output: bool = True  # the template's prints go to this process's stderr (a worker's log), else nowhere
    import_paths: Sequence[str] = ()  # more read-only package dirs on the child's PYTHONPATH (a model-runner's own)


def find_bwrap() -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxError("bubblewrap (bwrap) is not installed: template code cannot be sandboxed "
                           "(apt-get install bubblewrap, or `make install`)", kind="NotInstalled")
    return found


def inside_path(host: Path, index: int) -> str:
    """Where the ``index``-th given file appears in the sandbox (its name kept, for error messages)."""
    return f"{FILES_DIR}/{index}/{Path(host).name}"


def python_roots() -> list[str]:
    """The directories the child's interpreter and libraries live in (venv, its base installation)."""
    roots = {sys.prefix, sys.base_prefix, str(Path(os.path.realpath(sys.executable)).parents[1])}
    return sorted(r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots))


class _Args:
    """bwrap arguments, creating every mount point's parent directories world-traversable (as root, bwrap
    would make them 0700, which the unprivileged child could not pass)."""

    def __init__(self) -> None:
        self.argv: list[str] = []
        self._dirs: set[str] = {"/"}

    def parents(self, dest: str) -> None:
        missing = []
        for parent in Path(dest).parents:
            if str(parent) in self._dirs:
                break
            missing.append(str(parent))
        for directory in reversed(missing):
            self.argv += ["--perms", "0755", "--dir", directory]
            self._dirs.add(directory)

    def add(self, *args: str) -> None:
        self.argv += args

    def made(self, directory: str) -> None:
        """``directory`` exists already (a tmpfs): mounts below it need no ``--dir`` for it."""
        self._dirs.add(directory)

    def mount(self, option: str, source: str, dest: str) -> None:
        self.parents(dest)
        self.argv += [option, source, dest]
        self._dirs.add(dest)


def child_env(threads: int, *, home: str, pythonpath: str | None) -> dict[str, str]:
    """The whole environment of a template child: a handful of variables, never a setting or a secret."""
    count = str(max(1, threads))
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
           "OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count, "TORCH_NUM_THREADS": count}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def bwrap_argv(spec: SandboxSpec, child: Sequence[str], *, privileged: bool,
               data_fds: Mapping[Path, int] | None = None) -> list[str]:
    """The full command line: ``bwrap [options] -- child...``.

    ``data_fds`` names given files the child's user could not read on the host (a 0600 blob): bwrap copies
    those from an open descriptor into the sandbox instead of binding them.
    """
    args = _Args()
    args.add(find_bwrap(), "--die-with-parent", "--new-session", "--clearenv")
    if privileged:
        args.add("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")
    else:
        args.add("--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(spec.uid),
                 "--gid", str(spec.uid))
    scratch = str(spec.limits.scratch_mb << 20)
    # The scratch tmpfs comes first: a later bind under /tmp (a virtualenv or checkout living in /tmp) then
    # lands on top of it instead of being hidden by it.
    args.add("--perms", "1777", "--size", scratch, "--tmpfs", SCRATCH_DIR)
    args.made(SCRATCH_DIR)
    args.mount("--ro-bind", "/usr", "/usr")
    for link in LIBRARY_LINKS:
        if os.path.islink(link):
            args.add("--symlink", os.readlink(link), link)
        elif os.path.isdir(link):
            args.mount("--ro-bind", link, link)
    if os.path.exists("/etc/ld.so.cache"):
        args.mount("--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache")
    for root in python_roots():
        if not root.startswith("/usr/"):
            args.mount("--ro-bind", root, root)
    for package in CODE_PACKAGES:
        if (PROJECT_ROOT / package).is_dir():  # an installation without one (no workers) just lacks it
            args.mount("--ro-bind", str(PROJECT_ROOT / package), f"{CODE_DIR}/{package}")
    for host, inside in spec.files.items():
        fd = (data_fds or {}).get(host)
        if fd is None:
            args.mount("--ro-bind", str(host), inside)
        else:
            args.parents(inside)
            args.add("--perms", "0444", "--ro-bind-data", str(fd), inside)
    args.add("--proc", "/proc", "--dev", "/dev")
    for device in spec.devices:
        args.add("--dev-bind", device, device)
    args.add("--perms", "1777", "--size", scratch, "--tmpfs", "/dev/shm")  # torch DataLoader workers need it
    for path in spec.import_paths:
        args.mount("--ro-bind", path, path)
    pythonpath = ":".join([CODE_DIR, *spec.import_paths])
    for name, value in child_env(spec.threads, home=SCRATCH_DIR, pythonpath=pythonpath).items():
        args.add("--setenv", name, value)
    args.add("--chdir", SCRATCH_DIR, "--")
    args.add(*child)
    return args.argv
