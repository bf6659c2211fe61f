"""Artifacts through a whole chat: the real ASGI application and WebSocket protocol, the runner's
tool loop, and the OpenAI fake issuing the tool calls (real PostgreSQL, Redis, Celery worker)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory
from artifacts.models import Document, DocumentVersion, Suggestion
from chat.models import Message
from config.asgi import application
from providers.catalog import catalog_seed
from providers.models import Provider
from providers.secrets import encrypt_secret
from providers.testing.base import Call, Count, End, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "openai:gpt-5-mini"
POEM = "# Rivers\n\nThe river runs,\nthe river bends.\n"
Frame = dict[str, Any]


@database_sync_to_async
def _signed_in() -> tuple[User, str]:
    user = UserFactory()  # first: it restores the tiers the seed grants models to
    catalog_seed()
    client = Client()
    client.force_login(user)
    return user, client.cookies["sessionid"].value


class Tab:
    def __init__(self, cookie: str) -> None:
        headers = [
            (b"origin", b"http://localhost:8000"),
            (b"host", b"localhost:8000"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ]
        self.communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)

    async def __aenter__(self) -> Tab:
        connected, _ = await self.communicator.connect()
        assert connected
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.communicator.disconnect()

    async def receive(self, timeout: float = 10) -> Frame:
        frame: Frame = await self.communicator.receive_json_from(timeout=timeout)
        return frame

    async def turn(self, content: str, **fields: Any) -> tuple[Frame, list[Frame]]:
        """Send a message; its ack and every frame of the reply through `done` (pushed frames
        such as titles and suggestions are set aside in `self.pushed`)."""
        await self.communicator.send_json_to(
            {"type": "send", "req": 1, "chat_id": None, "parent_id": None, "content": content, "model": MODEL} | fields
        )
        ack = await self.receive()
        assert ack["type"] == "ack", ack
        frames: list[Frame] = []
        while not (frames and frames[-1]["type"] == "done"):
            frame = await self.receive()
            if frame.get("message_id") == ack["assistant_message_id"]:
                frames.append(frame)
        return ack, frames


def _call(call_id: str, name: str, arguments: Any) -> Any:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return reply(Call(call_id, name, text), Count(20, 10), End("tool_calls"))


def _of(frames: list[Frame], kind: str) -> list[Frame]:
    return [frame for frame in frames if frame["type"] == kind]


@database_sync_to_async
def _versions(document_id: str) -> list[tuple[int, str]]:
    return list(DocumentVersion.objects.filter(document_id=document_id).values_list("number", "content"))


@database_sync_to_async
def _parts(message_id: str) -> list[dict[str, Any]]:
    return Message.objects.get(pk=message_id).content


async def test_a_chat_creates_a_document_that_streams_into_the_socket_and_saves_version_1(
    openai_fake: OpenAIServer,
) -> None:
    _, cookie = await _signed_in()
    openai_fake.script(
        _call("call_1", "create_document", {"title": "Rivers", "kind": "text"}),
        reply(Say(POEM[:10]), Say(POEM[10:]), Count(30, 12)),  # the document's writer
        reply(Say("I wrote the poem."), Count(60, 5)),  # the reply goes on after the tool
    )
    async with Tab(cookie) as tab:
        ack, frames = await tab.turn("Write me a poem about rivers")

    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    start = _of(frames, "artifact_start")[0]
    document_id = start["document_id"]
    assert (start["operation"], start["kind"], start["title"], start["version"]) == ("create", "text", "Rivers", 1)
    assert "".join(frame["text"] for frame in _of(frames, "artifact_delta")) == POEM
    assert _of(frames, "artifact_done")[0] == {
        "type": "artifact_done",
        "message_id": ack["assistant_message_id"],
        "seq": _of(frames, "artifact_done")[0]["seq"],
        "document_id": document_id,
        "status": "complete",
        "version": 1,
    }
    types = [frame["type"] for frame in frames]
    assert types.index("artifact_done") < types.index("tool_result") < len(types) - 1
    assert frames[-1]["status"] == "complete"
    assert await _versions(document_id) == [(1, POEM)]
    parts = await _parts(ack["assistant_message_id"])
    result = next(part for part in parts if part["type"] == "tool_result")
    assert result["error"] is False and result["data"]["document_id"] == document_id
    assert parts[-1] == {"type": "text", "text": "I wrote the poem."}


async def test_an_update_in_the_next_turn_saves_version_2(openai_fake: OpenAIServer) -> None:
    _, cookie = await _signed_in()
    openai_fake.script(
        _call("call_1", "create_document", {"title": "Rivers", "kind": "text"}),
        reply(Say(POEM)),
        reply(Say("Done.")),
    )
    async with Tab(cookie) as tab:
        first, frames = await tab.turn("Write me a poem about rivers")
        document_id = _of(frames, "artifact_start")[0]["document_id"]
        revised = POEM.replace("runs", "sings")
        openai_fake.script(
            _call("call_2", "update_document", {"id": document_id, "description": "Make it sing"}),
            reply(Say(revised)),
            reply(Say("Updated.")),
        )
        _, frames = await tab.turn("Make it sing", chat_id=first["chat_id"], parent_id=first["assistant_message_id"])

    start = _of(frames, "artifact_start")[0]
    assert (start["operation"], start["document_id"], start["version"]) == ("update", document_id, 2)
    assert _of(frames, "artifact_done")[0]["version"] == 2
    assert await _versions(document_id) == [(1, POEM), (2, revised)]


async def test_a_malformed_tool_call_is_reported_to_the_model_and_the_chat_goes_on(
    openai_fake: OpenAIServer,
) -> None:
    _, cookie = await _signed_in()
    openai_fake.script(
        _call("call_1", "create_document", '{"title": "Rivers", "kind": '),
        reply(Say("Sorry, let me try that again later.")),
    )
    async with Tab(cookie) as tab:
        _, frames = await tab.turn("Write me a poem")

    result = _of(frames, "tool_result")[0]
    assert result["error"] is True and "not valid JSON" in result["text"]
    assert _of(frames, "artifact_start") == []
    assert frames[-1]["status"] == "complete"
    # The model was told, as the tool's result, and answered.
    sent_back = openai_fake.requests[-1].body["messages"]
    assert any(message["role"] == "tool" and "not valid JSON" in str(message["content"]) for message in sent_back)
    assert await database_sync_to_async(Document.objects.count)() == 0


async def test_a_sheet_that_does_not_parse_is_shown_and_reported_and_the_chat_goes_on(
    openai_fake: OpenAIServer,
) -> None:
    _, cookie = await _signed_in()
    openai_fake.script(
        _call("call_1", "create_document", {"title": "People", "kind": "sheet"}),
        reply(Say('name,age\nAda,"36\n')),
        reply(Say("The table did not come out right.")),
    )
    async with Tab(cookie) as tab:
        _, frames = await tab.turn("A table of people")

    done = _of(frames, "artifact_done")[0]
    assert done["status"] == "error" and "does not parse" in done["error"]["message"]
    assert _of(frames, "tool_result")[0]["error"] is True
    assert frames[-1]["status"] == "complete"
    assert await database_sync_to_async(Document.objects.count)() == 0


async def test_another_users_document_id_is_refused_as_the_tools_result(openai_fake: OpenAIServer) -> None:
    _, their_cookie = await _signed_in()
    openai_fake.script(
        _call("call_1", "create_document", {"title": "Theirs", "kind": "text"}), reply(Say(POEM)), reply(Say("Ok."))
    )
    async with Tab(their_cookie) as tab:
        _, frames = await tab.turn("Write")
    theirs = _of(frames, "artifact_start")[0]["document_id"]

    _, my_cookie = await _signed_in()
    openai_fake.script(
        _call("call_2", "update_document", {"id": theirs, "description": "Empty it"}), reply(Say("Could not."))
    )
    async with Tab(my_cookie) as tab:
        _, frames = await tab.turn("Change their document")
    result = _of(frames, "tool_result")[0]
    assert result["error"] is True and "no document with the id" in result["text"]
    assert await _versions(theirs) == [(1, POEM)]


async def test_suggestions_arrive_on_the_tab_from_a_real_celery_worker(
    celery_worker_process: object, openai_fake: OpenAIServer
) -> None:
    _, cookie = await _signed_in()
    review = (
        json.dumps({"original": "runs", "suggested": "flows", "description": "Livelier."})
        + "\n"
        + json.dumps({"original": "bends", "suggested": "winds", "description": "Rhymes better."})
        + "\n"
    )
    with OpenAIServer() as reviewer:
        # The worker's environment was fixed when it started: it finds its provider in the
        # database (this process keeps using OPENAI_BASE_URL, the reply's fake).
        await database_sync_to_async(Provider.objects.filter(slug="openai").update)(
            base_url=f"{reviewer.url}/v1", api_key_encrypted=encrypt_secret("sk-reviewer")
        )
        # The worker titles the chat first with the same cheapest model: both get the review
        # (a title made of it is harmless), so the order of the two jobs does not matter.
        reviewer.script(reply(Say(review), Count(40, 30)), reply(Say(review), Count(40, 30)))
        openai_fake.script(
            _call("call_1", "create_document", {"title": "Rivers", "kind": "text"}),
            reply(Say(POEM)),
            reply(Say("Here it is.")),
        )
        async with Tab(cookie) as tab:
            first, frames = await tab.turn("Write me a poem")
            document_id = _of(frames, "artifact_start")[0]["document_id"]
            openai_fake.script(
                _call("call_2", "request_suggestions", {"id": document_id}), reply(Say("A reviewer is on it."))
            )
            _, frames = await tab.turn(
                "Any suggestions?", chat_id=first["chat_id"], parent_id=first["assistant_message_id"]
            )
            assert _of(frames, "tool_result")[0]["error"] is False
            pushed: list[Frame] = []
            deadline = time.monotonic() + 30
            while not (pushed and pushed[-1]["type"] == "suggestions_done"):
                assert time.monotonic() < deadline, pushed
                frame = await tab.receive(timeout=30)
                if frame["type"] in ("suggestion", "suggestions_done"):
                    pushed.append(frame)

    assert [(frame["type"], frame.get("suggested")) for frame in pushed] == [
        ("suggestion", "flows"),
        ("suggestion", "winds"),
        ("suggestions_done", None),
    ]
    assert pushed[-1]["count"] == 2 and pushed[0]["document_id"] == document_id
    count = await database_sync_to_async(Suggestion.objects.filter(version__document_id=document_id).count)()
    assert count == 2
