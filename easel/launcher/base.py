"""The service launcher interface: start, stop and inspect a named service process with env vars.

A backend records every service it launches in the ``services`` table, so admin (and a restarted admin)
can see and stop what runs. Backends: ``local`` (subprocesses) now, ``kubernetes`` (pods) later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from easel.db.enums import ServiceKind, ServiceStatus


@dataclass(frozen=True)
class ServiceSpec:
    """What to run. ``argv`` is the full command line; ``env`` is added to the platform's settings env."""

    name: str
    kind: ServiceKind
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    host: str | None = None
    port: int | None = None
    sub_train_job_id: str | None = None
    inference_job_id: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.argv:
            raise ValueError("a service needs a name and a non-empty argv")
        bad = [key for key in self.env if not key or "=" in key]
        if bad:
            raise ValueError(f"invalid environment variable names: {bad}")


@dataclass(frozen=True)
class ServiceState:
    id: str
    name: str
    kind: ServiceKind
    status: ServiceStatus
    pid: int | None
    exit_code: int | None
    log_path: str | None

    @classmethod
    def of(cls, row: Any) -> ServiceState:
        """The state recorded on a ``services`` row."""
        return cls(row.id, row.name, row.kind, row.status, row.pid, row.exit_code, row.log_path)


class Launcher(ABC):
    #: recorded in ``services.launcher``: each launcher inspects and stops only the services it recorded
    name: ClassVar[str]

    @abstractmethod
    def start(self, spec: ServiceSpec) -> ServiceState: ...

    @abstractmethod
    def stop(self, service_id: str, timeout_s: float = 10.0) -> ServiceState: ...

    @abstractmethod
    def status(self, service_id: str) -> ServiceState:
        """The service's state, reconciled with reality (a process that died is no longer RUNNING)."""

    def warm_up(self, kind: ServiceKind, pythonpath: str | None = None) -> None:
        """Prepare to start services of ``kind`` (with this ``PYTHONPATH``) fast; where a launcher cannot, nothing."""
        return None

    def close(self) -> None:
        """Release what the launcher holds for itself (the services it started go on)."""
        return None

    def on_exit(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(service_id)`` the moment a service this launcher started ends, where the launcher
        can tell (the local one waits on its children); elsewhere the supervisor finds deaths by polling."""
        return None
