"""The chat WebSocket end to end: the real ASGI application (origin check, session auth), the
turn services, the runner and the stream buffer on real PostgreSQL and Redis, and the OpenAI
fake as the model (or the offline demo when no key is set)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import Tier, User
from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Role, Status
from chat.services.turns import turn_send
from chat.streambuffer import stream_buffer
from config.asgi import application
from providers.catalog import catalog_seed
from providers.testing.base import Count, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

MODEL = "openai:gpt-5-mini"
Frame = dict[str, Any]
ID = str(uuid.uuid4())


# --- People and tabs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    user: User
    cookie: str


@database_sync_to_async
def _people(count: int) -> list[Person]:
    users = [UserFactory() for _ in range(count)]  # first: they restore the tiers the seed grants to
    catalog_seed()
    people = []
    for user in users:
        client = Client()
        client.force_login(user)
        people.append(Person(user=user, cookie=client.cookies["sessionid"].value))
    return people


async def _person() -> Person:
    return (await _people(1))[0]


class Tab:
    """One browser tab: a socket on a person's session, read with timeouts."""

    def __init__(self, cookie: str | None) -> None:
        headers = [(b"origin", b"http://localhost:8000"), (b"host", b"localhost:8000")]
        if cookie:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        self.communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)

    async def open(self) -> Tab:
        connected, _ = await self.communicator.connect()
        assert connected
        return self

    async def close(self) -> None:
        await self.communicator.disconnect()

    async def send(self, frame: Frame) -> None:
        await self.communicator.send_json_to(frame)

    async def receive(self, timeout: float = 5) -> Frame:
        while True:
            frame = await self.communicator.receive_json_from(timeout=timeout)
            # A title pushed by a Celery worker (someone's, on the shared broker) may come any time.
            if frame["type"] != "chat":
                return frame

    async def answer(self, frame: Frame) -> Frame:
        await self.send(frame)
        return await self.receive()

    async def until_done(self, message_id: str, timeout: float = 5) -> list[Frame]:
        """Every frame up to and including the reply's `done`."""
        frames = [await self.receive(timeout)]
        while not (frames[-1]["type"] == "done" and frames[-1].get("message_id") == message_id):
            frames.append(await self.receive(timeout))
        return frames

    async def hears_nothing(self, seconds: float = 0.3) -> bool:
        """True when nothing but `chat` frames (titles) comes for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            heard = not await self.communicator.receive_nothing(timeout=left)
            if heard and (await self.communicator.receive_json_from())["type"] != "chat":
                return False
        return True


async def _tab(person: Person) -> Tab:
    return await Tab(person.cookie).open()


def _send(content: str, *, req: Any = 1, model: str | None = MODEL, **fields: Any) -> Frame:
    return {"type": "send", "req": req, "chat_id": None, "parent_id": None, "content": content, "model": model} | fields


async def _turn(tab: Tab, frame: Frame) -> tuple[Frame, list[Frame]]:
    """Send a turn frame; its ack and the reply's frames through `done`."""
    ack = await tab.answer(frame)
    assert ack["type"] == "ack", ack
    return ack, await tab.until_done(ack["assistant_message_id"])


# --- Reading what happened ----------------------------------------------------------------------
def _text(frames: list[Frame]) -> str:
    return "".join(frame.get("text", "") for frame in frames if frame["type"] == "delta")


def _seqs(frames: list[Frame]) -> list[int]:
    return [frame["seq"] for frame in frames if "seq" in frame]


def _model_calls(server: OpenAIServer) -> int:
    return sum(1 for request in server.requests if request.path.startswith("/v1/chat/completions"))


def _slow_words(count: int, delay: float = 0.02) -> Any:
    return reply(*[Say(f"w{index} ") for index in range(count)], Count(5, count), delay=delay)


def _all_words(count: int) -> str:
    return "".join(f"w{index} " for index in range(count))


@database_sync_to_async
def _message(message_id: str) -> Message:
    return Message.objects.get(pk=message_id)


@database_sync_to_async
def _chat(chat_id: str) -> Chat:
    return Chat.objects.get(pk=chat_id)


@database_sync_to_async
def _unstarted_reply(user: User) -> str:
    """A reply placeholder saved as `streaming` whose generation never ran (its process died)."""
    started = turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=None)
    return str(started.assistant_message.pk)


async def _saved(message_id: str, timeout: float = 10) -> Message:
    """The reply once its generation has saved it (polling the database)."""
    deadline = time.monotonic() + timeout
    while (message := await _message(message_id)).status == Status.STREAMING:
        assert time.monotonic() < deadline, "the generation was not saved"
        await asyncio.sleep(0.05)
    return message


# --- Sending and streaming ----------------------------------------------------------------------
async def test_a_send_in_a_new_chat_is_acked_then_streamed_in_seq_order_and_saved(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("Hello "), Say("from "), Say("the fake."), Count(3, 4)))
    tab = await _tab(await _person())
    ack, frames = await _turn(tab, _send("Hi there", req="first"))
    assert ack["req"] == "first" and ack["chat_id"] and ack["user_message_id"]
    reply_id = ack["assistant_message_id"]
    assert _seqs(frames) == list(range(1, len(frames) + 1))
    assert all(frame["type"] in ("delta", "done") and frame["message_id"] == reply_id for frame in frames)
    assert frames[-1]["status"] == "complete" and frames[-1]["usage"]["output_tokens"] == 4
    assert _text(frames) == "Hello from the fake."
    saved = await _message(reply_id)
    assert (saved.status, saved.text, str(saved.chat_id)) == (Status.COMPLETE, "Hello from the fake.", ack["chat_id"])
    await tab.close()


async def test_a_sent_turn_starts_its_generation_already_prepared(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare_again(*args: Any) -> None:
        raise AssertionError("the generation went back to the database to prepare")

    monkeypatch.setattr("chat.generation.run._prepare", prepare_again)
    openai_fake.script(reply(Say("Straight to the model.")))
    tab = await _tab(await _person())
    _, frames = await _turn(tab, _send("Hi"))
    assert frames[-1]["status"] == "complete" and _text(frames) == "Straight to the model."
    await tab.close()


async def test_a_turn_whose_preparation_failed_is_prepared_again_by_its_generation(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the database went away for a moment")

    monkeypatch.setattr("chat.generation.begin.generation_prepare_for", fail)
    openai_fake.script(reply(Say("Prepared on the second try.")))
    tab = await _tab(await _person())
    _, frames = await _turn(tab, _send("Hi"))
    assert frames[-1]["status"] == "complete" and _text(frames) == "Prepared on the second try."
    await tab.close()


async def test_a_send_into_an_existing_chat_replies_under_the_given_parent(openai_fake: OpenAIServer) -> None:
    tab = await _tab(await _person())
    first, _ = await _turn(tab, _send("One"))
    second, frames = await _turn(
        tab, _send("Two", chat_id=first["chat_id"], parent_id=first["assistant_message_id"], model=None)
    )
    assert second["chat_id"] == first["chat_id"] and frames[-1]["status"] == "complete"
    question = await _message(second["user_message_id"])
    assert str(question.parent_id) == first["assistant_message_id"]
    assert str((await _chat(first["chat_id"])).active_leaf_id) == second["assistant_message_id"]
    await tab.close()


async def test_without_keys_the_offline_demo_answers() -> None:
    tab = await _tab(await _person())
    _, frames = await _turn(tab, _send("Hello", model=None))
    assert frames[-1]["status"] == "complete"
    assert _text(frames).startswith("**Arbor Demo (offline)**")
    await tab.close()


async def test_the_same_client_id_sent_twice_gives_the_same_ids_and_one_generation(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("Only once.")))
    tab = await _tab(await _person())
    first, first_frames = await _turn(tab, _send("Hi", client_id="tab-1-msg-1"))
    again, again_frames = await _turn(tab, _send("Hi", req=2, client_id="tab-1-msg-1"))
    assert {**again, "req": 1} == first and again["req"] == 2
    assert again_frames == first_frames  # replayed from the buffer, not generated again
    assert _model_calls(openai_fake) == 1
    assert await database_sync_to_async(Message.objects.count)() == 2
    await tab.close()


async def test_a_refused_model_is_an_error_frame_and_nothing_is_saved() -> None:
    tab = await _tab(await _person())
    error = await tab.answer(_send("Hi", req=4, model="openai:no-such-model"))
    assert (error["type"], error["req"], error["code"]) == ("error", 4, "unknown_model")
    assert await database_sync_to_async(Message.objects.count)() == 0
    await tab.close()


async def test_a_user_over_their_message_allowance_is_told_when_to_retry() -> None:
    person = await _person()
    await database_sync_to_async(Tier.objects.filter(pk=person.user.tier_id).update)(
        message_capacity=1, messages_per_minute=1
    )
    tab = await _tab(person)
    await _turn(tab, _send("One", model=None))
    error = await tab.answer(_send("Two", req=5, model=None))
    assert (error["type"], error["req"], error["code"]) == ("error", 5, "rate_limited")
    assert 0 < error["retry_after"] <= 60
    await tab.close()


# --- Leaving and coming back --------------------------------------------------------------------
async def test_a_tab_that_reconnects_resumes_after_its_last_seq_without_gap_or_duplicate(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(_slow_words(40))
    person = await _person()
    tab = await _tab(person)
    ack = await tab.answer(_send("Count"))
    reply_id = ack["assistant_message_id"]
    seen = [await tab.receive(), await tab.receive()]
    assert [frame["type"] for frame in seen] == ["delta", "delta"]
    await tab.close()

    saved = await _saved(reply_id)  # the generation went on without any socket
    assert (saved.status, saved.text) == (Status.COMPLETE, _all_words(40))

    again = await _tab(person)
    await again.send({"type": "resume", "message_id": reply_id, "after_seq": seen[-1]["seq"]})
    rest = await again.until_done(reply_id)
    assert _seqs(seen + rest) == list(range(1, len(seen) + len(rest) + 1))
    assert _text(seen + rest) == saved.text
    assert rest[-1]["status"] == "complete"
    assert _model_calls(openai_fake) == 1
    await again.close()


async def test_a_follower_outlasts_a_reply_silent_for_longer_than_the_redis_socket_timeout() -> None:
    # redis-py's default socket timeout (5 s) ends a blocking read of a silent stream; the
    # follower must read on from its last seq (a reasoning model may think that long).
    person = await _person()
    reply_id = await _unstarted_reply(person.user)
    buffer = stream_buffer()
    await buffer.open(reply_id)  # as a generation in another process would
    await buffer.append(reply_id, {"type": "delta", "text": "Thinking"})
    tab = await _tab(person)
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})
    assert (await tab.receive())["seq"] == 1
    await asyncio.sleep(6)
    await buffer.append(reply_id, {"type": "delta", "text": " done."})
    await buffer.finish(reply_id, {"type": "done", "status": "complete"})
    rest = await tab.until_done(reply_id)
    assert (_seqs(rest), _text(rest)) == ([2, 3], " done.")
    await tab.close()


async def test_another_tab_of_the_same_user_is_told_of_the_generation_and_follows_it_live(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(_slow_words(30))
    person = await _person()
    writer, watcher = await _tab(person), await _tab(person)
    ack = await writer.answer(_send("Count"))
    reply_id = ack["assistant_message_id"]
    notice = await watcher.receive()
    assert notice == {
        "type": "generation",
        "chat_id": ack["chat_id"],
        "message_id": reply_id,
        "parent_id": ack["user_message_id"],
        "user_message_id": ack["user_message_id"],
    }
    await watcher.send({"type": "resume", "message_id": reply_id, "after_seq": 0})
    watched, written = await asyncio.gather(watcher.until_done(reply_id), writer.until_done(reply_id))
    assert watched == written
    assert _text(watched) == _all_words(30)
    assert all(frame["type"] != "generation" for frame in written)  # not told of its own turn
    await writer.close()
    await watcher.close()


async def test_a_lone_tab_s_turn_sends_no_notice_through_the_channel_layer(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels_redis.core import RedisChannelLayer

    openai_fake.script(reply(Say("Alone.")))
    sent: list[str] = []
    group_send = RedisChannelLayer.group_send

    async def counted(layer: RedisChannelLayer, group: str, message: dict[str, object]) -> None:
        if group.startswith("user."):  # the user's tabs (a session's group closes sockets)
            sent.append(group)
        await group_send(layer, group, message)

    monkeypatch.setattr(RedisChannelLayer, "group_send", counted)
    person = await _person()
    tab = await _tab(person)
    await _turn(tab, _send("Hi"))
    assert sent == []  # nobody else would hear it
    # A socket of a process that stopped without leaving the group (a restart) hears nothing either.
    await get_channel_layer().group_add(f"user.{person.user.pk}", "specific.5f0a9e0c0d1e4bd3!gone")
    openai_fake.script(reply(Say("Still alone.")))
    await _turn(tab, _send("Hi again"))
    assert sent == []
    other = await _tab(person)
    openai_fake.script(reply(Say("Heard.")))
    await _turn(tab, _send("Again"))
    assert len(sent) == 1  # now another tab listens
    await tab.close()
    await other.close()


async def test_resume_after_the_buffer_expired_answers_a_snapshot_and_done_without_calling_the_model(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("Saved "), Say("answer.")))
    tab = await _tab(await _person())
    ack, _ = await _turn(tab, _send("Hi"))
    reply_id = ack["assistant_message_id"]
    await stream_buffer().client.delete(f"arbor:stream:{reply_id}", f"arbor:stream:{reply_id}:seq")
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 1})
    snapshot, done = await tab.receive(), await tab.receive()
    assert snapshot == {
        "type": "delta",
        "message_id": reply_id,
        "seq": None,
        "snapshot": True,
        "text": "Saved answer.",
    }
    assert (done["type"], done["message_id"], done["status"]) == ("done", reply_id, "complete")
    assert _model_calls(openai_fake) == 1
    assert await tab.hears_nothing()
    await tab.close()


async def test_a_saved_reply_whose_buffer_never_got_its_done_is_resumed_from_the_database(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("Saved "), Say("answer.")))
    tab = await _tab(await _person())
    ack, _ = await _turn(tab, _send("Hi"))
    reply_id = ack["assistant_message_id"]
    # As when Redis went away while the reply ended: saved, but its buffer has no `done`.
    key = f"arbor:stream:{reply_id}"
    [(last_id, last)] = await stream_buffer().client.xrevrange(key, count=1)
    assert '"done"' in last["f"]
    await stream_buffer().client.xdel(key, last_id)

    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})

    snapshot, done = await tab.receive(), await tab.receive()
    assert (snapshot["snapshot"], snapshot["text"]) == (True, "Saved answer.")
    assert (done["type"], done["status"]) == ("done", "complete")
    await tab.close()


async def test_a_resume_that_fails_on_the_server_says_which_reply_so_the_tab_follows_it_again(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_fake.script(reply(Say("Saved.")))
    tab = await _tab(await _person())
    ack, _ = await _turn(tab, _send("Hi"))
    reply_id = ack["assistant_message_id"]

    async def redis_gone(self: Any, message_id: Any) -> bool:
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr(type(stream_buffer()), "is_finished", redis_gone)
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})

    error = await tab.receive()
    assert (error["type"], error["code"], error["message_id"], error["req"]) == ("error", "internal", reply_id, None)
    await tab.close()


async def test_resume_of_a_reply_left_streaming_without_a_buffer_says_interrupted_and_starts_nothing(
    openai_fake: OpenAIServer,
) -> None:
    person = await _person()
    reply_id = await _unstarted_reply(person.user)
    tab = await _tab(person)
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})
    snapshot, done = await tab.receive(), await tab.receive()
    assert (snapshot["snapshot"], snapshot["text"]) == (True, "")
    assert (done["status"], done["error"]["code"]) == ("error", "interrupted")
    assert _model_calls(openai_fake) == 0
    assert not await stream_buffer().exists(reply_id)
    await tab.close()


async def test_a_resume_of_a_reply_this_tab_follows_replaces_its_follower(openai_fake: OpenAIServer) -> None:
    openai_fake.script(_slow_words(20, delay=0.03))
    tab = await _tab(await _person())
    ack = await tab.answer(_send("Count"))
    reply_id = ack["assistant_message_id"]
    first = await tab.receive()
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})
    rest = await tab.until_done(reply_id)
    last = rest[-1]["seq"]
    # The old follower may send a frame or two before it is cancelled; then the new one sends
    # everything from seq 1, and only it reaches `done`.
    assert _seqs(rest[-last:]) == list(range(1, last + 1))
    assert [frame["type"] for frame in [first, *rest]].count("done") == 1
    assert await tab.hears_nothing()
    await tab.close()


# --- Stop, edit, regenerate, switch -------------------------------------------------------------
async def test_stop_mid_stream_ends_the_reply_as_stopped_and_keeps_the_partial_text(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(_slow_words(200))
    tab = await _tab(await _person())
    ack = await tab.answer(_send("Count"))
    reply_id = ack["assistant_message_id"]
    first = await tab.receive()
    assert first["type"] == "delta"
    await tab.send({"type": "stop", "req": 9, "message_id": reply_id})
    rest = await tab.until_done(reply_id)
    assert {"type": "ack", "req": 9, "message_id": reply_id} in rest
    assert rest[-1]["status"] == "stopped"
    saved = await _message(reply_id)
    assert saved.status == Status.STOPPED
    assert saved.text == _text([first, *rest]) and 0 < len(saved.text) < len(_all_words(200))
    await tab.close()


async def test_edit_adds_a_sibling_user_message_and_streams_a_reply_to_it(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("First answer.")), reply(Say("Second answer.")))
    tab = await _tab(await _person())
    first, _ = await _turn(tab, _send("Original question"))
    edited, frames = await _turn(
        tab, {"type": "edit", "req": 2, "message_id": first["user_message_id"], "content": "Better question"}
    )
    assert edited["req"] == 2 and edited["chat_id"] == first["chat_id"]
    assert edited["user_message_id"] != first["user_message_id"]
    assert _text(frames) == "Second answer."
    original, question = await _message(first["user_message_id"]), await _message(edited["user_message_id"])
    assert (question.role, question.text, question.parent_id) == (Role.USER, "Better question", original.parent_id)
    assert str((await _message(edited["assistant_message_id"])).parent_id) == edited["user_message_id"]
    assert str((await _chat(first["chat_id"])).active_leaf_id) == edited["assistant_message_id"]
    await tab.close()


async def test_regenerate_with_another_model_adds_a_sibling_reply(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("Take one.")), reply(Say("Take two.")))
    tab = await _tab(await _person())
    first, _ = await _turn(tab, _send("Question"))
    again, frames = await _turn(
        tab, {"type": "regenerate", "req": 3, "message_id": first["assistant_message_id"], "model": "openai:gpt-5"}
    )
    assert again["user_message_id"] is None and again["assistant_message_id"] != first["assistant_message_id"]
    assert _text(frames) == "Take two."
    regenerated = await _message(again["assistant_message_id"])
    assert (str(regenerated.parent_id), regenerated.model_id) == (first["user_message_id"], "openai:gpt-5")
    assert openai_fake.requests[-1].body["model"] == "gpt-5"
    await tab.close()


async def test_switch_answers_switched_persists_the_selection_and_tells_the_other_tabs(
    openai_fake: OpenAIServer,
) -> None:
    person = await _person()
    tab, other = await _tab(person), await _tab(person)
    first, _ = await _turn(tab, _send("Question"))
    await _turn(tab, {"type": "regenerate", "message_id": first["assistant_message_id"]})
    switched = await tab.answer({"type": "switch", "req": 8, "message_id": first["assistant_message_id"]})
    expected = {
        "type": "switched",
        "chat_id": first["chat_id"],
        "message_id": first["assistant_message_id"],
        "active_leaf_id": first["assistant_message_id"],
    }
    assert switched == {**expected, "req": 8}
    assert str((await _chat(first["chat_id"])).active_leaf_id) == first["assistant_message_id"]
    heard = [await other.receive() for _ in range(3)]  # two generation notices, then the switch
    assert [frame["type"] for frame in heard] == ["generation", "generation", "switched"]
    assert heard[-1] == expected
    await tab.close()
    await other.close()


# --- Who may do what ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Turn:
    chat_id: str
    user_message_id: str
    reply_id: str


@database_sync_to_async
def _private_turn(user: User, client_id: str | None = None) -> Turn:
    """A turn whose reply is still `streaming` (as if being written by another process)."""
    started = turn_send(user=user, chat_id=None, parent_id=None, content="Private", model_id=None, client_id=client_id)
    assert started.user_message is not None
    return Turn(str(started.chat.pk), str(started.user_message.pk), str(started.assistant_message.pk))


@database_sync_to_async
def _state() -> list[tuple[Any, ...]]:
    messages = list(Message.objects.order_by("pk").values_list("pk", "status", "selected_child_id", "text"))
    chats = list(Chat.objects.order_by("pk").values_list("pk", "active_leaf_id", "message_count"))
    return [*messages, *chats]


FOREIGN_FRAMES: dict[str, Callable[[Turn, Turn], Frame]] = {
    "send_into_their_chat": lambda theirs, mine: _send(
        "x", chat_id=theirs.chat_id, parent_id=theirs.reply_id, model=None
    ),
    "send_under_their_message": lambda theirs, mine: _send(
        "x", chat_id=mine.chat_id, parent_id=theirs.reply_id, model=None
    ),
    "edit": lambda theirs, mine: {"type": "edit", "message_id": theirs.user_message_id, "content": "x"},
    "regenerate": lambda theirs, mine: {"type": "regenerate", "message_id": theirs.reply_id},
    "stop": lambda theirs, mine: {"type": "stop", "message_id": theirs.reply_id},
    "switch": lambda theirs, mine: {"type": "switch", "message_id": theirs.user_message_id},
    "resume": lambda theirs, mine: {"type": "resume", "message_id": theirs.reply_id, "after_seq": 0},
    "resume_unknown": lambda theirs, mine: {"type": "resume", "message_id": str(uuid.uuid4())},
}


@pytest.mark.parametrize("case", FOREIGN_FRAMES)
async def test_another_users_ids_answer_not_found_and_change_nothing(case: str) -> None:
    owner, stranger = await _people(2)
    theirs, mine = await _private_turn(owner.user), await _private_turn(stranger.user)
    before = await _state()
    tab = await _tab(stranger)
    error = await tab.answer({**FOREIGN_FRAMES[case](theirs, mine), "req": case})
    assert (error["type"], error["req"], error["code"]) == ("error", case, "not_found")
    assert await tab.hears_nothing()
    assert await _state() == before
    assert not await stream_buffer().client.exists(f"arbor:stop:{theirs.reply_id}")
    await tab.close()


async def test_a_client_id_another_user_sent_starts_a_turn_of_ones_own() -> None:
    owner, stranger = await _people(2)
    theirs = await _private_turn(owner.user, client_id="same-client-id")
    tab = await _tab(stranger)
    ack, frames = await _turn(tab, _send("Mine", model=None, client_id="same-client-id"))
    assert ack["chat_id"] != theirs.chat_id and ack["user_message_id"] != theirs.user_message_id
    assert frames[-1]["status"] == "complete"
    await tab.close()


async def test_a_frame_sent_to_the_users_group_reaches_every_tab_of_theirs() -> None:
    person, stranger = await _people(2)
    tabs = [await _tab(person), await _tab(person)]
    strangers_tab = await _tab(stranger)
    frame = {"type": "chat", "chat_id": ID, "title": "Trip to Lisbon"}  # as the titles task sends
    await get_channel_layer().group_send(f"user.{person.user.pk}", {"type": "chat.event", "frame": frame})
    for tab in tabs:
        assert await tab.communicator.receive_json_from(timeout=5) == frame
        await tab.close()
    assert await strangers_tab.hears_nothing()
    await strangers_tab.close()


# --- Bad frames and the handshake ---------------------------------------------------------------
BAD_FRAMES: dict[str, tuple[str, Any, str]] = {
    "not_json": ("not json", None, "bad_frame"),
    "not_an_object": ("[1, 2]", None, "bad_frame"),
    "unknown_type": ('{"type": "teleport", "req": 1}', 1, "unknown_type"),
    "no_type": ('{"req": 2}', 2, "unknown_type"),
    "content_not_a_string": ('{"type": "send", "req": 3, "content": 5}', 3, "bad_frame"),
    "content_too_long": ('{"type": "send", "req": 4, "content": "' + "x" * 100_001 + '"}', 4, "bad_frame"),
    "parent_without_chat": ('{"type": "send", "req": 5, "content": "hi", "parent_id": "' + ID + '"}', 5, "bad_frame"),
    "chat_id_not_a_uuid": ('{"type": "send", "req": 6, "content": "hi", "chat_id": "chat-1"}', 6, "bad_frame"),
    "empty_content": ('{"type": "send", "req": 7, "content": "   "}', 7, "bad_request"),
    "missing_message_id": ('{"type": "stop", "req": 8}', 8, "bad_frame"),
    "message_id_a_number": ('{"type": "switch", "req": 9, "message_id": 12}', 9, "bad_frame"),
    "negative_seq": ('{"type": "resume", "req": 10, "message_id": "' + ID + '", "after_seq": -1}', 10, "bad_frame"),
    "huge_seq": (
        '{"type": "resume", "req": 12, "message_id": "' + ID + '", "after_seq": 100000000000000000000}',
        12,
        "bad_frame",
    ),
    "boolean_seq": ('{"type": "resume", "req": 11, "message_id": "' + ID + '", "after_seq": true}', 11, "bad_frame"),
    "req_an_object": ('{"type": "ping", "req": {"nested": 1}}', None, "bad_frame"),
}


@pytest.mark.parametrize("case", BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_frame_and_the_socket_stays_open(case: str) -> None:
    text, req, code = BAD_FRAMES[case]
    tab = await _tab(await _person())
    await tab.communicator.send_to(text_data=text)
    error = await tab.receive()
    assert (error["type"], error["req"], error["code"]) == ("error", req, code)
    assert await tab.answer({"type": "ping", "req": "still there?"}) == {"type": "pong", "req": "still there?"}
    assert await database_sync_to_async(Message.objects.count)() == 0
    await tab.close()


async def test_a_binary_frame_gets_an_error_frame() -> None:
    tab = await _tab(await _person())
    await tab.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await tab.receive())["code"] == "bad_frame"
    await tab.close()


async def test_a_socket_without_a_session_is_closed_with_4401() -> None:
    tab = Tab(cookie=None)
    connected, _ = await tab.communicator.connect()
    assert connected
    assert await tab.communicator.receive_output() == {"type": "websocket.close", "code": 4401}
    await tab.close()  # the browser's side of the close: the consumer ends (nothing left running)


@database_sync_to_async
def _tree_entry(message_id: str) -> Frame:
    """The message as `GET /api/chats/<id>` gives it in the tree."""
    import json

    from chat.selectors import chat_tree_json

    message = Message.objects.select_related("chat").get(pk=message_id)
    return next(entry for entry in json.loads(chat_tree_json(message.chat)) if entry["id"] == message_id)


async def test_the_done_frame_carries_the_saved_reply_live_and_after_the_buffer_expired(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("Saved "), Say("answer."), Count(5, 2)))
    tab = await _tab(await _person())
    ack, frames = await _turn(tab, _send("Hi"))
    reply_id = ack["assistant_message_id"]
    entry = await _tree_entry(reply_id)
    assert frames[-1]["message"] == entry  # live: a tab patches its tree without reading the chat
    assert (entry["status"], entry["content"]) == ("complete", [{"type": "text", "text": "Saved answer."}])

    await stream_buffer().client.delete(f"arbor:stream:{reply_id}", f"arbor:stream:{reply_id}:seq")
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})
    _, done = await tab.receive(), await tab.receive()
    assert (done["type"], done["seq"], done["message"]) == ("done", None, entry)
    await tab.close()


async def test_the_done_frame_of_a_reply_left_streaming_without_a_buffer_carries_it_as_interrupted() -> None:
    person = await _person()
    reply_id = await _unstarted_reply(person.user)
    tab = await _tab(person)
    await tab.send({"type": "resume", "message_id": reply_id, "after_seq": 0})
    _, done = await tab.receive(), await tab.receive()
    entry = await _tree_entry(reply_id)
    assert entry["status"] == "streaming"  # the recovery command has not marked it yet
    assert done["message"] == entry | {
        "status": "error",
        "error_code": "interrupted",
        "error_message": done["error"]["message"],
    }
    await tab.close()
