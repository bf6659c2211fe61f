"""A web process killed mid-reply (SIGKILL) as `make run` serves: the reply ends `error` /
`interrupted` with its text, within a bound, though nothing asks for it (issue 12, item 1).

The supervisor starts the killed process again within a second or so, far sooner than the dead
one's heartbeats expire: the case start-up recovery alone could not see. No request reaches the
new process until the reply has ended, so it is the process's own sweep (started with its event
loop) that ends it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest
from websockets.sync.client import ClientConnection

from chat.streambuffer import BufferExpired, StreamBuffer
from chat.tests.test_protocol_e2e import Browser, _frame, _send
from config.tests.test_serve import (  # noqa: F401 - serve_environment is a fixture
    serve_environment,
    served_with_slow_fake,
)

TOKENS = 2000  # at 20 a second, 100 s: the reply is still being written when its process dies
EXPECTED = "".join(f"token{index} " for index in range(TOKENS))
# Generous: the bound is 30 s after the kill (15 s for the dead process's key to expire, then at
# most 15 s to the next sweep), plus the restart; a busy machine may be slower, never this slow.
WAIT_SECONDS = 150


@dataclass
class Served:
    process: subprocess.Popen[str]
    base: str
    redis_url: str

    def web_processes(self) -> list[psutil.Process]:
        found = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if "daphne" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.Error:
                continue
        return found


@pytest.fixture
def one_web_process(serve_environment: dict[str, str]) -> Iterator[Served]:  # noqa: F811
    with served_with_slow_fake(serve_environment, web_processes=1, tokens=TOKENS) as (process, environment, _):
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        base = f"http://127.0.0.1:{environment['ARBOR_PORT']}"
        yield Served(process=process, base=base, redis_url=environment["REDIS_URL"])


def _drain(process: subprocess.Popen[str]) -> None:
    """Read the supervisor's output on (and drop it), so no child blocks on a full pipe."""
    for _ in process.stdout or ():
        pass


def _deltas(websocket: ClientConnection, message_id: str, count: int) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    while len(deltas) < count:
        frame = _frame(websocket)
        if frame.get("message_id") == message_id and frame["type"] == "delta":
            deltas.append(frame)
    return deltas


def _buffered(redis_url: str, message_id: str) -> list[dict[str, Any]]:
    """The reply's frames as its Redis stream holds them, read without asking any web process."""

    async def replay() -> list[dict[str, Any]]:
        buffer = StreamBuffer(redis_url)
        try:
            return await buffer.replay(message_id)
        except BufferExpired:
            return []
        finally:
            await buffer.aclose()

    return asyncio.run(replay())


def test_a_reply_whose_web_process_is_killed_ends_interrupted_with_its_text(one_web_process: Served) -> None:
    browser = Browser(one_web_process.base)
    (web,) = one_web_process.web_processes()
    with browser.socket() as socket:
        ack = _send(socket, type="send", req=1, chat_id=None, parent_id=None, content="Hi", model="openai:gpt-5-mini")
        chat_id, answer = ack["chat_id"], ack["assistant_message_id"]
        seen = "".join(frame["text"] for frame in _deltas(socket, answer, 5))
        web.kill()  # SIGKILL: nothing saved, nothing said
        web.wait(timeout=30)

    # Nobody calls on the new process: the reply must end by itself.
    deadline = time.monotonic() + WAIT_SECONDS
    while not (frames := _buffered(one_web_process.redis_url, answer)) or frames[-1]["type"] != "done":
        assert time.monotonic() < deadline, f"the orphan never ended: {frames[-1:]}"
        time.sleep(0.5)
    done = frames[-1]
    assert (done["status"], done["error"]["code"]) == ("error", "interrupted")
    written = "".join(frame.get("text", "") for frame in frames if frame["type"] == "delta")
    assert written.startswith(seen) and EXPECTED.startswith(written)

    saved = {message["id"]: message for message in browser.get(f"/api/chats/{chat_id}")["messages"]}
    assert (saved[answer]["status"], saved[answer]["error_code"]) == ("error", "interrupted")
    assert saved[answer]["content"] == [{"type": "text", "text": written}]  # its text kept

    # A tab that resumes it (as a reconnecting browser does) is answered through `done`.
    with browser.socket() as socket:
        socket.send(json.dumps({"type": "resume", "req": 2, "message_id": answer, "after_seq": 0}))
        while (frame := _frame(socket))["type"] != "done":
            assert frame.get("message_id") == answer and frame["type"] == "delta", frame
        assert (frame["status"], frame["error"]["code"]) == ("error", "interrupted")
