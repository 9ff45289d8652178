"""What every part of the local stack offers: start, stop, health."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from easel.stack.process import StackError, port_in_use, read_pid, terminate


@dataclass(frozen=True)
class PartHealth:
    name: str
    running: bool
    healthy: bool
    url: str
    version: str | None = None
    pid: int | None = None
    detail: str = ""


class StackPart(ABC):
    """A server on a loopback port, started detached and tracked by a pid file under ``root``."""

    name: str

    def __init__(self, root: Path, port: int) -> None:
        self.root = root / self.name
        self.port = port

    @property
    def pid_file(self) -> Path:
        return self.root / "server.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    @abstractmethod
    def url(self) -> str: ...

    @abstractmethod
    def _start(self) -> None:
        """Start the server and return once it answers."""

    @abstractmethod
    def version(self) -> str:
        """Ask the running server for its version (raises if it does not answer)."""

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def start(self) -> bool:
        """Start unless already running; returns True if this call started it."""
        if self.pid() is not None:
            return False
        if port_in_use(self.port):
            raise StackError(
                f"{self.name}: port {self.port} on 127.0.0.1 is already taken by another program; "
                f"stop it or choose another port with EASEL_{self.name.upper()}_PORT"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._start()
        return True

    def stop(self) -> bool:
        """Stop if running; returns True if this call stopped it."""
        pid = self.pid()
        if pid is None:
            return False
        terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def health(self) -> PartHealth:
        pid = self.pid()
        if pid is None:
            return PartHealth(self.name, False, False, self.url, detail="not running")
        try:
            return PartHealth(self.name, True, True, self.url, version=self.version(), pid=pid)
        except Exception as error:  # noqa: BLE001 - any failure to answer means unhealthy
            return PartHealth(self.name, True, False, self.url, pid=pid, detail=str(error))
