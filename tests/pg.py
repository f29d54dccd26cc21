"""A real, throwaway PostgreSQL server for the tests: installed if missing, started unprivileged.

PostgreSQL refuses to run as root, and the tests run as root on CI. So the server runs as the
`postgres` system user (created by Debian's package; `sesame-pg` is created when it is absent),
from a cluster initialised in a fresh temporary directory owned by that user, listening on a unix
socket inside that directory only (no TCP port, so nothing can collide with another server).
Durability is switched off: the cluster lives for one test session and is deleted afterwards.

`SESAME_TEST_POSTGRES_URL` (a superuser URL, e.g. postgresql+psycopg://u:p@host/postgres) makes
the tests use an existing server instead. When PostgreSQL can neither be found nor installed the
tests skip with the reason, except under CI (`CI` set), where PostgreSQL must run: they fail.

Use in a test module: `from pg import postgres_server, postgres_url  # noqa: F401`.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

_FALLBACK_USER = "sesame-pg"
_started: PostgresServer | None = None
_unavailable: str | None = None
_counter = itertools.count()


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found, installed or started; the message says why."""


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory (Debian layout first)."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    for tool in ("pg_config", "initdb"):
        found = shutil.which(tool)
        if not found:
            continue
        if tool == "initdb":
            return Path(found).resolve().parent
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    return None


def install_postgres() -> None:
    """Install Debian's postgresql package (as `make sysdeps` does); raises when impossible."""
    if os.geteuid() != 0:
        raise PostgresUnavailable("PostgreSQL is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise PostgresUnavailable("PostgreSQL is not installed and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}"
            )


def _server_user() -> str | None:
    """The unprivileged user that runs the server; None means the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _FALLBACK_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_USER],
        check=True,
        capture_output=True,
    )
    return _FALLBACK_USER


class PostgresServer:
    """A running server: hands out fresh databases and a URL for each."""

    def __init__(
        self,
        admin_url: str,
        *,
        bindir: Path | None = None,
        root: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.admin_url = admin_url
        self.bindir = bindir
        self.root = root
        self.user = user
        self._admin = sa.create_engine(
            admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
        )

    @classmethod
    def start(cls) -> PostgresServer:
        """Initialise a throwaway cluster in a temporary directory and start it."""
        bindir = find_bindir()
        if bindir is None:
            install_postgres()
            bindir = find_bindir()
            if bindir is None:
                raise PostgresUnavailable("postgresql was installed but no initdb was found")
        user = _server_user()
        # Not pytest's tmp_path: that lives under a root-only (0700) directory.
        root = Path(tempfile.mkdtemp(prefix="sesame-pg-"))
        try:
            if user is not None:
                shutil.chown(root, user=user, group=pwd.getpwnam(user).pw_gid)
            data = root / "data"
            _run_as(
                user,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                cwd=root,
            )
            with (data / "postgresql.conf").open("a") as conf:
                conf.write(
                    f"\nlisten_addresses = ''\nunix_socket_directories = '{root}'\n"
                    "port = 5432\nfsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 200\n"
                )
            _run_as(
                user,
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                cwd=root,
            )
        except (subprocess.CalledProcessError, OSError) as e:
            log = root / "log"
            detail = log.read_text()[-1500:] if log.exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            stderr = getattr(e, "stderr", "") or ""
            raise PostgresUnavailable(f"PostgreSQL did not start: {e} {stderr} {detail}") from e
        url = f"postgresql+psycopg://postgres@/postgres?host={root}"
        return cls(url, bindir=bindir, root=root, user=user)

    def url(self, database: str) -> str:
        """A URL for `database` on this server."""
        return (
            sa.make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)
        )

    def create_database(self, prefix: str = "sesame_test") -> str:
        """Create an empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, closing what still holds it."""
        name = sa.make_url(url).database
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete its cluster (a no-op for an external server)."""
        self._admin.dispose()
        if self.root is None or self.bindir is None or not self.root.exists():
            return
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            _run_as(
                self.user,
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                cwd=self.root,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _run_as(user: str | None, cmd: list[str], *, cwd: Path) -> None:
    """Run a server tool as `user` (via runuser when we are root)."""
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=120)


def shared_server() -> PostgresServer:
    """The session's server, started on first use; raises PostgresUnavailable with the reason."""
    global _started, _unavailable
    if _started is not None:
        return _started
    if _unavailable is not None:
        raise PostgresUnavailable(_unavailable)
    try:
        external = os.environ.get("SESAME_TEST_POSTGRES_URL")
        _started = PostgresServer(external) if external else PostgresServer.start()
    except PostgresUnavailable as e:
        _unavailable = str(e)
        raise
    atexit.register(stop_shared_server)
    return _started


def stop_shared_server() -> None:
    """Stop the session's server if one was started."""
    global _started
    if _started is not None:
        _started.stop()
        _started = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server for the whole session; skips (fails under CI) without one."""
    try:
        server = shared_server()
    except PostgresUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required on CI: {e}")
        pytest.skip(f"PostgreSQL unavailable: {e}")
    yield server
    stop_shared_server()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
