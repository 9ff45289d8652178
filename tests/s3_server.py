"""A local S3-compatible server for tests: moto's standalone server in its own process (a real HTTP S3 API)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

ACCESS_KEY, SECRET_KEY = "easel-test-key", "easel-test-secret"


@dataclass
class S3Server:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_s3_server(host: str, port: int, prefix: Sequence[str] = (), timeout_s: float = 60.0) -> S3Server:
    """Start ``moto.server`` on ``host:port`` (``prefix``: e.g. ``ip netns exec NS``) and wait until it answers."""
    process = subprocess.Popen([*prefix, sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server = S3Server(process, f"http://{host}:{port}")
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            # moto answers the S3 ListBuckets call once it is up.
            if httpx.get(f"{server.url}/", timeout=1.0).status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"moto server on {server.url} did not answer in {timeout_s}s")
        time.sleep(0.2)
