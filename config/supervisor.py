"""What `make run` runs: WEB_PROCESSES daphne processes on one port and a Celery worker, as child
processes, stopped in order.

The supervisor owns the embedded servers (if it started them) and hands every child explicit
URLs, so children attach and never own a server. It also owns the listening socket: it binds the
port once and every daphne adopts that socket (`--fd`), so the web processes share one port and
the kernel spreads connections between them. Children die with the supervisor even when it is
killed outright (PR_SET_PDEATHSIG), so no process outlives a run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60
# Connections the kernel queues while every web process is busy (the default of 128, or
# daphne's own 50, drops a burst of new tabs).
LISTEN_BACKLOG = 2048


def _load_libc() -> ctypes.CDLL | None:
    # Not Linux: no such call, but Ctrl-C still reaches the whole process group.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded in the supervisor, not in a child between fork and exec: the supervisor has threads
# (its database pool's), and loading a library there could wait forever on a lock one held.
_LIBC = _load_libc()


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def host_problem(host: str) -> str | None:
    """daphne's `--fd` adopts a descriptor as IPv4 whatever it is: an IPv6 socket adopted so
    serves, but reads every client's address wrongly (the per-address limits depend on it)."""
    if ":" in host:
        return (
            f"ARBOR_HOST={host} is an IPv6 address: the web processes share one IPv4 socket; use 127.0.0.1 or 0.0.0.0"
        )
    return None


def listening_socket(host: str, port: int) -> socket.socket:
    """The web processes' one socket (IPv4, see `host_problem`), bound and listening, for them
    to inherit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # A restart must not wait out the TIME_WAIT of the last run's connections.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


@dataclass
class Supervisor:
    environment: dict[str, str]
    say: Callable[[str], None]
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    stopping: bool = False

    def handle_stop_signals(self) -> None:
        """From here on Ctrl-C / SIGTERM only mark the run as stopping; children are stopped in
        order by `run_until_signal`. Installed before any child starts: a signal that came
        between a child's start and the wait would otherwise kill the supervisor mid-way."""

        def on_signal(signum: int, frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def start(self, name: str, command: list[str], pass_fds: Sequence[int] = ()) -> None:
        # preexec_fn runs in the child between fork and exec: one call into the loaded libc.
        process = subprocess.Popen(
            command,
            env=self.environment,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            pass_fds=pass_fds,
        )
        self.children.append((name, process))

    def start_web(self, listener: socket.socket, count: int) -> None:
        """`count` daphne processes (web-1, web-2, …) serving `listener`, which is then closed
        here: the children hold it, and a copy kept open by the supervisor would go on queueing
        connections that no process accepts once the web processes have stopped."""
        with listener:
            descriptor = listener.fileno()
            for number in range(1, count + 1):
                self.start(f"web-{number}", daphne_command(descriptor), pass_fds=(descriptor,))

    def wait_until_ready(self, url: str) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self.stopping:
            if self.exited():
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def exited(self) -> str | None:
        """The name of a child that has exited, if any."""
        for name, process in self.children:
            if process.poll() is not None:
                return name
        return None

    def run_until_signal(self) -> int:
        """Block until Ctrl-C / SIGTERM or a child dies; then stop every child. Exit code."""
        died = None
        while not self.stopping:
            died = self.exited()
            if died:
                self.say(f"{died} exited unexpectedly; stopping")
                break
            time.sleep(0.2)
        self.stop_all()
        return 1 if died else 0

    def stop_all(self) -> None:
        # Web first (no new work), then the worker (finishes what it holds).
        for _, process in self.children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
                process.kill()
                process.wait()


def child_environment(*, database_url: str, redis_url: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(DATABASE_URL=database_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    return environment


def daphne_command(descriptor: int) -> list[str]:
    """daphne serving the inherited listening socket `descriptor` (it binds nothing itself)."""
    return [sys.executable, "-m", "daphne", "--fd", str(descriptor), "config.asgi:application"]


def worker_command(concurrency: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
    ]
