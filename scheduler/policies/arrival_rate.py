"""A worker's arrival rate of mini-batches: an upper confidence bound, and the rate arrivals see (for pricing
its time)."""

from __future__ import annotations

from collections import deque

from scheduler.checks import count, real

_GAPS = 16


class ArrivalRate:
    """Mini-batches per second arriving at one worker, overestimated by ``confidence`` standard deviations.

    Two estimates, and the larger wins: the count over the last ``window`` seconds, which follows a
    change of load quickly, and the mean over up to ``history`` past windows, which is steadier. The
    spread of a window's count is measured over those past windows (until there are ``min_history``,
    as if tasks arrived as a Poisson process). Measuring it at the window's own time scale keeps a
    constant rate from being treated as random, and bursts shorter than a window from counting as load.

    Bursts longer than the tasks' deadline are load all the same: a queue can delay work by at most a
    deadline, so a burst that outlasts it must be served at the burst's own rate, whatever the long-run mean.
    ``seen`` measures that: the rate each arriving mini-batch saw over the ``horizon`` before it (the other
    arrivals in that span), averaged over the window. It is the load as work meets it (Palm's view: most
    work arrives inside bursts), equal to the mean rate for Poisson or periodic arrivals, and up to the
    burst rate for on-off traffic. ``horizon`` is the longest deadline planned for (``cover``).
    """

    def __init__(self, window: float, confidence: float, history: int = 20, min_history: int = 3) -> None:
        window = real("window", window)
        if not window > 0.0:
            raise ValueError(f"rate window must be > 0 seconds, got {window}")
        confidence = real("confidence", confidence)
        if confidence < 0.0:
            raise ValueError(f"confidence must be >= 0, got {confidence}")
        self.window = window
        self.confidence = confidence
        self._min_history = max(2, min_history)
        self._recent: deque[tuple[float, int]] = deque()  # (time, mini-batches) inside the window
        self._recent_mb = 0
        self._first: float | None = None
        self._last = 0.0
        self._bins: deque[int] = deque(maxlen=history)  # mini-batches per past window
        self._bin_start = 0.0
        self._bin_count = 0
        self._gaps: deque[float] = deque(maxlen=_GAPS)  # the last few gaps between arrivals
        self.horizon = 0.0  # seconds: the longest deadline planned for (see ``cover``)
        self._near: deque[tuple[float, int]] = deque()  # arrivals within the horizon of the newest
        self._near_mb = 0
        self._seen: deque[tuple[float, int, float]] = deque()  # (time, mini-batches, rate seen) in the window
        self._seen_mb = 0
        self._seen_load = 0.0  # sum of mini-batches * rate seen, over _seen
        # Estimates change only when work arrives (``add``), and a worker asks for them on every (re-)plan.
        self._memo: dict[float | str, float] = {}

    def cover(self, deadline: float) -> None:
        """A task is planned with ``deadline`` seconds left: the horizon becomes the longest such deadline."""
        if deadline > self.horizon:
            self.horizon = deadline

    def add(self, n_mb: int, now: float) -> None:
        n_mb, now = count("n_mb", n_mb), real("now", now)
        self._memo.clear()
        if self._first is not None:
            self._gaps.append(max(0.0, now - self._last))
        if self._first is None:
            self._first = self._bin_start = now
        while now >= self._bin_start + self.window:
            self._bins.append(self._bin_count)
            self._bin_count = 0
            self._bin_start += self.window
        self._bin_count += n_mb
        self._last = now
        self._recent.append((now, n_mb))
        self._recent_mb += n_mb
        while self._recent[0][0] < now - self.window:
            self._recent_mb -= self._recent.popleft()[1]
        self._add_seen(n_mb, now)

    def _add_seen(self, n_mb: int, now: float) -> None:
        near, horizon = self._near, self.horizon
        while near and near[0][0] <= now - horizon:
            self._near_mb -= near.popleft()[1]
        span = min(horizon, now - self._first) if self._first is not None else 0.0
        rate = self._near_mb / span if span > 0.0 else 0.0
        near.append((now, n_mb))
        self._near_mb += n_mb
        seen = self._seen
        seen.append((now, n_mb, rate))
        self._seen_mb += n_mb
        self._seen_load += n_mb * rate
        while seen[0][0] < now - self.window:
            _, n, r = seen.popleft()
            self._seen_mb -= n
            self._seen_load -= n * r

    def seen(self) -> float:
        """Mini-batches per second that arriving mini-batches saw, over the ``horizon`` before each one, as a
        mean over the last ``window`` seconds (0 before the horizon is known or with no arrivals)."""
        if not self._seen_mb:
            return 0.0
        memo = self._memo.get("seen")
        if memo is None:
            memo = self._memo["seen"] = max(0.0, self._seen_load / self._seen_mb)
        return memo

    def next_arrival(self) -> float | None:
        """Earliest time the next task is expected: the last arrival plus the shortest recent gap (None
        before two arrivals). With periodic arrivals it is exact; with random ones the shortest of a few
        gaps is small, so the prediction errs towards "soon" — towards sharing time."""
        if not self._gaps:
            return None
        return self._last + min(self._gaps)

    def upper(self) -> float:
        """The upper bound, in mini-batches per second; 0 until two arrivals give a time span."""
        return self._estimate(self.confidence)

    def mean(self) -> float:
        """The same estimate without the safety margin: the rate itself, in mini-batches per second."""
        return self._estimate(0.0)

    def _estimate(self, confidence: float) -> float:
        memo = self._memo.get(confidence)
        if memo is None:
            memo = self._memo[confidence] = self._estimate_now(confidence)
        return memo

    def _estimate_now(self, confidence: float) -> float:
        if self._first is None:
            return 0.0
        elapsed = min(self.window, self._last - self._first)
        if elapsed <= 0.0:
            return 0.0
        count, tasks = self._recent_mb, len(self._recent)
        if self._last - self._first < self.window:
            # Still inside the first window: the first arrival opens the span, it does not fall in it (k
            # arrivals span k - 1 gaps), so counting it would overstate a new worker's load.
            count -= self._recent[0][1]
            tasks -= 1
        bins = self._bins
        if len(bins) >= self._min_history:
            mean = sum(bins) / len(bins)
            spread = (sum((b - mean) ** 2 for b in bins) / (len(bins) - 1)) ** 0.5
            steady = (mean + confidence * spread / len(bins) ** 0.5) / self.window
        else:
            spread = count / tasks**0.5  # Poisson tasks: sd = n_mb * sqrt(tasks)
            steady = 0.0
        return max((count + confidence * spread) / elapsed, steady)
