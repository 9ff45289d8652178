"""A uid of its own for each sandbox a root platform starts (bwrap's privileged path).

The kernel counts ``RLIMIT_NPROC`` per user (per user namespace): sandboxes that all became uid 65534 would
share one process budget, so one tenant's fork bomb could starve every other tenant's sandbox — measured:
with a limit of 30, a second sandbox could fork 3 processes after a first had forked 25. Each sandbox therefore
leases a uid from ``[EASEL_SANDBOX_UID, EASEL_SANDBOX_UID + EASEL_SANDBOX_UID_COUNT)`` for its life: an
exclusive ``flock`` on a per-uid file, held by the platform process, so two workers on one host never pick
the same uid and a dead worker's leases free themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
from pathlib import Path

from easel.sandbox.errors import SandboxError

LEASE_DIR = Path("/run/easel-sandbox-uids")


class UidLease:
    def __init__(self, uid: int, fd: int | None) -> None:
        self.uid, self._fd = uid, fd

    @classmethod
    def acquire(cls, first: int, count: int, lease_dir: Path = LEASE_DIR) -> UidLease:
        """A uid nobody else holds (``count == 1``: ``first`` itself, shared, as before leases)."""
        if count <= 1:
            return cls(first, None)
        lease_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        start = random.randrange(count)  # noqa: S311 - spreads the probes, not a secret
        for step in range(count):
            uid = first + (start + step) % count
            fd = os.open(lease_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(uid, fd)
        raise SandboxError(f"all {count} sandbox uids from {first} are in use (EASEL_SANDBOX_UID_COUNT)",
                           kind="NoUid")

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the lock
            self._fd = None
