"""Chaos tooling shared by the chaos tests and ``benchmarks/chaos.py``: a steady load of client threads on a
predictor, with an exact tally of what happened to every instance sent.

A request is *accepted* when the predictor answers 200; each of its instances must then be answered exactly
once, ``served`` or ``dropped``. A request refused at once (429 overloaded, 503 unavailable) is *refused*:
nothing of it was accepted. A request whose connection broke before an answer (a predictor killed under it)
is *lost in flight*: its instances are counted unanswered, because the client never learned their fate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psutil


@dataclass
class Tally:
    requests: int = 0
    accepted: int = 0  # requests answered 200
    refused: int = 0  # 429 / 503: refused at once, nothing accepted
    lost_in_flight: int = 0  # the connection broke before an answer
    connect_failed: int = 0  # nobody listening (nothing was sent)
    other_errors: int = 0
    instances_accepted: int = 0
    served: int = 0
    dropped: int = 0
    dropped_at_deadline: int = 0  # no worker answered: the predictor answered them dropped at the deadline
    unanswered: int = 0  # accepted instances not answered exactly once, plus those lost in flight
    late_answers: int = 0  # answers later than deadline + margin, as the client saw them (for information)
    codes: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # served instances by the model version that answered

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SteadyLoad:
    """``threads`` clients, each sending ``instances`` per request with ``deadline_s``, back to back (or one
    request per ``pause_s``), until :meth:`stop`. ``url`` is read through a callable, so a relaunched
    predictor on a new address is followed. ``api_key`` is an API key of the inference job."""

    def __init__(self, url: Callable[[], str], batch: Sequence[Any], deadline_s: float, threads: int = 2,
                 pause_s: float = 0.0, late_margin_s: float = 1.0, api_key: str | None = None) -> None:
        self.url, self.batch, self.deadline_s = url, list(batch), deadline_s
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.threads, self.pause_s, self.late_margin_s = threads, pause_s, late_margin_s
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.served_at: list[float] = []  # monotonic times of requests with at least one served instance

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for i in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> Tally:
        self._stop.set()
        for thread in self._workers:
            thread.join(self.deadline_s + 30)
        return self.tally

    def snapshot(self) -> Tally:
        with self._lock:
            return Tally(**{**asdict(self.tally), "codes": dict(self.tally.codes), "versions": dict(self.tally.versions)})

    def _run(self) -> None:
        body = {"instances": self.batch, "deadline_s": self.deadline_s}
        n = len(self.batch)
        with httpx.Client(timeout=httpx.Timeout(self.deadline_s + 20, connect=2.0), headers=self.headers) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    response = client.post(f"{self.url()}/predict", json=body)
                except httpx.ConnectError:
                    self._count(connect_failed=1)
                    self._stop.wait(0.1)
                    continue
                except httpx.TransportError:  # sent, then the connection broke or timed out
                    self._count(lost_in_flight=1, unanswered=n)
                    continue
                took = time.monotonic() - began
                self._record(response, n, took)
                if self.pause_s:
                    self._stop.wait(self.pause_s)

    def _record(self, response: httpx.Response, n: int, took: float) -> None:
        code = str(response.status_code)
        if response.status_code in (429, 503):
            self._count(refused=1, code=code)
            self._stop.wait(min(2.0, float(response.headers.get("retry-after", "0.2") or 0.2)))
            return
        if response.status_code != 200:
            self._count(other_errors=1, code=code)
            return
        answer = response.json()
        predictions = answer.get("predictions", [])
        seen = [p.get("index") for p in predictions]
        statuses = [p.get("status") for p in predictions]
        complete = seen == list(range(n)) and all(s in ("served", "dropped") for s in statuses)
        served = sum(s == "served" for s in statuses)
        with self._lock:
            t = self.tally
            t.requests += 1
            t.accepted += 1
            t.codes[code] = t.codes.get(code, 0) + 1
            t.instances_accepted += n
            t.served += served
            t.dropped += sum(s == "dropped" for s in statuses)
            t.dropped_at_deadline += int(answer.get("totals", {}).get("unanswered", 0))
            t.unanswered += 0 if complete else n
            t.late_answers += int(took > self.deadline_s + self.late_margin_s)
            for p in predictions:
                if p.get("status") == "served":
                    key = str(p.get("model_version"))
                    t.versions[key] = t.versions.get(key, 0) + 1
            if served:
                self.served_at.append(time.monotonic())

    def _count(self, code: str | None = None, **counts: int) -> None:
        with self._lock:
            t = self.tally
            t.requests += 1
            for name, value in counts.items():
                setattr(t, name, getattr(t, name) + value)
            if code is not None:
                t.codes[code] = t.codes.get(code, 0) + 1


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    """Poll ``check`` until it returns something true; AssertionError naming ``what`` after ``timeout_s``."""
    give_up = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - a service restarting under the check: try again
            value = None
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def process_alive(pid: int | None) -> bool:
    """The process exists and has not exited (a killed child not yet reaped is a zombie: not alive)."""
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def health(url: str) -> dict[str, Any] | None:
    try:
        return httpx.get(f"{url}/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


__all__ = ["SteadyLoad", "Tally", "health", "process_alive", "wait_for"]
