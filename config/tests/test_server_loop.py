"""Work handed to daphne's event loop before it runs: it runs first thing when the loop starts."""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from config.server_loop import when_the_server_loop_starts


def test_a_callback_runs_on_the_servers_loop_once_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.new_event_loop()
    monkeypatch.setitem(sys.modules, "daphne.server", types.SimpleNamespace(twisted_loop=loop))
    ran_on: list[asyncio.AbstractEventLoop] = []
    try:
        assert when_the_server_loop_starts(lambda: ran_on.append(asyncio.get_running_loop()))
        assert ran_on == []  # not before the server runs its loop
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert ran_on == [loop]


def test_without_a_server_loop_waiting_to_run_nothing_is_scheduled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "daphne.server", raising=False)
    assert not when_the_server_loop_starts(lambda: None)
    closed = asyncio.new_event_loop()
    closed.close()
    monkeypatch.setitem(sys.modules, "daphne.server", types.SimpleNamespace(twisted_loop=closed))
    assert not when_the_server_loop_starts(lambda: None)
