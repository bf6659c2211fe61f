from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.testing_slots import FIRST_SLOT, SLOT_VARIABLE, SLOTS, redis_test_database


@pytest.fixture
def no_inherited_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (SLOT_VARIABLE, f"{SLOT_VARIABLE}_SERVE"):
        monkeypatch.delenv(variable, raising=False)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_two_live_runs_get_different_databases(tmp_path: Path, no_inherited_slot: None) -> None:
    first = redis_test_database(os.getpid(), folder=tmp_path)
    os.environ.pop(SLOT_VARIABLE)
    second = redis_test_database(os.getppid(), folder=tmp_path)
    assert first != second
    assert {first, second} <= set(range(FIRST_SLOT, FIRST_SLOT + SLOTS))


def test_a_dead_runs_database_is_taken_over(tmp_path: Path, no_inherited_slot: None) -> None:
    dead = _dead_pid()
    slot = redis_test_database(dead, folder=tmp_path)
    os.environ.pop(SLOT_VARIABLE)
    same_first_choice = dead + SLOTS * 1000
    assert redis_test_database(same_first_choice, folder=tmp_path) == slot


def test_a_child_process_inherits_its_runs_database(tmp_path: Path, no_inherited_slot: None) -> None:
    slot = redis_test_database(os.getpid(), folder=tmp_path)
    assert os.environ[SLOT_VARIABLE] == str(slot)
    assert redis_test_database(12345, folder=tmp_path / "elsewhere") == slot


def test_a_run_gets_a_second_database_for_the_servers_it_starts(tmp_path: Path, no_inherited_slot: None) -> None:
    suite = redis_test_database(os.getpid(), folder=tmp_path)
    serve = redis_test_database(os.getpid(), purpose="serve", folder=tmp_path)
    assert serve != suite
    assert redis_test_database(os.getpid(), purpose="serve", folder=tmp_path) == serve
