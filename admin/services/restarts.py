"""When the supervisor relaunches a dead service, and when it gives up: the restart policy of one *slot*.

A slot is one service a job asked for — its advisor, its third train worker, its predictor — and keeps its
name across relaunches, so the ``services`` rows with that name are the slot's history: how often it was
relaunched and when its latest process ended. Decisions are made from that history alone (no memory in
admin), so a restarted admin picks up where the last one left off.

A slot's first relaunch is immediate when its process had started: one death is a fault to repair, and every
second waited is a second the job runs short (a launch that failed outright waits ``base`` first). Relaunch ``n`` (n = 2, 3, …) waits ``base * 2**(n-2)`` seconds after the death, capped at
``cap``, jittered into ``[delay/2, delay]`` (seeded by the dead service's id, so every tick computes the same
due time) — a service that keeps dying is a crash loop, and backing off keeps it from eating the machine; a
slot already relaunched ``max_restarts`` times is given up on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from easel.db.enums import ServiceKind, ServiceStatus

SERVING = (ServiceKind.PREDICTOR, ServiceKind.INFERENCE_WORKER)
TRAINING = (ServiceKind.ADVISOR, ServiceKind.TRAIN_WORKER)
ALIVE = (ServiceStatus.STARTED, ServiceStatus.RUNNING)


@dataclass(frozen=True)
class Death:
    """The latest process of a slot, ended."""

    service_id: str
    name: str
    kind: ServiceKind
    status: ServiceStatus
    exit_code: int | None
    stopped_at: datetime | None
    launches: int  # rows with this slot's name: 1 + relaunches so far
    started: bool = True  # its process or pod existed (False: the launch itself failed)


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    base_s: float = 1.0
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("restart policy needs max_restarts >= 0 and 0 < base_s <= cap_s")

    def needs_relaunch(self, death: Death) -> bool:
        """Only a service that *failed* (ERRORED: killed, crashed, exit code not 0 or unknown) is relaunched.
        STOPPED means it was stopped on purpose (the launcher's stop: a job stopping, ``easel down``) or
        finished its work (a train worker told to stop, an advisor whose budget is spent)."""
        return death.status == ServiceStatus.ERRORED

    def exhausted(self, death: Death) -> bool:
        return death.launches - 1 >= self.max_restarts

    def delay_s(self, death: Death) -> float:
        if death.launches <= 1 and death.started:
            return 0.0
        # A launch that failed outright (refused by the cluster, no such program) is not a fault repaired by
        # trying again at once — and on a job's first launch, the launch path itself is still handling it.
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (death.launches - (2 if death.started else 1)))
        return random.Random(death.service_id).uniform(ceiling / 2, ceiling)

    def due_at(self, death: Death, now: datetime) -> datetime:
        ended = death.stopped_at or now
        if ended.tzinfo is None and now.tzinfo is not None:
            ended = ended.replace(tzinfo=now.tzinfo)
        return ended + timedelta(seconds=self.delay_s(death))


__all__ = ["ALIVE", "SERVING", "TRAINING", "Death", "RestartPolicy"]
