"""How far real mini-batch times stray from the times a plan was made with: the spread of a plan's total time.

Why: the exact plan fills its budget at the *mean* batch times, but the payoff is not symmetric — a plan that
overruns loses its last mini-batch (worth ``p``), while the width it bought was worth a few hundredths. On a
loaded machine (serving.json's sweep, load ~20 on 2 cores) the tight plans lost a mini-batch in two windows of
three and fell below a fixed width with slack. The remedy is a reserve on the plan's *total* time: its spread
grows as ``sqrt(sum n_i t_i^2)`` (independent batches), not as the ``sum n_i sd_i`` a per-batch slack charges.

One estimate per worker for its life, shared across policy rebuilds (as :class:`ArrivalRate` is): pooled over
widths (load noise is multiplicative and shared by all of them; the narrow widths, measured most, inform the
wide ones), relative to the planned time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scheduler.checks import positive, real

_ERROR_CAP = 1.0  # relative error counted at most (measured <= 2x planned)


class TimeNoise:
    """EWMA of the squared relative error ``(measured / planned - 1)^2`` of full mini-batches."""

    def __init__(self, alpha: float = 0.05, prior_cv: float = 0.0) -> None:
        alpha = positive("alpha", alpha)
        if alpha > 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        prior_cv = real("prior_cv", prior_cv)
        if prior_cv < 0.0:
            raise ValueError(f"prior_cv must be >= 0, got {prior_cv}")
        self.alpha = alpha
        self._cv2 = prior_cv * prior_cv
        self.samples = 0

    def observe(self, planned: float, measured: float) -> None:
        planned, measured = real("planned", planned), real("measured", measured)
        if planned <= 0.0 or measured < 0.0:
            return  # nothing to learn from a time that cannot be a batch's
        # One stall (a GIL hand-off, a burst on a peer process) counts as at most twice the planned time, as
        # the worker's EWMA caps it: a single 10x outlier would otherwise hold the reserve up for ~50 batches.
        error = min(measured / planned - 1.0, _ERROR_CAP)
        self._cv2 += self.alpha * (error * error - self._cv2)
        self.samples += 1

    @property
    def cv(self) -> float:
        """Relative standard deviation of one mini-batch's time."""
        return math.sqrt(self._cv2)

    def spread(self, batch_times: Sequence[float], counts: Sequence[int]) -> float:
        """Standard deviation (seconds) of the total time of ``counts`` mini-batches at ``batch_times``."""
        return self.cv * math.sqrt(math.fsum(n * t * t for n, t in zip(counts, batch_times, strict=True)))
