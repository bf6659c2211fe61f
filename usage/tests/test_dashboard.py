"""The dashboard's registry of running work: the apps above usage count what they are
generating now (chat registers its replies being written, tested in chat/tests/test_receivers.py)."""

from __future__ import annotations

import pytest

from usage import dashboard
from usage.dashboard import generations_running, running_counter_register


def test_running_generations_are_the_registered_counters_summed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "RUNNING_COUNTERS", {})
    assert generations_running() == 0

    running_counter_register("replies", lambda: 2)
    running_counter_register("documents", lambda: 3)
    running_counter_register("replies", lambda: 4)  # registering again replaces

    assert generations_running() == 7
