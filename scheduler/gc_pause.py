"""Decisions run with Python's cyclic garbage collector paused: a collection is deferred, never skipped.

A decision allocates a few hundred small objects; whichever allocation crosses the collector's threshold
pays for a collection of the whole young generation, and now and then of the whole heap — milliseconds in
a worker that holds a model, on the request path of a decision budgeted at one. Pausing the collector for
the decision moves that work to the next allocation after it (the worker's batch work), where it costs the
same and delays no plan. Reference counting still frees everything at once, so memory is unchanged.
Nested pauses are free (the inner one sees the collector already paused), and a collector that the
application paused itself is left paused.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic collector paused (see the module docstring)."""

    @functools.wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused
