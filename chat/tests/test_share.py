"""Sharing through the API and the public share pages: tokens, revocation, only the active
branch shown and escaped, and "continue in my account" for guests and signed-in readers."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Role
from chat.services.tree import chat_create, message_append, message_edit

pytestmark = pytest.mark.django_db


def _say(chat: Chat, parent: Message | None, text: str, role: str = Role.USER) -> Message:
    return message_append(chat=chat, parent=parent, role=role, content=[{"type": "text", "text": text}], text=text)


def _share(client: Client, chat: Chat) -> str:
    response = client.post(f"/api/chats/{chat.pk}/share", "", content_type="application/json")
    assert response.status_code == 200
    return response.json()["share_url"]


@pytest.fixture
def user() -> User:
    return UserFactory()


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def branched(user: User) -> Chat:
    """q → a → (q2 → a2 | q2b → a2b): the edit and its reply are the active branch."""
    chat = chat_create(owner=user, title="Branched")
    answer = _say(chat, _say(chat, None, "first question"), "first answer", Role.ASSISTANT)
    second = _say(chat, answer, "second question")
    _say(chat, second, "second answer", Role.ASSISTANT)
    edited = message_edit(message=second, content=[{"type": "text", "text": "edited"}], text="edited question")
    _say(chat, edited, "edited answer", Role.ASSISTANT)
    return chat


# --- Sharing through the API -----------------------------------------------------------------------
def test_sharing_gives_a_link_of_at_least_128_bits_and_revoking_it_answers_404(
    signed_in: Client, branched: Chat
) -> None:
    share_url = _share(signed_in, branched)
    token = share_url.rsplit("/", 1)[-1]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert _share(signed_in, branched) == share_url
    assert signed_in.get(f"/api/chats/{branched.pk}").json()["share_url"] == share_url
    assert Client().get(f"/share/{token}").status_code == 200

    response = signed_in.delete(f"/api/chats/{branched.pk}/share")
    assert response.status_code == 204
    assert Client().get(f"/share/{token}").status_code == 404
    assert Client().post(f"/share/{token}/fork").status_code == 404
    assert signed_in.get(f"/api/chats/{branched.pk}").json()["share_url"] is None
    assert _share(signed_in, branched) != share_url


def test_a_deleted_chat_takes_its_share_page_with_it(signed_in: Client, user: User) -> None:
    chat = chat_create(owner=user)
    share_url = _share(signed_in, chat)
    assert signed_in.delete(f"/api/chats/{chat.pk}").status_code == 204
    assert Client().get(share_url).status_code == 404


def test_an_unknown_token_answers_404() -> None:
    assert Client().get("/share/not-a-token").status_code == 404


# --- The page ----------------------------------------------------------------------------------------
def test_the_share_page_shows_only_the_active_branch_and_escapes_html(signed_in: Client, user: User) -> None:
    chat = chat_create(owner=user, title="<b>Title</b>")
    question = _say(chat, None, "What is <script>alert(1)</script>?")
    _say(chat, question, "hidden alternative", Role.ASSISTANT)
    _say(chat, question, "shown answer & more", Role.ASSISTANT)

    page = Client().get(_share(signed_in, chat))
    html = page.content.decode()
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<h1>What is &lt;script&gt;alert(1)&lt;/script&gt;?</h1>" in html  # titled from the branch
    assert "Title" not in html  # never the chat's own title (chat.sharing says why)
    assert "shown answer &amp; more" in html
    assert "hidden alternative" not in html
    assert "no-store" in page["Cache-Control"]
    assert page["X-Robots-Tag"] == "noindex, nofollow"


@pytest.fixture
def retitled(user: User) -> Chat:
    """Titled from its first question, which was then edited: the title's branch is not active."""
    chat = chat_create(owner=user, title="Surprise party for Dana")
    first = _say(chat, None, "Plan a surprise party for Dana")
    _say(chat, first, "Here is a plan for Dana's party", Role.ASSISTANT)
    edited = message_edit(message=first, content=[{"type": "text", "text": "x"}], text="How do I make lemonade?")
    _say(chat, edited, "Lemons, sugar, water.", Role.ASSISTANT)
    return chat


def test_the_share_page_is_titled_from_the_shared_branch_not_from_an_unshared_one(
    signed_in: Client, retitled: Chat
) -> None:
    html = Client().get(_share(signed_in, retitled)).content.decode()
    assert "<h1>How do I make lemonade?</h1>" in html
    assert "<title>How do I make lemonade? · Arbor</title>" in html
    assert "Dana" not in html and "Surprise" not in html


def test_an_empty_shared_chat_is_called_shared_chat(signed_in: Client, user: User) -> None:
    html = Client().get(_share(signed_in, chat_create(owner=user, title="Secret plans"))).content.decode()
    assert "<h1>Shared chat</h1>" in html
    assert "Secret" not in html


# --- Continue in my account -----------------------------------------------------------------------
def test_a_guest_viewer_continues_a_shared_chat_in_a_new_guest_account(signed_in: Client, branched: Chat) -> None:
    share_url = _share(signed_in, branched)
    viewer = Client(enforce_csrf_checks=True)
    page = viewer.get(share_url)
    assert f'action="{share_url.removeprefix("http://testserver")}/fork"' in page.content.decode()
    response = viewer.post(f"{share_url}/fork", {"csrfmiddlewaretoken": page.cookies["csrftoken"].value})
    assert response.status_code == 302

    guest = User.objects.get(is_guest=True)
    fork = Chat.objects.get(owner=guest)
    assert response["Location"] == f"/?chat={fork.pk}"
    texts = Message.objects.filter(chat=fork).order_by("depth").values_list("text", flat=True)
    assert list(texts) == ["first question", "first answer", "edited question", "edited answer"]
    assert [row["id"] for row in viewer.get("/api/chats").json()["chats"]] == [str(fork.pk)]


def test_a_signed_in_viewer_continues_a_shared_chat_in_their_own_account(signed_in: Client, branched: Chat) -> None:
    share_url = _share(signed_in, branched)
    reader = UserFactory()
    viewer = Client()
    viewer.force_login(reader)
    assert viewer.post(f"{share_url}/fork").status_code == 302
    assert Chat.objects.get(owner=reader).forked_from_chat_id == branched.pk
    assert not User.objects.filter(is_guest=True).exists()


def test_too_many_new_guests_from_one_address_answer_429(signed_in: Client, branched: Chat, settings: Any) -> None:
    settings.GUEST_CREATE_BURST = 1
    share_url = _share(signed_in, branched)
    assert Client().post(f"{share_url}/fork").status_code == 302
    refused = Client().post(f"{share_url}/fork")
    assert refused.status_code == 429
    assert User.objects.filter(is_guest=True).count() == 1


def test_a_readers_copy_is_titled_from_the_shared_branch_not_from_an_unshared_one(
    signed_in: Client, retitled: Chat
) -> None:
    reader = UserFactory()
    viewer = Client()
    viewer.force_login(reader)
    assert viewer.post(f"{_share(signed_in, retitled)}/fork").status_code == 302
    copy = Chat.objects.get(owner=reader)
    assert copy.title == "How do I make lemonade?"
    assert "Dana" not in viewer.get("/api/chats").content.decode()


def test_a_readers_copy_leaves_the_owners_instructions_behind(signed_in: Client, retitled: Chat) -> None:
    Chat.objects.filter(pk=retitled.pk).update(instructions="Always mention my secret project Nightjar.")
    reader = UserFactory()
    viewer = Client()
    viewer.force_login(reader)
    assert viewer.post(f"{_share(signed_in, retitled)}/fork").status_code == 302
    assert Chat.objects.get(owner=reader).instructions == ""
