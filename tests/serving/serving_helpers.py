"""Shared by the serving tests (imported by name, like ``admin_helpers``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk import Client, InferenceJob


@dataclass
class Deployed:
    client: Client
    app: str
    version: int
    job: InferenceJob
    x: np.ndarray  # validation images, (N, 1, 8, 8)
    y: np.ndarray
    key: str = ""  # an API key of the job (the client sends it too)

    @property
    def auth(self) -> dict[str, str]:
        """Headers that carry the job's API key, for calls straight to the predictor."""
        return {"Authorization": f"Bearer {self.key}"}


def wait_until(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    give_up = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)
