"""What the train pool's allocator remembers, kept across admin restarts: each waiting user's wait and the
fairness floor's counts (:class:`easel.allocation.Allocator`'s fields), and the pool's per-job and recent
assignment counts the API shows. Saved in Redis (``easel:pool:allocator``, :mod:`easel.pool`) after every
allocation pass; a restarted admin restores it before its first pass, so a user who had waited keeps its
place under the floor instead of starting again from zero.

The allocator's fields are copied by name and kind (counts, per-user maps, numbers), so the policy may gain or
lose fields without a format of its own here; a saved field the allocator no longer has, or whose kind changed,
is left at its fresh value (and logged). Not restored: the policy and pool size (this admin's settings) and the
allocator's clock (``last_at``, a monotonic reading of the process that saved it) — the time admin was down is
not counted toward any user's claim — and the fields the allocator marks process-local (``PROCESS_LOCAL``). A saved state of another policy is ignored: its counts meant something
else. Losing Redis loses only this memory (the floor starts counting afresh), never a trial: PostgreSQL is
the record.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import fields
from typing import Any

from easel.allocation import Allocator

log = logging.getLogger("admin.train_pool")

SETTINGS_AND_CLOCK = frozenset({"policy", "workers", "last_at"})  # this admin's, never restored


def _plain(value: Any) -> Any:
    if isinstance(value, dict):  # Counter included
        return dict(value)
    if isinstance(value, (list, tuple, deque)):
        return list(value)
    return value


def saved_state(allocator: Allocator, by_job: Counter[str], recent: deque[dict[str, Any]]) -> dict[str, Any]:
    """The JSON-able memory of one pool: the allocator's fields, and the API's counts."""
    remembered = {f.name: _plain(getattr(allocator, f.name)) for f in fields(allocator)
                  if f.name not in SETTINGS_AND_CLOCK and f.metadata.get("remembered", True)}
    return {"policy": allocator.policy, "allocator": remembered, "by_job": dict(by_job), "recent": list(recent)}


def _restored(current: Any, value: Any) -> Any:
    """``value`` in the kind of ``current``; None when it is not of that kind."""
    if isinstance(current, Counter) and isinstance(value, dict):
        return Counter(value)
    if isinstance(current, dict) and isinstance(value, dict):
        return dict(value)
    if isinstance(current, bool) or isinstance(value, bool):
        return None
    if isinstance(current, (int, float)) and isinstance(value, type(current)):
        return value
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    return None


def restore(allocator: Allocator, by_job: Counter[str], recent: deque[dict[str, Any]],
            saved: dict[str, Any] | None) -> bool:
    """Put ``saved`` (from :func:`saved_state`) back into the pool's objects, in place. False when there was
    nothing to restore (none saved, another policy's, or unreadable)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("allocator"), dict):
        return False
    if saved.get("policy") != allocator.policy:
        log.info("the saved pool allocation is of policy %r, this admin's is %r: starting afresh",
                 saved.get("policy"), allocator.policy)
        return False
    skipped = []
    for f in fields(allocator):
        if f.name in SETTINGS_AND_CLOCK or not f.metadata.get("remembered", True) or f.name not in saved["allocator"]:
            continue
        value = _restored(getattr(allocator, f.name), saved["allocator"][f.name])
        if value is None:
            skipped.append(f.name)
        else:
            setattr(allocator, f.name, value)
    if skipped:
        log.warning("pool allocation: saved fields %s are not of the allocator's kind; left fresh", skipped)
    if isinstance(saved.get("by_job"), dict):
        by_job.update(Counter(saved["by_job"]))
    if isinstance(saved.get("recent"), list):
        recent.extend(item for item in saved["recent"] if isinstance(item, dict))
    return True


__all__ = ["restore", "saved_state"]
