"""Shared by the serving tests (imported by name, like ``admin_helpers``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
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


def sdk_send(window_s: float = 10.0, api_key: str | None = None) -> Callable[[], Any]:
    """A sender for :class:`easel.chaos.SteadyLoad` that sends through the SDK's ``predict``, retries and all
    (``sdk.retry``: a transport error or a 503 is sent again within ``window_s``), with the job's ``api_key``, so
    the load counts what a client of the SDK sees. Shared with ``benchmarks/chaos.py``."""
    from easel.chaos import Outcome
    from sdk import ApiError, ConnectionFailed, RetryPolicy

    def make() -> Callable[[str, dict[str, Any]], Outcome]:
        client = Client("http://unused.invalid", timeout=30.0)  # predict is given the predictor's URL
        policy = RetryPolicy(window_s=window_s)

        def send(url: str, body: dict[str, Any]) -> Outcome:
            try:
                answer = client.predict("", 0, body["instances"], body["deadline_s"], predictor_url=url,
                                        api_key=api_key, retry=policy)
            except ConnectionFailed as error:
                connect = isinstance(error.__cause__, httpx.ConnectError)
                return Outcome(None, failure="connect" if connect else "lost", attempts=error.attempts)
            except ApiError as error:
                retry_after = error.response.headers.get("retry-after") if error.response is not None else None
                return Outcome(error.status_code, attempts=error.attempts, retry_after_s=float(retry_after or 0.2))
            predictions = [{"index": p.index, "status": p.status, "model_version": p.model_version}
                           for p in answer.predictions]
            return Outcome(200, {"predictions": predictions, "totals": answer.totals}, attempts=answer.attempts)

        return send

    return make
