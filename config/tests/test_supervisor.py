"""The supervisor's restart policy, on small stand-in children (a sleeping Python, a failing one):
a crashed child is started again after a pause and the others go on; a child crashing again and
again stops the run, saying which."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from config.embedded.base import pid_is_alive
from config.supervisor import RestartPolicy, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
FAILER = [sys.executable, "-c", "raise SystemExit(3)"]
# Generous: the machine may be busy; nothing here asserts how long anything took.
WAIT_SECONDS = 60
QUICK = RestartPolicy(first_delay=0.05, max_delay=0.2, max_crashes=3, window=600)


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def supervisor(said: list[str]) -> Iterator[Supervisor]:
    supervisor = Supervisor(environment={}, say=said.append, policy=QUICK)
    yield supervisor
    supervisor.stopping = True
    supervisor.stop_all()


def _tend_until(supervisor: Supervisor, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        supervisor.tend()
        time.sleep(0.05)


def test_a_killed_child_is_started_again_and_the_others_keep_running(supervisor: Supervisor, said: list[str]) -> None:
    supervisor.start("steady", SLEEPER)
    supervisor.start("victim", SLEEPER)
    steady, victim = supervisor.children
    steady_pid, old_pid = steady.process.pid, victim.process.pid

    victim.process.send_signal(signal.SIGKILL)
    _tend_until(supervisor, lambda: victim.process.pid != old_pid and victim.process.poll() is None)

    assert steady.process.pid == steady_pid and steady.process.poll() is None
    assert not supervisor.gave_up
    assert said == [
        f"victim (pid {old_pid}) exited unexpectedly (killed by SIGKILL); starting it again in 0.05s"
        " (crash 1 of 3 allowed in 600s)",
        f"victim started again (pid {victim.process.pid})",
    ]


def test_the_pause_before_a_restart_doubles_with_each_crash_up_to_its_ceiling() -> None:
    policy = RestartPolicy(first_delay=1, max_delay=5, max_crashes=10, window=60)
    assert [policy.delay(crashes) for crashes in range(1, 6)] == [1, 2, 4, 5, 5]


def test_a_child_crashing_again_and_again_stops_the_run_with_a_clear_message(
    supervisor: Supervisor, said: list[str]
) -> None:
    supervisor.start("steady", SLEEPER)
    supervisor.start("broken", FAILER)
    steady = supervisor.children[0].process

    assert supervisor.run_until_signal() == 1  # returns by itself: no Ctrl-C came

    assert said[-1] == "broken crashed 3 times in 600s (exit code 3); stopping"
    assert sum(line.startswith("broken started again") for line in said) == 2  # then the third crash
    assert steady.poll() is not None and not pid_is_alive(steady.pid)  # stopped with the run


def test_crashes_older_than_the_window_are_forgotten(said: list[str]) -> None:
    supervisor = Supervisor(
        environment={}, say=said.append, policy=RestartPolicy(first_delay=0.01, max_crashes=2, window=0.0)
    )
    supervisor.start("flaky", FAILER)
    try:
        # With a window of nothing no crash counts against the next: five in a row are restarted.
        _tend_until(supervisor, lambda: sum("started again" in line for line in said) >= 5)
        assert not supervisor.gave_up
    finally:
        supervisor.stopping = True
        supervisor.stop_all()


def test_ctrl_c_stops_the_run_with_exit_code_0(supervisor: Supervisor) -> None:
    supervisor.start("steady", SLEEPER)
    supervisor.stopping = True  # what the SIGINT handler does
    assert supervisor.run_until_signal() == 0
    assert supervisor.children[0].process.poll() is not None
