"""A socket lives no longer than the session it was opened on: sign-out, a password change and a
flush close it with 4401 at once, and a turn on a socket whose session is gone is refused before
any model is called — through the real ASGI application, channel layer and session store."""

from __future__ import annotations

from importlib import import_module

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.models import User
from accounts.services import guest_data_transfer
from accounts.tests.factories import GuestFactory, UserFactory
from chat.consumers import CLOSE_UNAUTHENTICATED
from chat.models import Chat, Message
from chat.services.turns import turn_send
from chat.tests.test_consumers import Tab, _model_calls, _send
from providers.catalog import catalog_seed
from providers.testing.base import Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

CLOSED = {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}


@database_sync_to_async
def _signed_in(user: User | None = None) -> tuple[User, Client]:
    """A user (a new one unless given) and a browser signed in as them: a session of its own."""
    user = user or UserFactory()
    catalog_seed()
    client = Client()
    client.force_login(user)
    return user, client


async def _open(client: Client) -> Tab:
    return await Tab(client.cookies["sessionid"].value).open()


async def _alive(tab: Tab) -> bool:
    return await tab.answer({"type": "ping", "req": "alive?"}) == {"type": "pong", "req": "alive?"}


async def test_signing_out_closes_every_socket_of_that_session_and_no_other() -> None:
    user, browser = await _signed_in()
    _, other_browser = await _signed_in(user)
    tabs = [await _open(browser), await _open(browser)]
    elsewhere = await _open(other_browser)

    response = await database_sync_to_async(browser.post)("/accounts/signout/")
    assert response.status_code == 302

    for tab in tabs:
        assert await tab.communicator.receive_output(timeout=5) == CLOSED
        await tab.close()
    assert await _alive(elsewhere)
    await elsewhere.close()


async def test_a_flushed_session_closes_its_sockets() -> None:
    _, browser = await _signed_in()
    tab = await _open(browser)
    store = import_module(settings.SESSION_ENGINE).SessionStore(browser.cookies["sessionid"].value)

    await database_sync_to_async(store.flush)()

    assert await tab.communicator.receive_output(timeout=5) == CLOSED
    await tab.close()


async def test_a_password_change_closes_every_socket_of_the_user() -> None:
    user, browser = await _signed_in()
    _, other_browser = await _signed_in(user)
    tabs = [await _open(browser), await _open(other_browser)]

    def change() -> None:
        user.set_password("a-new-long-passphrase-7")
        user.save()

    await database_sync_to_async(change)()

    for tab in tabs:
        assert await tab.communicator.receive_output(timeout=5) == CLOSED
        await tab.close()


async def test_saving_a_user_without_a_new_password_closes_nothing() -> None:
    user, browser = await _signed_in()
    tab = await _open(browser)

    user.display_name = "Renamed"
    await database_sync_to_async(user.save)()

    assert await _alive(tab)
    await tab.close()


async def test_a_turn_on_a_socket_whose_session_is_gone_is_refused_and_calls_no_model(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("Never said.")))
    _, browser = await _signed_in()
    tab = await _open(browser)

    # The row goes without a signal (no close is sent): the turn's own check must refuse it.
    def delete_silently() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM django_session")

    await database_sync_to_async(delete_silently)()
    await tab.send(_send("Bill me", client_id="late-1"))

    assert await tab.communicator.receive_output(timeout=5) == CLOSED
    assert _model_calls(openai_fake) == 0
    assert await database_sync_to_async(Message.objects.count)() == 0
    await tab.close()


async def test_a_turn_on_a_socket_whose_session_expired_is_refused_and_calls_no_model(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("Never said.")))
    _, browser = await _signed_in()
    tab = await _open(browser)

    def expire() -> None:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE django_session SET expire_date = now() - interval '1 second'")

    await database_sync_to_async(expire)()
    await tab.send(_send("Bill me", client_id="late-2"))

    assert await tab.communicator.receive_output(timeout=5) == CLOSED
    assert _model_calls(openai_fake) == 0
    await tab.close()


async def test_frames_after_sign_out_are_not_answered(openai_fake: OpenAIServer) -> None:
    _, browser = await _signed_in()
    tab = await _open(browser)
    await database_sync_to_async(browser.post)("/accounts/signout/")
    assert await tab.communicator.receive_output(timeout=5) == CLOSED

    await tab.send(_send("Bill me"))

    assert await tab.communicator.receive_nothing(timeout=0.3)
    assert _model_calls(openai_fake) == 0
    await tab.close()


@pytest.mark.django_db(transaction=True)
def test_a_guest_signing_in_keeps_both_chats_started_with_the_same_client_id() -> None:
    guest, account = GuestFactory(), UserFactory()
    catalog_seed()
    for user in (guest, account):
        turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=None, client_id="tab-1")

    guest_data_transfer(guest=guest, target=account)

    assert Chat.objects.filter(owner=account).count() == 2
