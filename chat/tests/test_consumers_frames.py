"""Hostile frames: a frame the parser cannot take apart is refused like any bad frame, and the
socket stays open (the size limit itself is daphne's: config/tests/test_websocket_server.py)."""

from __future__ import annotations

import pytest

from chat.tests.test_consumers import _person, _tab

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]


@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_a_deeply_nested_frame_is_a_bad_frame_and_the_socket_stays_open(opener: str) -> None:
    tab = await _tab(await _person())

    await tab.communicator.send_to(text_data=opener * (200_000 // len(opener)))

    error = await tab.receive()
    assert (error["type"], error["req"], error["code"]) == ("error", None, "bad_frame")
    assert await tab.answer({"type": "ping", "req": 2}) == {"type": "pong", "req": 2}
    await tab.close()
