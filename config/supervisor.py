"""What `make run` runs: WEB_PROCESSES daphne processes on one port and a Celery worker, as child
processes, started again when one crashes, stopped in order.

The supervisor owns the embedded servers (if it started them) and hands every child explicit
URLs, so children attach and never own a server. It also owns the listening socket: it binds the
port once and every daphne adopts that socket (`--fd`), so the web processes share one port and
the kernel spreads connections between them. Children die with the supervisor even when it is
killed outright (PR_SET_PDEATHSIG), so no process outlives a run.

A child that dies is started again after a pause that doubles with each crash (`RestartPolicy`),
and the others go on serving: one dead process is not the product down. Only Ctrl-C / SIGTERM, or
a child crashing again and again (broken, not unlucky: the log says which), stop the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
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


@dataclass(frozen=True)
class RestartPolicy:
    """A crashed child is started again `first_delay` seconds later, the pause doubling (up to
    `max_delay`) with each further crash inside `window`; its `max_crashes`-th crash inside
    `window` stops the run instead. Crashes older than `window` are forgotten, so a child that
    crashes once a day is restarted forever, promptly."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    max_crashes: int = 5
    window: float = 120.0

    def delay(self, recent_crashes: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** max(0, recent_crashes - 1))


@dataclass
class Child:
    name: str
    command: list[str]
    pass_fds: tuple[int, ...]
    process: subprocess.Popen[bytes]
    crashes: deque[float] = field(default_factory=deque)  # monotonic times, inside the window
    restart_at: float | None = None  # set while a crashed child waits out its pause


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Supervisor:
    environment: dict[str, str]
    say: Callable[[str], None]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    # Set when a child crashed too often: the run stops with this message and exit code 1.
    gave_up: str | None = None
    # The web processes' shared socket, kept open to hand to a web process started again (and
    # meanwhile the kernel queues new connections on it rather than refusing them).
    listener: socket.socket | None = None

    def handle_stop_signals(self) -> None:
        """From here on Ctrl-C / SIGTERM only mark the run as stopping; children are stopped in
        order by `run_until_signal`. Installed before any child starts: a signal that came
        between a child's start and the wait would otherwise kill the supervisor mid-way."""

        def on_signal(signum: int, frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def _spawn(self, command: list[str], pass_fds: Sequence[int]) -> subprocess.Popen[bytes]:
        # preexec_fn runs in the child between fork and exec: one call into the loaded libc.
        # PR_SET_PDEATHSIG fires when the forking *thread* ends: children are started (and
        # started again) from the supervisor's main thread only.
        return subprocess.Popen(
            command,
            env=self.environment,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            pass_fds=pass_fds,
        )

    def start(self, name: str, command: list[str], pass_fds: Sequence[int] = ()) -> None:
        process = self._spawn(command, pass_fds)
        self.children.append(Child(name=name, command=command, pass_fds=tuple(pass_fds), process=process))

    def start_web(self, listener: socket.socket, count: int) -> None:
        """`count` daphne processes (web-1, web-2, …) serving `listener`, which the supervisor
        keeps until `stop_all` to start a crashed one again."""
        self.listener = listener
        descriptor = listener.fileno()
        for number in range(1, count + 1):
            self.start(f"web-{number}", daphne_command(descriptor), pass_fds=(descriptor,))

    def wait_until_ready(self, ready: Callable[[], bool]) -> bool:
        """Poll `ready` (tending crashed children meanwhile) until it is true, the run is
        stopping or given up, or READY_TIMEOUT_SECONDS pass."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self.stopping:
            self.tend()
            if self.gave_up:
                return False
            if ready():
                return True
            time.sleep(0.2)
        return False

    def tend(self) -> None:
        """One look at every child: note a new crash (and when to start it again, or give up),
        start again those whose pause is over."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at and not self.stopping:
                    self._restart(child)
                continue
            code = child.process.poll()
            if code is None or self.stopping:
                continue
            self._crashed(child, code, now)
            if self.gave_up:
                return

    def _crashed(self, child: Child, code: int, now: float) -> None:
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.policy.window:
            child.crashes.popleft()
        recent, window = len(child.crashes), f"{self.policy.window:g}s"
        if recent >= self.policy.max_crashes:
            self.gave_up = f"{child.name} crashed {recent} times in {window} ({_exit_description(code)}); stopping"
            self.say(self.gave_up)
            return
        delay = self.policy.delay(recent)
        child.restart_at = now + delay
        self.say(
            f"{child.name} (pid {child.process.pid}) exited unexpectedly ({_exit_description(code)});"
            f" starting it again in {delay:g}s (crash {recent} of {self.policy.max_crashes} allowed in {window})"
        )

    def _restart(self, child: Child) -> None:
        child.restart_at = None
        child.process = self._spawn(child.command, child.pass_fds)
        self.say(f"{child.name} started again (pid {child.process.pid})")

    def run_until_signal(self) -> int:
        """Block until Ctrl-C / SIGTERM, or a child crashing too often; meanwhile start crashed
        children again. Then stop every child. Exit code."""
        while not self.stopping and not self.gave_up:
            self.tend()
            time.sleep(0.2)
        self.stop_all()
        return 1 if self.gave_up else 0

    def stop_all(self) -> None:
        # The socket first: no new connections queue where no process will accept them. Then
        # web first (no new work), then the worker (finishes what it holds).
        if self.listener is not None:
            self.listener.close()
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
                child.process.kill()
                child.process.wait()


def child_environment(*, database_url: str, redis_url: str) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(DATABASE_URL=database_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    return environment


def daphne_command(descriptor: int) -> list[str]:
    """daphne serving the inherited listening socket `descriptor` (it binds nothing itself), with
    request bodies capped while read (config.daphne_server)."""
    return [sys.executable, "-m", "config.daphne_server", "--fd", str(descriptor), "config.asgi:application"]


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
