"""The SDK's predict retry loop (pure logic: ``post`` is the seam; the chaos suite runs it against a real
predictor that is killed under load)."""

from __future__ import annotations

import httpx
import pytest

from sdk.retry import IDEMPOTENCY_HEADER, RetryPolicy, send_with_retry

REQUEST = httpx.Request("POST", "http://predictor/predict")


class Script:
    """Answers attempts from a list: an exception is raised, a status code is answered."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.headers: list[dict[str, str]] = []

    def __call__(self, headers: dict[str, str]) -> httpx.Response:
        self.headers.append(dict(headers))
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return httpx.Response(int(step), request=REQUEST, headers={"Retry-After": "0"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_lost_and_refused_attempts_and_503_are_sent_again_with_one_request_id() -> None:
    script = Script(httpx.RemoteProtocolError("Server disconnected"), httpx.ConnectError("refused"), 503, 200)
    clock = Clock()
    record = send_with_retry(script, RetryPolicy(window_s=10.0, base_s=0.1, cap_s=1.0), clock.sleep, clock)
    assert record.response is not None and record.response.status_code == 200
    assert (record.attempts, record.lost, record.refused, record.unavailable) == (4, 1, 1, 1)
    assert {h[IDEMPOTENCY_HEADER] for h in script.headers} == {record.request_id}, "one id for every attempt"
    assert len(clock.slept) == 3 and all(0.05 <= s <= 1.0 for s in clock.slept)
    assert clock.slept[2] >= clock.slept[0] / 2  # grows (jittered)


@pytest.mark.parametrize("status", [200, 429, 422])
def test_answers_other_than_503_are_final(status: int) -> None:
    record = send_with_retry(Script(status), RetryPolicy(), lambda _s: None)
    assert record.attempts == 1 and record.response is not None and record.response.status_code == status


def test_the_window_bounds_the_retries() -> None:
    clock = Clock()
    script = Script(*[httpx.ConnectError("refused")] * 100)
    record = send_with_retry(script, RetryPolicy(window_s=2.0, base_s=0.1, cap_s=0.5), clock.sleep, clock)
    assert record.response is None and isinstance(record.error, httpx.ConnectError)
    assert clock.now <= 2.0 and record.attempts == record.refused >= 5
    never = send_with_retry(Script(httpx.ConnectError("refused")), RetryPolicy(window_s=0), clock.sleep, clock)
    assert never.attempts == 1 and never.response is None


def test_a_bad_policy_names_its_argument() -> None:
    with pytest.raises(ValueError, match="window_s"):
        RetryPolicy(window_s=-1)
    with pytest.raises(ValueError, match="base_s"):
        RetryPolicy(base_s=2.0, cap_s=1.0)
