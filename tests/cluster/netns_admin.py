"""Admin for the multi-host test, run on the ``ctl`` host: the real admin app whose launcher places each
service on its host.

:class:`PlacingLauncher` is the local launcher with one change, the part ``ssh host`` or a cluster scheduler
would play: the command runs on the host chosen for the service's kind (``ip netns exec <host> ...``), with that
host's own ``EASEL_DATA_DIR``; a predictor advertises the URL it is reachable at from other hosts. Processes,
pids, exit codes, logs and the supervisor's relaunches are the local launcher's, unchanged.

Usage: ``python netns_admin.py --host IP --port PORT --placement JSON`` where JSON maps a service kind
(``ADVISOR``, ...) to ``{"netns": ..., "address": ..., "data_dir": ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from admin.app import create_app
from easel.db.enums import ServiceKind
from easel.launcher import LocalLauncher, ServiceSpec, ServiceState
from easel.settings import Settings, get_settings


class PlacingLauncher(LocalLauncher):
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], placement: dict[str, Any]) -> None:
        super().__init__(settings, sessions)
        self.placement = placement

    def start(self, spec: ServiceSpec) -> ServiceState:
        host = self.placement[spec.kind.value]
        if spec.argv[:3] == ["ip", "netns", "exec"]:  # a relaunch by the supervisor: already placed
            return super().start(spec)
        env = {**spec.env, "EASEL_DATA_DIR": host["data_dir"]}
        if spec.kind == ServiceKind.PREDICTOR and spec.port is not None:
            env["EASEL_PREDICTOR_URL"] = f"http://{host['address']}:{spec.port}"
        argv = ["ip", "netns", "exec", host["netns"], *spec.argv]
        return super().start(dataclasses.replace(spec, argv=argv, env=env))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--placement", required=True)
    args = parser.parse_args()
    settings = get_settings()
    placement = json.loads(args.placement)
    app = create_app(settings, lambda sessions: PlacingLauncher(settings, sessions, placement))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
