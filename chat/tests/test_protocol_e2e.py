"""The chat issue's "done when": a plain WebSocket client that follows docs/protocol.md (and
nothing else) starts a chat, streams a reply, drops the connection, resumes with no gap or
duplicate, stops, edits, regenerates, switches and forks — against `manage.py serve` (what
`make run` runs) with OpenAI pointed at a fake server."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from config.tests.test_serve import _read_until_ready, _serve, _stop_with_ctrl_c, serve_environment  # noqa: F401
from providers.testing.__main__ import steady_reply
from providers.testing.openai_server import OpenAIServer

TOKENS = 40
EXPECTED = "".join(f"token{index} " for index in range(TOKENS))


@pytest.fixture
def served(serve_environment: dict[str, str]) -> Iterator[str]:  # noqa: F811
    fake = OpenAIServer()
    fake.default_reply = steady_reply(TOKENS, rate=50)
    with fake:
        environment = {
            **serve_environment,
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
        }
        process = _serve(environment)
        try:
            _read_until_ready(process)
            yield f"http://127.0.0.1:{environment['ARBOR_PORT']}"
        finally:
            _stop_with_ctrl_c(process)


class Browser:
    """Cookies and the CSRF token, as a browser keeps them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.opener.open(f"{base}/", timeout=10).read()  # a guest session
        self.opener.open(f"{base}/accounts/signin/", timeout=10).read()  # a CSRF cookie

    def cookie(self, name: str) -> str:
        return next(cookie.value for cookie in self.cookies if cookie.name == name)

    def socket(self) -> ClientConnection:
        headers = {"Origin": self.base, "Cookie": f"sessionid={self.cookie('sessionid')}"}
        return connect(f"{self.base.replace('http', 'ws')}/ws/chat/", additional_headers=headers, open_timeout=10)

    def get(self, path: str) -> dict[str, Any]:
        with self.opener.open(f"{self.base}{path}", timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken")},
            method="POST",
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())


def _frame(socket: ClientConnection) -> dict[str, Any]:
    while True:
        frame = json.loads(socket.recv(timeout=15))
        if frame["type"] not in {"generation", "chat"}:  # list updates for the user's tabs
            return frame


def _until_done(socket: ClientConnection, message_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    deltas = []
    while True:
        frame = _frame(socket)
        if frame.get("message_id") != message_id:
            continue
        if frame["type"] == "done":
            return deltas, frame
        if frame["type"] == "delta":
            deltas.append(frame)


def _send(socket: ClientConnection, **frame: Any) -> dict[str, Any]:
    socket.send(json.dumps(frame))
    while True:
        answer = _frame(socket)
        if answer.get("req") == frame.get("req"):
            assert answer["type"] != "error", answer
            return answer


def test_a_plain_websocket_client_does_everything_the_protocol_promises(served: str) -> None:
    browser = Browser(served)

    # Start a chat, read part of the reply, drop the connection.
    with browser.socket() as first:
        ack = _send(first, type="send", req=1, chat_id=None, parent_id=None, content="Hello", model="openai:gpt-5-mini")
        chat_id, answer = ack["chat_id"], ack["assistant_message_id"]
        seen = [_frame(first) for _ in range(5)]
        assert [frame["seq"] for frame in seen] == [1, 2, 3, 4, 5]

    # Resume after the last seq seen: no gap, no duplicate, and the whole reply.
    with browser.socket() as second:
        second.send(json.dumps({"type": "resume", "req": 2, "message_id": answer, "after_seq": 5}))
        rest, done = _until_done(second, answer)
        assert [frame["seq"] for frame in rest] == list(range(6, 6 + len(rest)))
        assert "".join(frame["text"] for frame in seen + rest) == EXPECTED
        assert done["status"] == "complete"

        # Stop a reply mid-stream: the partial text is kept.
        ack = _send(second, type="send", req=3, chat_id=chat_id, parent_id=answer, content="More", client_id="m2")
        follow_up, stopped_reply = ack["user_message_id"], ack["assistant_message_id"]
        assert _frame(second)["type"] == "delta"
        _send(second, type="stop", req=4, message_id=stopped_reply)
        _, done = _until_done(second, stopped_reply)
        assert done["status"] == "stopped"
        saved = {message["id"]: message for message in browser.get(f"/api/chats/{chat_id}")["messages"]}
        assert saved[stopped_reply]["status"] == "stopped"
        assert EXPECTED.startswith(saved[stopped_reply]["content"][0]["text"])  # the partial text, kept

        # Edit the follow-up: a new sibling and its own reply.
        ack = _send(second, type="edit", req=5, message_id=follow_up, content="Less")
        edited_reply = ack["assistant_message_id"]
        assert ack["user_message_id"] != follow_up
        assert _until_done(second, edited_reply)[1]["status"] == "complete"

        # Regenerate that reply, then switch back to the first version.
        ack = _send(second, type="regenerate", req=6, message_id=edited_reply)
        assert _until_done(second, ack["assistant_message_id"])[1]["status"] == "complete"
        switched = _send(second, type="switch", req=7, message_id=edited_reply)
        assert switched["active_leaf_id"] == edited_reply

        # Fork is HTTP: a new chat holding the line root→that reply.
        status, fork = browser.post(f"/api/chats/{chat_id}/fork", {"message_id": edited_reply})
        assert status == 201 and fork["id"] != chat_id
