"""A throwaway PostgreSQL server for end-to-end tests.

Load it with ``pytest_plugins = ["tests.pg_server"]``. The session-scoped ``postgres_server``
fixture creates a cluster in a temporary folder, starts it on 127.0.0.1 on a free port with
password (SCRAM) authentication, creates a database owned by a login role, and yields
``{"host", "port", "user", "password", "database"}``. The server is stopped and its folder
removed at the end of the session.

Server binaries (initdb, pg_ctl) are looked up in ``$PG_BINDIR``, then Debian's
``/usr/lib/postgresql/<version>/bin`` (newest first), then ``PATH``. Without them the tests
that use the fixture are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them, e.g. "
    "`apt-get install postgresql` on Debian/Ubuntu, or set PG_BINDIR to their folder."
)
SUPERUSER = "postgres"
TEST_USER = "tap_blogger_test"
TEST_DATABASE = "tap_blogger_test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _version_key(bindir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/(\d+(?:\.\d+)?)/bin", bindir)
    return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    debian = sorted(
        (os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=_version_key,
        reverse=True,
    )
    candidates += debian
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(os.path.dirname(os.path.realpath(initdb)))
    for folder in candidates:
        if all(os.access(os.path.join(folder, exe), os.X_OK) for exe in ("initdb", "pg_ctl")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _service_account() -> str | None:
    """As root the server must run as another user: `postgres` if it exists, else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, but neither user `postgres` nor `nobody` exists")


class PostgresServer:
    """initdb + pg_ctl on a private data directory; use as a context manager."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.account = _service_account()
        self.root = Path(tempfile.mkdtemp(prefix="tap-blogger-pg-", dir=self._temp_parent()))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "server.log"
        self.superuser_password = secrets.token_urlsafe(16)
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.started = False

    @staticmethod
    def _temp_parent() -> str:
        # As root, the server account must be able to reach the folder: every parent needs the
        # search bit for others (root's home has not), so fall back to /tmp when it is missing.
        parent = tempfile.gettempdir()
        if os.geteuid() != 0:
            return parent
        path = Path(parent).resolve()
        if all(p.stat().st_mode & 0o001 for p in (path, *path.parents)):
            return str(path)
        return "/tmp"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.account:
            cmd = ["runuser", "-u", self.account, "--", *cmd]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{log}"
            )
        return proc

    def _chown(self, path: Path) -> None:
        if self.account:
            entry = pwd.getpwnam(self.account)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.socket_dir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        for path in (self.root, self.socket_dir, pwfile):
            self._chown(path)
        self._run(
            "initdb",
            "-D", str(self.data),
            "-U", SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        for attempt in range(5):
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.socket_dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                    "-w", "-t", "60", "start",
                )  # fmt: skip
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.2)  # most likely the port was taken meanwhile: try another
                continue
            self.started = True
            break
        self._create_role_and_database()

    def _create_role_and_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.superuser_password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(TEST_USER), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(TEST_DATABASE), sql.Identifier(TEST_USER)
                )
            )

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
                self.started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def params(self) -> dict[str, t.Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": TEST_USER,
            "password": self.password,
            "database": TEST_DATABASE,
        }

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def postgres_server() -> t.Iterator[dict[str, t.Any]]:
    """A running throwaway PostgreSQL: {"host", "port", "user", "password", "database"}."""
    bindir = find_bindir()
    if bindir is None:
        if _in_ci():
            pytest.fail(INSTALL_HINT, pytrace=False)
        pytest.skip(INSTALL_HINT)
    with PostgresServer(bindir) as server:
        yield server.params
