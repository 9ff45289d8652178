"""When the predictor moves its job's requests to the next topic generation, and when an old one may go.

Pure bookkeeping (the predictor does the broker calls, :mod:`easel.request_topics`):

* the predictor sends to the *current* generation; the *next* one is made ahead, and named in Redis once the
  current one is half way to its threshold (:meth:`TopicRotation.next_wanted`: an idle consumer costs a worker
  CPU); the workers then open its consumer (each generation has its own consumer group), so they already read
  it when the first task arrives there;
* once the current generation has taken ``rotate_bytes`` of messages, or is ``rotate_s`` old, and the workers
  have joined the next one's group (every partition of it has a reader; or, if they do not say so, once it has
  existed for ``lead_s``), the next one becomes current (the workers, told in Redis — or by the first message they read there — read it beside the
  old one until their share of the old one is answered) and a new next one is made;
* a retired generation gets no more messages (a task's generation is chosen, and its deadline kept, before its
  first message is sent: :meth:`TopicRotation.sending`); it is deleted once the latest deadline of anything sent
  to it has passed by ``grace_s`` and no live worker reads it any more — by then every instance in it has been
  answered, by a worker or as dropped by the predictor's deadline timer, so deleting it loses nothing (a late
  duplicate is already kept out by the per-instance de-duplication), and no consumer names it (the local
  broker re-creates a deleted topic that a client still asks about).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class _Retired:
    generation: int
    delete_at: float


class TopicRotation:
    """Thread-safe: the request path records sends; a housekeeping loop rotates and deletes."""

    def __init__(self, rotate_bytes: int, rotate_s: float, grace_s: float, lead_s: float = 0.0) -> None:
        for name, value in (("rotate_bytes", rotate_bytes), ("rotate_s", rotate_s), ("grace_s", grace_s),
                            ("lead_s", lead_s)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        self.rotate_bytes, self.rotate_s, self.grace_s, self.lead_s = rotate_bytes, rotate_s, grace_s, lead_s
        self._lock = threading.Lock()
        self.current = 0
        self._began = 0.0
        self._next_made_at: float | None = None  # when the next generation was made (or found made)
        self._bytes = 0
        self._last_deadline = 0.0
        self._retired: list[_Retired] = []
        self.rotations = 0

    @property
    def enabled(self) -> bool:
        return self.rotate_bytes > 0

    def adopt(self, existing: Iterable[int], now: float, current: int | None = None) -> None:
        """Start from the broker's generations (a relaunched predictor continues the dead one's): ``current`` (what
        the workers were told) when it exists, else the newest; older ones retire now (their sender is gone;
        whatever it accepted was answered or is retried by its clients), a newer one is the next."""
        found = sorted(set(existing))
        with self._lock:
            self.current = current if current in found else (found[-1] if found else 0)
            self._next_made_at = now if self.current + 1 in found else None
            self._began = now
            self._bytes, self._last_deadline = 0, 0.0
            self._retired = [_Retired(g, now + self.grace_s) for g in found if g < self.current]

    def sending(self, deadline_at: float) -> int:
        """A task with ``deadline_at`` is about to be sent: the generation to send it to (the current one, which
        keeps this deadline, so it is not deleted before the task is answered)."""
        with self._lock:
            self._last_deadline = max(self._last_deadline, deadline_at)
            return self.current

    def sent(self, nbytes: int) -> None:
        """``nbytes`` of messages went to the current generation (what the size threshold counts)."""
        with self._lock:
            self._bytes += nbytes

    def next_made(self, now: float) -> None:
        """The next generation exists on the broker (made, or found made)."""
        with self._lock:
            if self._next_made_at is None:
                self._next_made_at = now

    def next_wanted(self, now: float) -> bool:
        """Time for the workers to open the next generation: it exists and the current one has taken half its
        ``rotate_bytes`` or is half ``rotate_s`` old (the switch waits for their group join in any case)."""
        with self._lock:
            if not self.enabled or self._next_made_at is None:
                return False
            return 2 * self._bytes >= self.rotate_bytes or (self.rotate_s > 0 and 2 * (now - self._began) >= self.rotate_s)

    @property
    def next_exists(self) -> bool:
        with self._lock:
            return self._next_made_at is not None

    def needs_next(self) -> bool:
        """Time to make the next generation: rotation is on and it does not exist yet."""
        with self._lock:
            return self.enabled and self._next_made_at is None

    def due(self, now: float, joined: bool = True) -> bool:
        """Time to rotate: the current generation is full or old, and the next one exists and is read (``joined``:
        every partition of it has a worker's consumer) or has existed for ``lead_s``."""
        with self._lock:
            if not self.enabled or self._next_made_at is None:
                return False
            if not joined and now - self._next_made_at < self.lead_s:
                return False
            return self._bytes >= self.rotate_bytes or (self.rotate_s > 0 and now - self._began >= self.rotate_s)

    def rotate(self, now: float) -> int:
        """The next generation becomes current; returns the new current. The old one is retired until its last
        deadline (or, if nothing was sent to it, now) has passed by ``grace_s``."""
        with self._lock:
            self._retired.append(_Retired(self.current, max(self._last_deadline, now) + self.grace_s))
            self.current += 1
            self._began, self._next_made_at = now, None
            self._bytes, self._last_deadline = 0, 0.0
            self.rotations += 1
            return self.current

    def retire_strays(self, existing: Iterable[int], now: float) -> None:
        """Generations older than the current one that nobody retired (a broker restart's re-made topics, a
        worker's default generation) retire now."""
        with self._lock:
            known = {r.generation for r in self._retired}
            self._retired += [_Retired(g, now + self.grace_s) for g in set(existing)
                              if g < self.current and g not in known]

    def deletable(self, now: float) -> list[int]:
        with self._lock:
            return sorted(r.generation for r in self._retired if r.delete_at <= now)

    def deleted(self, generations: Iterable[int]) -> None:
        gone = set(generations)
        with self._lock:
            self._retired = [r for r in self._retired if r.generation not in gone]

    @property
    def retiring(self) -> list[int]:
        with self._lock:
            return sorted(r.generation for r in self._retired)


__all__ = ["TopicRotation"]
