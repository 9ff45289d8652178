"""Service launcher: one interface, a backend per kind of cluster."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from easel.launcher.base import Launcher, ServiceSpec, ServiceState
from easel.launcher.local import LocalLauncher
from easel.settings import LauncherKind, Settings

__all__ = ["Launcher", "LocalLauncher", "ServiceSpec", "ServiceState", "make_launcher"]


def make_launcher(settings: Settings, sessions: sessionmaker[Session]) -> Launcher:
    if settings.launcher == LauncherKind.LOCAL:
        return LocalLauncher(settings, sessions)
    if settings.launcher == LauncherKind.KUBERNETES:
        from easel.launcher.kubernetes import KubernetesLauncher  # the client is loaded only where it is used

        return KubernetesLauncher(settings, sessions)
    raise ValueError(f"EASEL_LAUNCHER={settings.launcher.value!r} is not a launcher; use 'local' or 'kubernetes'")
