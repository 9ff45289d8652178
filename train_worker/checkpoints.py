"""Unit checkpoints of trials in the blob store: what lets a trial resume on any worker after any unit.

A checkpoint is the template's state after ``n`` units, under ``checkpoints/<sub_train_job>/<trial>/<n>.ckpt``,
written atomically by the blob store and wrapped in an envelope (a magic tag and the SHA-256 of the state), so
a truncated or altered file is told apart from a good one. The last :data:`KEEP` checkpoints of a trial are
kept: when the newest is missing or corrupt, the one before it is used and the unit after it trained again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from easel.blobstore import BlobStore

log = logging.getLogger("easel.train_worker")

MAGIC = b"EASELCK1"
KEEP = 2


class CheckpointCorrupt(ValueError):
    """The checkpoint's bytes do not match their checksum (or are not a checkpoint at all)."""


def wrap(state: bytes) -> bytes:
    return MAGIC + hashlib.sha256(state).digest() + state


def unwrap(blob: bytes) -> bytes:
    head = len(MAGIC) + 32
    if len(blob) < head or not blob.startswith(MAGIC):
        raise CheckpointCorrupt("not a checkpoint (no envelope)")
    state = blob[head:]
    if hashlib.sha256(state).digest() != blob[len(MAGIC):head]:
        raise CheckpointCorrupt("checksum mismatch (truncated or altered)")
    return state


@dataclass
class Resumption:
    """Where a trial goes on: after ``units`` units from ``state`` (``None``: from the start); ``problems``
    says which newer checkpoints were missing or corrupt (those units are trained again)."""

    units: int
    state: bytes | None
    problems: list[str] = field(default_factory=list)


class CheckpointStore:
    def __init__(self, blobs: BlobStore, sub_train_job_id: str) -> None:
        self.blobs, self.sub_train_job_id = blobs, sub_train_job_id
        self.bytes_read = self.bytes_written = 0  # this worker's checkpoint traffic, for the benchmarks

    def prefix(self, trial_id: str) -> str:
        return f"checkpoints/{self.sub_train_job_id}/{trial_id}/"

    def key(self, trial_id: str, units: int) -> str:
        return f"{self.prefix(trial_id)}{units:06d}.ckpt"

    def save(self, trial_id: str, units: int, state: bytes) -> int:
        """Store the state after ``units`` units (atomically) and drop checkpoints older than :data:`KEEP`.
        Returns the bytes written."""
        written = self.blobs.put_bytes(self.key(trial_id, units), wrap(state))
        self.bytes_written += written
        for old in range(max(0, units - KEEP), 0, -1):
            if not self.blobs.delete(self.key(trial_id, old)):
                break  # older ones went in earlier saves
        return written

    def load(self, trial_id: str, units: int) -> bytes:
        """The state after ``units`` units; ``FileNotFoundError`` or :class:`CheckpointCorrupt`."""
        blob = self.blobs.get_bytes(self.key(trial_id, units))
        self.bytes_read += len(blob)
        return unwrap(blob)

    def resume(self, trial_id: str, units_done: int) -> Resumption:
        """The newest good checkpoint at or before ``units_done`` (the trial row's record of units done)."""
        problems: list[str] = []
        for units in range(units_done, max(0, units_done - KEEP), -1):
            try:
                return Resumption(units, self.load(trial_id, units), problems)
            except FileNotFoundError:
                problems.append(f"checkpoint after unit {units} is missing")
            except CheckpointCorrupt as error:
                problems.append(f"checkpoint after unit {units} is corrupt: {error}")
        return Resumption(0, None, problems)

    def clear(self, trial_id: str) -> int:
        """Delete every checkpoint of the trial (it has ended); returns how many."""
        return sum(self.blobs.delete(key) for key in list(self.blobs.keys(self.prefix(trial_id))))
