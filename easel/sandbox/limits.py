"""What a sandboxed process may use (rlimits, scratch size, call timeout), and applying it to oneself."""

from __future__ import annotations

import contextlib
import resource
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from easel.settings import Settings


@dataclass(frozen=True)
class SandboxLimits:
    """Zero means "no cap" for ``memory_mb`` and ``cpu_s``."""

    memory_mb: int = 8192
    cpu_s: int = 0
    nproc: int = 256
    nofile: int = 1024
    file_mb: int = 1024
    scratch_mb: int = 512
    call_timeout_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings, *, cpu_capped: bool) -> SandboxLimits:
        """Training and checking sandboxes get the CPU-seconds cap; a serving one lives as long as its worker,
        so only its per-call timeout bounds it."""
        return cls(memory_mb=settings.sandbox_memory_mb, cpu_s=settings.sandbox_cpu_s if cpu_capped else 0,
                   nproc=settings.sandbox_nproc, nofile=settings.sandbox_nofile,
                   scratch_mb=settings.sandbox_scratch_mb, call_timeout_s=settings.sandbox_call_timeout_s)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxLimits:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def apply_limits(limits: SandboxLimits) -> None:
    """Lower this process's soft *and* hard limits (so the template cannot raise them again)."""

    def cap(kind: int, value: int) -> None:
        _soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (value, value))

    if limits.memory_mb:
        cap(resource.RLIMIT_AS, limits.memory_mb << 20)
    if limits.cpu_s:
        cap(resource.RLIMIT_CPU, limits.cpu_s)
    cap(resource.RLIMIT_NPROC, limits.nproc)
    cap(resource.RLIMIT_NOFILE, limits.nofile)
    cap(resource.RLIMIT_FSIZE, limits.file_mb << 20)
    cap(resource.RLIMIT_CORE, 0)
