"""Redis lost mid-reply and brought back, as `make run` serves (issue 12, item 9): the reply is
saved `error`/`internal` with the text it had, nothing is saved twice, and a tab that comes back
(as the browser does after its socket closed) is told how the reply ended.

Every process of the product reaches Redis through a TCP relay this test owns; cutting the relay
is Redis going away for all of them at once, and opening it again on the same port is Redis
coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from chat.tests.test_faults_orphans import _deltas
from chat.tests.test_generation_run import RedisLink
from chat.tests.test_protocol_e2e import Browser, _frame, _send
from config.tests.test_serve import (  # noqa: F401 - serve_environment is a fixture
    serve_environment,
    served_with_slow_fake,
)

TOKENS = 2000  # at 20 a second, 100 s: the reply is still being written when Redis goes
EXPECTED = "".join(f"token{index} " for index in range(TOKENS))
WAIT_SECONDS = 60


class ThreadedRedisLink:
    """`RedisLink` on an event loop of its own thread, with a fixed port so it can come back."""

    def __init__(self, redis_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.link = RedisLink(redis_url)
        self._run(self.link.__aenter__())
        self.url = self.link.url
        assert self.link.server is not None
        self.port = self.link.server.sockets[0].getsockname()[1]

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def cut(self) -> None:
        self._run(self.link.cut())

    def restore(self) -> None:
        async def listen() -> None:
            self.link.writers = []
            self.link.server = await asyncio.start_server(self.link._relay, "127.0.0.1", self.port, reuse_address=True)

        self._run(listen())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.link.cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def served_through_a_link(serve_environment: dict[str, str]) -> Iterator[tuple[str, ThreadedRedisLink]]:  # noqa: F811
    link = ThreadedRedisLink(serve_environment["REDIS_URL"])
    try:
        environment = {**serve_environment, "REDIS_URL": link.url}
        with served_with_slow_fake(environment, web_processes=1, tokens=TOKENS) as (process, _, _):
            threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
            yield f"http://127.0.0.1:{environment['ARBOR_PORT']}", link
    finally:
        link.close()


def test_redis_lost_mid_reply_saves_it_as_internal_with_its_text_and_a_returning_tab_is_told(
    served_through_a_link: tuple[str, ThreadedRedisLink],
) -> None:
    base, link = served_through_a_link
    browser = Browser(base)
    chat_id = answer = seen = ""
    # The socket is closed (1011) or told by an error frame once Redis is gone; either way it
    # hears no more of the reply.
    with contextlib.suppress(ConnectionClosed, TimeoutError, OSError), browser.socket() as socket:
        ack = _send(socket, type="send", req=1, chat_id=None, parent_id=None, content="Hi", model="openai:gpt-5-mini")
        chat_id, answer = ack["chat_id"], ack["assistant_message_id"]
        seen = "".join(frame["text"] for frame in _deltas(socket, answer, 5))
        link.cut()
        while _frame(socket)["type"] == "delta":
            pass
    assert seen, "the reply never started"

    # The database still works: the reply ends there, saved with what it had.
    deadline = time.monotonic() + WAIT_SECONDS
    while (saved := _reply(browser, chat_id, answer))["status"] == "streaming":
        assert time.monotonic() < deadline, "the reply was never saved"
        time.sleep(0.5)
    assert (saved["status"], saved["error_code"]) == ("error", "internal")
    text = "".join(part["text"] for part in saved["content"] if part["type"] == "text")
    assert text.startswith(seen) and EXPECTED.startswith(text) and len(text) < len(EXPECTED)

    link.restore()
    # A tab coming back resumes the reply and is told how it ended, with its whole saved text. As
    # the browser does, it connects again after a close: a pooled connection Redis dropped fails
    # once before it is replaced.
    frames, done = _resumed(browser, answer)
    assert (done["status"], done["error"]["code"]) == ("error", "internal")
    assert "".join(frame.get("text", "") for frame in frames if frame.get("snapshot")) == text
    assert _reply(browser, chat_id, answer) == saved  # saved once: nothing wrote it again


def _reply(browser: Browser, chat_id: str, message_id: str) -> dict[str, Any]:
    return next(message for message in browser.get(f"/api/chats/{chat_id}")["messages"] if message["id"] == message_id)


def _resumed(browser: Browser, message_id: str, attempts: int = 10) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frames a `resume` of the reply gets through its `done`, trying again on a close or an
    `internal` error, as the browser does."""
    for _ in range(attempts):
        frames: list[dict[str, Any]] = []
        try:
            with browser.socket() as socket:
                socket.send(json.dumps({"type": "resume", "req": 2, "message_id": message_id, "after_seq": 0}))
                while (frame := _frame(socket))["type"] == "delta":
                    frames.append(frame)
                if frame["type"] == "done":
                    return frames, frame
                # `internal` says "a server fault; retry" (docs/protocol.md), as the browser does.
                assert (frame["type"], frame["code"]) == ("error", "internal"), frame
        except (ConnectionClosed, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no resume got its done in {attempts} connections")
