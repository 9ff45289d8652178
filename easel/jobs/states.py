"""The allowed status transitions of every stateful record, as data.

One :class:`StatusMachine` per status column: for each target state, the states it may be entered from.
The named transitions in :mod:`easel.jobs.lifecycle` are the only writers of a status column; they move
a loaded row with :meth:`StatusMachine.move` (an illegal move raises :class:`IllegalTransition`), or
change rows in the database with :meth:`StatusMachine.update` — ``UPDATE ... WHERE status IN (allowed
from-states)``, so a writer that loses a race to another process changes nothing instead of overwriting.

To add a state (say, an inference job that is ``DEGRADED``): add it to the enum in
:mod:`easel.db.enums` (and a migration for the column's check constraint), add its row here, and add it
to the from-states of the states it may leave to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Update, update
from sqlalchemy.orm import Session

from easel.db.enums import ExplanationStatus, JobStatus, ServiceStatus, Stage, TrialStatus, UpdateStatus


class IllegalTransition(ValueError):
    """A status change the life cycle does not allow (e.g. a STOPPED job made RUNNING)."""


@dataclass(frozen=True)
class StatusMachine:
    """The life cycle of one kind of record: ``edges[to]`` are the states it may be entered from."""

    name: str
    edges: Mapping[StrEnum, frozenset[StrEnum]]
    initial: StrEnum
    #: states in which the record has ended (entering one stamps ``stopped_at``)
    final: frozenset[StrEnum]

    @property
    def live(self) -> tuple[StrEnum, ...]:
        """States that can still change: every from-state of some edge, in enum order."""
        sources = set().union(*self.edges.values())
        return tuple(s for s in type(self.initial) if s in sources)

    def sources(self, to: StrEnum) -> frozenset[StrEnum]:
        if to not in self.edges:
            raise IllegalTransition(f"a {self.name} never becomes {to}")
        return self.edges[to]

    def can(self, current: StrEnum, to: StrEnum) -> bool:
        return to in self.edges and current in self.edges[to]

    def check(self, current: StrEnum, to: StrEnum) -> None:
        if current not in self.sources(to):
            allowed = ", ".join(sorted(self.edges[to]))
            raise IllegalTransition(f"a {self.name} cannot go from {current} to {to} (only from {allowed})")

    def move(self, row: Any, to: StrEnum, now: datetime | None = None) -> None:
        """Set ``row.status`` (and ``stopped_at`` when ``to`` is final); raises if the move is illegal."""
        self.check(row.status, to)
        row.status = to
        if to in self.final and hasattr(row, "stopped_at"):
            row.stopped_at = now or datetime.now(UTC)

    def statement(self, entity: type, where: Iterable[Any], to: StrEnum, values: Mapping[str, Any] | None = None,
                  *, sources: Iterable[StrEnum] | None = None) -> Update:
        """``UPDATE entity SET status = to WHERE <where> AND status IN (from-states)``: the from-states are
        those allowed to enter ``to``, or the subset ``sources`` of them."""
        allowed = self.sources(to)
        chosen = allowed if sources is None else frozenset(sources)
        if not chosen <= allowed:
            raise IllegalTransition(f"a {self.name} cannot go from {', '.join(sorted(chosen - allowed))} to {to}")
        extra = dict(values or {})
        if to in self.final and hasattr(entity, "stopped_at"):
            extra.setdefault("stopped_at", datetime.now(UTC))
        return update(entity).where(*where, entity.status.in_(sorted(chosen))).values(status=to, **extra)

    def update(self, session: Session, entity: type, where: Iterable[Any], to: StrEnum,
               values: Mapping[str, Any] | None = None, *, sources: Iterable[StrEnum] | None = None) -> int:
        """Run :meth:`statement`; returns how many rows moved (0: none was in an allowed state)."""
        return session.execute(self.statement(entity, where, to, values, sources=sources)).rowcount


def _machine(name: str, initial: StrEnum, edges: dict[StrEnum, Iterable[StrEnum]]) -> StatusMachine:
    frozen = {to: frozenset(sources) for to, sources in edges.items()}
    final = frozenset(to for to in frozen if not any(to in s for s in frozen.values()))
    return StatusMachine(name, frozen, initial, final)


_LIVE_JOB = (JobStatus.STARTED, JobStatus.RUNNING)
_JOB_EDGES: dict[StrEnum, Iterable[StrEnum]] = {
    JobStatus.RUNNING: (JobStatus.STARTED,),
    JobStatus.COMPLETED: _LIVE_JOB,
    JobStatus.STOPPED: _LIVE_JOB,
    JobStatus.ERRORED: _LIVE_JOB,
}

TRAIN_JOB = _machine("train job", JobStatus.STARTED, _JOB_EDGES)
SUB_TRAIN_JOB = _machine("sub-train-job", JobStatus.STARTED, _JOB_EDGES)
_LIVE_INFERENCE_JOB = (JobStatus.STARTED, JobStatus.RUNNING, JobStatus.DEGRADED)
INFERENCE_JOB = _machine("inference job", JobStatus.STARTED, {
    JobStatus.RUNNING: (JobStatus.STARTED, JobStatus.DEGRADED),  # every worker ready (again)
    JobStatus.DEGRADED: (JobStatus.RUNNING,),                    # fewer live workers than asked, or no predictor
    JobStatus.STOPPED: _LIVE_INFERENCE_JOB,
    JobStatus.ERRORED: _LIVE_INFERENCE_JOB,
})

_UNFINISHED_TRIAL = (TrialStatus.PENDING, TrialStatus.RUNNING)
TRIAL = _machine("trial", TrialStatus.PENDING, {
    TrialStatus.RUNNING: (TrialStatus.PENDING,),           # a worker claims it
    TrialStatus.PENDING: _UNFINISHED_TRIAL,                # re-issued after its worker was lost
    TrialStatus.COMPLETED: (TrialStatus.RUNNING,),
    TrialStatus.ERRORED: _UNFINISHED_TRIAL,                # the template raised, or every attempt was lost
    TrialStatus.TERMINATED: _UNFINISHED_TRIAL,             # the job stopped, or the budget ran out
})

_LIVE_SERVICE = (ServiceStatus.STARTED, ServiceStatus.RUNNING)
SERVICE = _machine("service", ServiceStatus.STARTED, {
    ServiceStatus.RUNNING: (ServiceStatus.STARTED,),
    ServiceStatus.STOPPED: _LIVE_SERVICE,
    ServiceStatus.ERRORED: _LIVE_SERVICE,
})

_LIVE_EXPLANATION = (ExplanationStatus.PENDING, ExplanationStatus.RUNNING)
EXPLANATION = _machine("explanation", ExplanationStatus.PENDING, {
    ExplanationStatus.RUNNING: _LIVE_EXPLANATION,                  # an explainer takes it (again, after one died)
    ExplanationStatus.COMPLETED: (ExplanationStatus.RUNNING,),
    ExplanationStatus.ERRORED: _LIVE_EXPLANATION,                  # it failed, timed out, or used up its attempts
})

INFERENCE_JOB_UPDATE = _machine("inference job update", UpdateStatus.RUNNING, {
    UpdateStatus.COMPLETED: (UpdateStatus.RUNNING,),   # traffic moved, the old workers drained and stopped
    UpdateStatus.ERRORED: (UpdateStatus.RUNNING,),     # the new version did not load: the old one kept serving
})

#: a model version's stage: any move but to the stage it is in (archived -> production is a rollback)
STAGE_EDGES: dict[Stage, frozenset[Stage]] = {to: frozenset(s for s in Stage if s != to) for to in Stage}

__all__ = ["EXPLANATION", "INFERENCE_JOB_UPDATE", "STAGE_EDGES", "INFERENCE_JOB", "SERVICE", "SUB_TRAIN_JOB", "TRAIN_JOB", "TRIAL", "IllegalTransition", "StatusMachine"]
