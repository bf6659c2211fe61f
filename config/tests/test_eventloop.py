from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvloop

from config.eventloop import event_loop_policy_install


@pytest.fixture(autouse=True)
def policy_restored() -> Iterator[None]:
    policy = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(policy)


def test_web_processes_run_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    assert event_loop_policy_install() == "uvloop"
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_asyncio_s_own_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_LOOP", "asyncio")
    before = asyncio.get_event_loop_policy()
    assert event_loop_policy_install() == "asyncio"
    assert asyncio.get_event_loop_policy() is before


def test_an_unknown_loop_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="EVENT_LOOP must be one of uvloop, asyncio"):
        event_loop_policy_install()
