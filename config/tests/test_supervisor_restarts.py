"""`manage.py serve` as `make run` runs it, with a child killed outright: the supervisor starts it
again and says so, and the other children never stop."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
import pytest

from config.embedded.base import pid_is_alive
from config.tests.test_serve import (  # noqa: F401 - serve_environment is a fixture
    _read_until_ready,
    _serve,
    _stop_with_ctrl_c,
    serve_environment,
)
from config.tests.test_serve_processes import _answering_process

# Generous: the machine may be busy; nothing here asserts how long anything took.
WAIT_SECONDS = 90


@dataclass
class Running:
    process: subprocess.Popen[str]
    base: str
    startup: str
    output: list[str] = field(default_factory=list)

    def children(self, kind: str) -> list[psutil.Process]:
        """The live children whose command line names `kind` (a killed one not yet reaped by the
        supervisor is a zombie: it is left out)."""
        found = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if kind in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                continue
        return found

    def said(self, pattern: str) -> re.Match[str] | None:
        return next((found for line in list(self.output) if (found := re.search(pattern, line))), None)


def _read_on(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


def _wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


@pytest.fixture
def running(serve_environment: dict[str, str]) -> Iterator[Running]:  # noqa: F811
    """`serve` with two web processes and the worker, its output read on (by a thread, so the
    children never block on a full pipe) after the ready line."""
    environment = {**serve_environment, "WEB_PROCESSES": "2"}
    process = _serve(environment)
    try:
        startup = _read_until_ready(process)
        served = Running(process=process, base=f"http://127.0.0.1:{environment['ARBOR_PORT']}", startup=startup)
        threading.Thread(target=_read_on, args=(process, served.output), daemon=True).start()
        yield served
    finally:
        if process.poll() is None:
            _stop_with_ctrl_c(process)


def test_a_killed_web_process_and_a_killed_worker_are_started_again_while_the_rest_serves(running: Running) -> None:
    victim, survivor = running.children("daphne")
    (worker,) = running.children("celery")

    victim.kill()  # SIGKILL: no goodbye
    # One snapshot per look: two looks could count the victim alive in the first and see it gone
    # in the second, before any replacement exists.
    _wait_for(lambda: _others(running, "daphne", survivor.pid, victim.pid), "web again")
    (replacement,) = _others(running, "daphne", survivor.pid, victim.pid)
    # The new process serves on the same port (the supervisor kept the socket to hand it over).
    _wait_for(lambda: _answering_process(running.base) == replacement.pid, "the new web process answers")
    assert survivor.is_running() and worker.is_running()  # the others never stopped
    said = running.said(rf"^web-[12] \(pid {victim.pid}\) exited unexpectedly \(killed by SIGKILL\); starting it again")
    assert said, running.output

    worker.kill()
    _wait_for(lambda: [pid for pid in _pids(running, "celery") if pid != worker.pid], "a worker again")
    _wait_for(lambda: _healthy(running.base), "the new worker answers the health check")
    assert {survivor.pid, replacement.pid} == set(_pids(running, "daphne"))  # no web process stopped for it
    assert running.said(rf"^worker \(pid {worker.pid}\) exited unexpectedly"), running.output

    everything = [*running.children("daphne"), *running.children("celery")]
    assert _stop_with_ctrl_c(running.process) == 0  # still only Ctrl-C ends the run
    assert [child.pid for child in everything if pid_is_alive(child.pid)] == []


def test_the_first_login_is_printed_just_before_the_running_line(running: Running) -> None:
    lines = [line for line in running.startup.splitlines() if line.strip()]
    assert "password:" in lines[-2] and "email:" in lines[-3], running.startup
    assert "Arbor is running at" in lines[-1]
    # Readiness was asked in-process, not by polling /healthz: no 503 was logged meanwhile.
    assert "Service Unavailable" not in running.startup


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            return json.load(response)["status"] == "ok"
    except OSError:  # 503 (an HTTPError) until a worker answers
        return False


def _others(running: Running, kind: str, *known: int) -> list[psutil.Process]:
    """The live `kind` children other than the `known` pids, from one look."""
    return [child for child in running.children(kind) if child.pid not in known]


def _pids(running: Running, kind: str) -> list[int]:
    return [child.pid for child in running.children(kind)]
