"""What `make run` runs: daphne and a Celery worker as child processes, stopped in order.

The supervisor owns the embedded servers (if it started them) and hands every child explicit
URLs, so children attach and never own a server. Children die with the supervisor even when it
is killed outright (PR_SET_PDEATHSIG), so no process outlives a run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60


def _die_with_parent() -> None:
    # Not Linux: no such call, but Ctrl-C still reaches the whole process group.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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

    def start(self, name: str, command: list[str]) -> None:
        # preexec_fn runs in the child between fork and exec; the supervisor has no threads.
        process = subprocess.Popen(command, env=self.environment, preexec_fn=_die_with_parent)  # noqa: PLW1509
        self.children.append((name, process))

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


def daphne_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"]


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
