"""Several "hosts" on one machine: Linux network namespaces joined by veth pairs to one bridge.

Each host has its own network stack and address (10.R.S.N/24); the test process (root namespace) reaches
them through the bridge's address. Processes started on a host are tracked, and :meth:`NetnsLab.close`
stops them all and deletes the namespaces and the bridge even when the test failed half-way.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def can_create_namespaces() -> str | None:
    """None if network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"ezprobe{os.getpid() % 100000}"
    try:
        _ip("netns", "add", name)
        _ip("netns", "del", name)
    except (OSError, subprocess.CalledProcessError) as error:
        return f"cannot create a network namespace: {getattr(error, 'stderr', '') or error}"
    return None


@dataclass
class Host:
    name: str
    netns: str
    address: str

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]


@dataclass
class NetnsLab:
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]] = field(default_factory=list)
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000:04d}{random.randrange(100):02d}")
    bridge: str = ""
    subnet: str = ""

    def open(self, names: Sequence[str]) -> NetnsLab:
        self.subnet = f"10.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
        self.bridge = f"ezbr{self.tag}"
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index, name in enumerate(names, start=1):
                host = Host(name, f"ez{self.tag}{name}"[:32], f"{self.subnet}.{index}")
                outside, inside = f"ezv{self.tag}{index}", f"ezp{self.tag}{index}"
                _ip("netns", "add", host.netns)
                self.hosts[name] = host
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                _ip("link", "set", inside, "netns", host.netns)
                _ip("link", "set", outside, "master", self.bridge, "up")
                _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", inside)
                _ip("-n", host.netns, "link", "set", inside, "up")
                _ip("-n", host.netns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def spawn(self, host: str, argv: Sequence[str], env: dict[str, str], log: Path,
              stop_signal: signal.Signals = signal.SIGTERM) -> subprocess.Popen[bytes]:
        """Run ``argv`` on ``host`` (its own session, so its children are stopped with it)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = subprocess.Popen([*self.hosts[host].prefix(), *argv], env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append((process, stop_signal))
        return process

    def close(self) -> None:
        """Stop every process (its whole session), then delete the namespaces and the bridge — whatever fails."""
        for process, stop_signal in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, stop_signal)
        for process, _signal in reversed(self.processes):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, timeout=30)
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)
        self.hosts.clear()
