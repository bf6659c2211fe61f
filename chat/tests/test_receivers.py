"""What chat does for the apps below it: a disabled user's sockets close at once and their
replies stop (usage sends `user_disabled`; chat/receivers.py answers), through the real ASGI app,
channel layer and runner; and the operators' dashboard counts the replies being written."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.consumers import CLOSE_DISABLED, CLOSE_UNAUTHENTICATED
from chat.generation import generation_start, generation_stop
from chat.models import Message, Role, Status
from chat.services.tree import chat_create, message_append
from chat.services.turns import turn_send
from chat.streambuffer import stream_buffer
from config.asgi import application
from providers.catalog import catalog_seed
from providers.testing.base import Say, reply
from providers.testing.openai_server import OpenAIServer
from usage.dashboard import generations_running
from usage.models import AuditEntry
from usage.services.operators import user_disable


def _socket(cookie: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://localhost:8000"),
        (b"host", b"localhost:8000"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


@database_sync_to_async
def _signed_in() -> tuple[User, User, str]:
    user, admin = UserFactory(), User.objects.create_superuser("root@example.com", "a-long-passphrase-42")
    client = Client()
    client.force_login(user)
    return user, admin, client.cookies["sessionid"].value


@pytest.mark.django_db(transaction=True)
async def test_disabling_a_user_closes_every_open_socket_of_theirs_at_once() -> None:
    user, admin, cookie = await _signed_in()
    tabs = [_socket(cookie), _socket(cookie)]
    for tab in tabs:
        connected, _ = await tab.connect()
        assert connected
    await tabs[0].send_json_to({"type": "ping", "req": 1})
    assert (await tabs[0].receive_json_from())["type"] == "pong"

    await database_sync_to_async(user_disable)(user=user, actor=admin)

    for tab in tabs:
        closed = await tab.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_DISABLED}
    entry = await database_sync_to_async(AuditEntry.objects.get)(action="user.disable")
    assert (entry.subject_user_id, entry.actor_label) == (user.pk, "root@example.com")


@pytest.mark.django_db(transaction=True)
async def test_a_disabled_users_new_socket_is_refused() -> None:
    user, admin, cookie = await _signed_in()
    await database_sync_to_async(user_disable)(user=user, actor=admin)
    tab = _socket(cookie)

    await tab.connect()

    closed = await tab.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"
    assert closed["code"] in {CLOSE_UNAUTHENTICATED, CLOSE_DISABLED}  # Django no longer signs them in


@database_sync_to_async
def _turn(owner: User, text: str) -> str:
    catalog_seed()
    started = turn_send(user=owner, chat_id=None, parent_id=None, content=text, model_id="openai:gpt-5-mini")
    return str(started.assistant_message.pk)


@pytest.mark.django_db(transaction=True)
async def test_disabling_a_user_stops_their_running_replies_and_no_one_elses(openai_fake: OpenAIServer) -> None:
    slow = reply(*[Say(f"word{index} ") for index in range(300)], delay=0.02)
    openai_fake.script(slow, slow)  # one each
    user, other = await database_sync_to_async(UserFactory)(), await database_sync_to_async(UserFactory)()
    theirs, others = await _turn(user, "Go on"), await _turn(other, "Go on too")
    tasks = [await generation_start(theirs), await generation_start(others)]
    for reply_id in (theirs, others):
        assert (await anext(stream_buffer().follow(reply_id, 0)))["type"] == "delta"

    await database_sync_to_async(user_disable)(user=user, actor=None)

    await asyncio.wait_for(tasks[0], timeout=10)
    stopped = await database_sync_to_async(Message.objects.get)(pk=theirs)
    assert stopped.status == Status.STOPPED and stopped.text.startswith("word0 ")
    assert not tasks[1].done()
    await generation_stop(others)
    await asyncio.wait_for(tasks[1], timeout=10)


@pytest.mark.django_db
def test_the_dashboard_counts_the_replies_being_written() -> None:
    chat = chat_create(owner=UserFactory())
    question = message_append(chat=chat, parent=None, role=Role.USER, content=[], text="a question")
    for status in (Status.STREAMING, Status.STREAMING, Status.COMPLETE):
        message_append(chat=chat, parent=question, role=Role.ASSISTANT, content=[], text="", status=status)

    assert generations_running() == 2
