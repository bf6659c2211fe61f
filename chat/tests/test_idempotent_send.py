"""A `send` with a client_id happens once per user, even when its copies race: a retry on a new
socket while the first copy is still being saved, or several tabs sending the same frame at once.
The database decides (the client_id constraints), not a read before the write."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.generation import begin
from chat.models import Chat, Message, Role
from chat.services.turns import TurnStarted, turn_send
from chat.tests.test_consumers import Tab, _model_calls, _people, _send
from providers.catalog import catalog_seed
from providers.testing.base import Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

COPIES = 10


def _concurrently(count: int, call: Any) -> list[Any]:
    """`call()` in `count` threads released together, each on its own database connection."""
    barrier = threading.Barrier(count)

    def run() -> Any:
        try:
            barrier.wait()
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return [future.result() for future in [pool.submit(run) for _ in range(count)]]


def _ids(started: TurnStarted) -> tuple[Any, ...]:
    return started.chat.pk, started.user_message.pk, started.assistant_message.pk  # type: ignore[union-attr]


def test_copies_of_a_new_chat_send_racing_make_one_chat_one_message_and_one_reply() -> None:
    user = UserFactory()
    catalog_seed()

    def send() -> TurnStarted:
        return turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=None, client_id="m-1")

    started = _concurrently(COPIES, send)

    assert len({_ids(turn) for turn in started}) == 1
    assert sum(turn.created for turn in started) == 1
    assert Chat.objects.filter(owner=user).count() == 1
    assert Message.objects.filter(chat__owner=user, role=Role.USER).count() == 1
    assert Message.objects.filter(chat__owner=user, role=Role.ASSISTANT).count() == 1


def test_copies_of_a_reply_send_racing_make_one_message_and_one_reply() -> None:
    user = UserFactory()
    catalog_seed()
    first = turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=None)
    Message.objects.filter(pk=first.assistant_message.pk).update(status="complete")

    def send() -> TurnStarted:
        return turn_send(
            user=user,
            chat_id=first.chat.pk,
            parent_id=first.assistant_message.pk,
            content="More",
            model_id=None,
            client_id="m-2",
        )

    started = _concurrently(COPIES, send)

    assert len({_ids(turn) for turn in started}) == 1
    assert Message.objects.filter(chat=first.chat).count() == 4


def test_the_same_client_id_of_another_user_is_another_turn() -> None:
    one, two = UserFactory(), UserFactory()
    catalog_seed()

    def send(user: User) -> TurnStarted:
        return turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=None, client_id="same")

    assert send(one).chat.pk != send(two).chat.pk
    assert Chat.objects.count() == 2


async def test_a_send_repeated_on_ten_sockets_at_once_calls_the_model_once_and_every_tab_streams_it(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_fake.script(reply(Say("Only once.")))
    prepare = begin.generation_prepare_for

    def slow_prepare(**kwargs: Any) -> Any:
        # The winning copy's reply is committed well before its generation opens the buffer:
        # the copies that lost find it in that gap.
        time.sleep(0.3)
        return prepare(**kwargs)

    monkeypatch.setattr(begin, "generation_prepare_for", slow_prepare)
    (person,) = await _people(1)
    tabs = [await Tab(person.cookie).open() for _ in range(COPIES)]
    frame = _send("Hi", client_id="retry-1")

    await asyncio.gather(*(tab.send(frame) for tab in tabs))
    acks = [await tab.receive() for tab in tabs]
    assert {ack["type"] for ack in acks} == {"ack"}, acks
    assert len({(ack["chat_id"], ack["assistant_message_id"]) for ack in acks}) == 1
    dones = [(await tab.until_done(acks[0]["assistant_message_id"]))[-1] for tab in tabs]

    # Every copy follows the one reply to its end: none answers `interrupted` because it looked
    # for the reply's stream before the winning copy had opened it.
    assert {done["status"] for done in dones} == {"complete"}, dones
    assert _model_calls(openai_fake) == 1
    assert await database_sync_to_async(Chat.objects.count)() == 1
    assert await database_sync_to_async(Message.objects.count)() == 2
    for tab in tabs:
        await tab.close()
