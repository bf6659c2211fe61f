"""The chat JSON API and the share pages through Django's test client: listing (order, cursor,
search, archived), the detail with its whole tree, writes, sharing, forking, votes, export, the
changes feed, /api/models, and who may see what (another user's ids 404, anonymous 401)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import GuestFactory, UserFactory
from chat.models import Chat, Message, Role
from chat.services.tree import chat_create, message_append, message_edit

pytestmark = pytest.mark.django_db


def _say(chat: Chat, parent: Message | None, text: str, role: str = Role.USER) -> Message:
    return message_append(chat=chat, parent=parent, role=role, content=[{"type": "text", "text": text}], text=text)


def _call(client: Client, method: str, url: str, body: Any = None) -> Any:
    data = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return client.generic(method, url, data, content_type="application/json")


def _ids(response: Any) -> list[str]:
    return [row["id"] for row in response.json()["chats"]]


@pytest.fixture
def user() -> User:
    return UserFactory()


@pytest.fixture
def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def branched(user: User) -> dict[str, Any]:
    """u1 → a1 → (u2 → a2 | u2b → a2b): the edit u2b and its reply are the active branch."""
    chat = chat_create(owner=user, title="Branched")
    u1 = _say(chat, None, "first question")
    a1 = _say(chat, u1, "first answer", Role.ASSISTANT)
    u2 = _say(chat, a1, "second question")
    a2 = _say(chat, u2, "second answer", Role.ASSISTANT)
    u2b = message_edit(message=u2, content=[{"type": "text", "text": "edited question"}], text="edited question")
    a2b = _say(chat, u2b, "edited answer", Role.ASSISTANT)
    return {"chat": chat, "u1": u1, "a1": a1, "u2": u2, "a2": a2, "u2b": u2b, "a2b": a2b}


def _active_at(chat: Chat, minutes_ago: float, *, pinned: bool = False) -> Chat:
    Chat.objects.filter(pk=chat.pk).update(
        last_activity_at=timezone.now() - timedelta(minutes=minutes_ago), pinned=pinned
    )
    return chat


# --- /api/models ---------------------------------------------------------------------------------
def test_models_lists_what_the_user_may_pick_and_a_chat_may_default_to_one(
    signed_in: Client, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from providers.catalog import catalog_seed

    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    catalog_seed()
    body = signed_in.get("/api/models").json()
    assert body["default"] == "arbor:demo"
    assert body["models"] == [
        {
            "id": "arbor:demo",
            "name": body["models"][0]["name"],
            "supports_tools": True,
            "supports_reasoning": body["models"][0]["supports_reasoning"],
            "input_modalities": body["models"][0]["input_modalities"],
            "byok": False,
        }
    ]
    chat = chat_create(owner=user)
    assert _call(signed_in, "PATCH", f"/api/chats/{chat.pk}", {"default_model": "arbor:demo"}).status_code == 200
    assert Chat.objects.get(pk=chat.pk).default_model == "arbor:demo"

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # a real provider: its models, and the tier's default
    body = signed_in.get("/api/models").json()
    assert "openai:gpt-5-mini" in {model["id"] for model in body["models"]}
    assert "arbor:demo" not in {model["id"] for model in body["models"]}
    assert body["default"] == "openai:gpt-5-mini"


# --- The list ---------------------------------------------------------------------------------
def test_the_list_puts_pinned_chats_first_then_the_most_recently_active(signed_in: Client, user: User) -> None:
    old = _active_at(chat_create(owner=user, title="old"), 30)
    recent = _active_at(chat_create(owner=user, title="recent"), 1)
    pinned_old = _active_at(chat_create(owner=user, title="pinned"), 60, pinned=True)
    chat_create(owner=UserFactory(), title="someone else's")
    assert _ids(signed_in.get("/api/chats")) == [str(pinned_old.pk), str(recent.pk), str(old.pk)]


def test_pages_follow_the_cursor_without_duplicates_or_gaps(signed_in: Client, user: User) -> None:
    same_moment = timezone.now() - timedelta(minutes=5)
    chats = [chat_create(owner=user, title=f"chat {n}") for n in range(9)]
    for index, chat in enumerate(chats):
        Chat.objects.filter(pk=chat.pk).update(
            last_activity_at=same_moment if index % 3 == 0 else same_moment - timedelta(minutes=index),
            pinned=index in (4, 7),
        )
    rows = Chat.objects.filter(owner=user).values_list("pinned", "last_activity_at", "id")
    expected = [str(row[2]) for row in sorted(rows, reverse=True)]

    seen: list[str] = []
    url = "/api/chats?limit=2"
    while True:
        body = signed_in.get(url).json()
        seen += [row["id"] for row in body["chats"]]
        if body["next_cursor"] is None:
            break
        url = f"/api/chats?limit=2&cursor={body['next_cursor']}"
    assert seen == expected


@pytest.mark.parametrize(
    "query", ["cursor=not-a-cursor", "cursor=WzEsMl0", "limit=0", "limit=101", "limit=²", "archived=maybe"]
)
def test_a_bad_cursor_limit_or_filter_answers_400(signed_in: Client, query: str) -> None:
    assert signed_in.get(f"/api/chats?{query}").status_code == 400


def test_search_finds_a_word_in_a_message_and_in_a_title(signed_in: Client, user: User) -> None:
    titled = chat_create(owner=user, title="Travel plans for Lisbon")
    talked = chat_create(owner=user, title="Animals")
    _say(talked, None, "Tell me about the aardvark, please.")
    chat_create(owner=user, title="Unrelated")
    other = chat_create(owner=UserFactory(), title="Aardvark travel")
    _say(other, None, "aardvark")

    assert _ids(signed_in.get("/api/chats?q=AARDVARK")) == [str(talked.pk)]
    assert _ids(signed_in.get("/api/chats?q=travel")) == [str(titled.pk)]
    assert _ids(signed_in.get("/api/chats?q=giraffe")) == []


def test_archived_chats_are_listed_only_when_asked(signed_in: Client, user: User) -> None:
    kept = chat_create(owner=user, title="kept")
    archived = _active_at(chat_create(owner=user, title="archived"), 10)
    Chat.objects.filter(pk=archived.pk).update(archived=True)
    assert _ids(signed_in.get("/api/chats")) == [str(kept.pk)]
    assert _ids(signed_in.get("/api/chats?archived=true")) == [str(archived.pk)]
    assert _ids(signed_in.get("/api/chats?archived=all")) == [str(kept.pk), str(archived.pk)]


# --- One chat -----------------------------------------------------------------------------------
def test_the_detail_is_valid_json_with_the_whole_tree_and_its_selections(
    signed_in: Client, branched: dict[str, Any]
) -> None:
    chat = branched["chat"]
    response = signed_in.get(f"/api/chats/{chat.pk}")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    body = json.loads(response.content)
    assert body["id"] == str(chat.pk)
    assert body["title"] == "Branched"
    assert body["share_url"] is None
    assert body["selected_root_id"] == str(branched["u1"].pk)
    assert body["active_leaf_id"] == str(branched["a2b"].pk)
    by_id = {message["id"]: message for message in body["messages"]}
    assert len(by_id) == 6
    a1 = by_id[str(branched["a1"].pk)]
    assert a1["selected_child_id"] == str(branched["u2b"].pk)
    assert by_id[str(branched["u2"].pk)]["parent_id"] == str(branched["a1"].pk)
    assert by_id[str(branched["a2"].pk)]["content"] == [{"type": "text", "text": "second answer"}]
    assert {message["role"] for message in body["messages"]} == {"user", "assistant"}
    assert all("status" in message for message in body["messages"])


def test_patch_renames_pins_archives_and_sets_the_preset(signed_in: Client, user: User) -> None:
    chat = chat_create(owner=user, title="old")
    response = _call(
        signed_in,
        "PATCH",
        f"/api/chats/{chat.pk}",
        {"title": "  New name ", "pinned": True, "archived": True, "instructions": "Be brief."},
    )
    assert response.status_code == 200
    assert response.json()["title"] == "New name"
    chat.refresh_from_db()
    assert (chat.title, chat.pinned, chat.archived, chat.instructions) == ("New name", True, True, "Be brief.")


@pytest.mark.parametrize(
    "body",
    [
        {"title": 5},
        {"title": "x" * 201},
        {"pinned": "yes"},
        {"archived": 1},
        {"default_model": "nobody:such-model"},
        {"colour": "red"},
        "[1, 2]",
        "{not json",
    ],
)
def test_patch_refuses_bad_input_with_400(signed_in: Client, user: User, body: Any) -> None:
    chat = chat_create(owner=user, title="unchanged")
    response = _call(signed_in, "PATCH", f"/api/chats/{chat.pk}", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid", "invalid_json"}
    chat.refresh_from_db()
    assert (chat.title, chat.pinned, chat.archived) == ("unchanged", False, False)


def test_delete_hides_the_chat_and_leaves_a_tombstone_in_changes(signed_in: Client, user: User) -> None:
    chat = chat_create(owner=user, title="doomed")
    since = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert _call(signed_in, "DELETE", f"/api/chats/{chat.pk}").status_code == 204
    assert signed_in.get(f"/api/chats/{chat.pk}").status_code == 404
    assert _ids(signed_in.get("/api/chats?archived=all")) == []
    changes = signed_in.get("/api/chats/changes", {"since": since}).json()
    assert changes["deleted"] == [str(chat.pk)]
    assert changes["chats"] == []


def test_changes_since_report_chats_changed_after_it_and_a_now_to_resume_from(signed_in: Client, user: User) -> None:
    earlier = timezone.now() - timedelta(hours=1)
    unchanged = chat_create(owner=user, title="unchanged")
    renamed = chat_create(owner=user, title="before")
    Chat.objects.filter(pk__in=[unchanged.pk, renamed.pk]).update(updated_at=earlier)
    since = (earlier + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    _call(signed_in, "PATCH", f"/api/chats/{renamed.pk}", {"title": "after"})
    body = signed_in.get("/api/chats/changes", {"since": since}).json()
    assert [(row["id"], row["title"]) for row in body["chats"]] == [(str(renamed.pk), "after")]
    assert body["deleted"] == []
    assert body["now"].endswith("Z")
    assert signed_in.get("/api/chats/changes", {"since": "yesterday"}).status_code == 400
    assert signed_in.get("/api/chats/changes", {"since": "2025-01-01T00:00:00"}).status_code == 400


# --- Forking ---------------------------------------------------------------------------------------
def test_forking_copies_the_active_branch_or_the_line_to_a_given_message(
    signed_in: Client, user: User, branched: dict[str, Any]
) -> None:
    chat = branched["chat"]
    response = _call(signed_in, "POST", f"/api/chats/{chat.pk}/fork")
    assert response.status_code == 201
    fork = Chat.objects.get(pk=response.json()["id"], owner=user)
    assert list(Message.objects.filter(chat=fork).order_by("depth").values_list("text", flat=True)) == [
        "first question",
        "first answer",
        "edited question",
        "edited answer",
    ]

    response = _call(signed_in, "POST", f"/api/chats/{chat.pk}/fork", {"message_id": str(branched["a2"].pk)})
    texts = Message.objects.filter(chat_id=response.json()["id"]).order_by("depth").values_list("text", flat=True)
    assert list(texts) == ["first question", "first answer", "second question", "second answer"]

    assert _call(signed_in, "POST", f"/api/chats/{chat.pk}/fork", {"message_id": "nope"}).status_code == 400
    elsewhere = _say(chat_create(owner=user), None, "another chat of mine")
    assert _call(signed_in, "POST", f"/api/chats/{chat.pk}/fork", {"message_id": str(elsewhere.pk)}).status_code == 404


# --- Votes and export ---------------------------------------------------------------------------
def test_votes_count_only_on_assistant_messages(signed_in: Client, branched: dict[str, Any]) -> None:
    answer, question = branched["a1"], branched["u1"]
    response = _call(signed_in, "POST", f"/api/messages/{answer.pk}/vote", {"value": -1})
    assert response.json() == {"id": str(answer.pk), "vote": -1}
    assert Message.objects.get(pk=answer.pk).vote == -1
    assert _call(signed_in, "POST", f"/api/messages/{question.pk}/vote", {"value": 1}).status_code == 400
    for bad in (2, True, 1.0, "1", None):
        assert _call(signed_in, "POST", f"/api/messages/{answer.pk}/vote", {"value": bad}).status_code == 400
    assert Message.objects.get(pk=question.pk).vote == 0


def test_export_gives_json_or_markdown_of_the_active_branch_or_the_whole_tree(
    signed_in: Client, branched: dict[str, Any]
) -> None:
    chat = branched["chat"]
    response = signed_in.get(f"/api/chats/{chat.pk}/export")
    assert response["Content-Disposition"].startswith('attachment; filename="branched-')
    body = json.loads(response.content)
    assert body["branch"] == "active"
    assert [message["id"] for message in body["messages"]] == [
        str(branched[name].pk) for name in ("u1", "a1", "u2b", "a2b")
    ]
    whole = signed_in.get(f"/api/chats/{chat.pk}/export", {"branch": "all"}).json()
    assert len(whole["messages"]) == 6

    markdown = signed_in.get(f"/api/chats/{chat.pk}/export", {"format": "markdown"})
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    assert markdown["Content-Disposition"].endswith('.md"')
    text = markdown.content.decode()
    assert text.startswith("# Branched\n")
    assert "edited answer" in text
    assert "second answer" not in text
    assert "second answer" in signed_in.get(f"/api/chats/{chat.pk}/export?format=markdown&branch=all").content.decode()
    assert signed_in.get(f"/api/chats/{chat.pk}/export", {"format": "pdf"}).status_code == 400


# --- Who may see what ----------------------------------------------------------------------------
ENDPOINTS = [
    ("GET", "/api/chats/{chat}", None),
    ("PATCH", "/api/chats/{chat}", {"title": "mine now"}),
    ("DELETE", "/api/chats/{chat}", None),
    ("POST", "/api/chats/{chat}/fork", None),
    ("POST", "/api/chats/{chat}/fork", {"message_id": "{message}"}),
    ("POST", "/api/chats/{chat}/share", None),
    ("DELETE", "/api/chats/{chat}/share", None),
    ("GET", "/api/chats/{chat}/export", None),
    ("GET", "/api/chats/{chat}/export?format=markdown", None),
    ("POST", "/api/messages/{message}/vote", {"value": 1}),
]


def _request(client: Client, endpoint: tuple[str, str, Any], chat: Chat, message: Message) -> Any:
    method, url, body = endpoint
    if body is not None:
        body = json.loads(json.dumps(body).replace("{message}", str(message.pk)))
    return _call(client, method, url.format(chat=chat.pk, message=message.pk), body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: f"{endpoint[0]} {endpoint[1]}")
def test_another_users_chat_and_message_ids_answer_404_and_change_nothing(
    signed_in: Client, endpoint: tuple[str, str, Any]
) -> None:
    theirs = chat_create(owner=UserFactory(), title="theirs")
    message = _say(theirs, _say(theirs, None, "question"), "answer", Role.ASSISTANT)
    response = _request(signed_in, endpoint, theirs, message)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert (theirs.title, theirs.deleted_at, theirs.share_token) == ("theirs", None, None)
    assert Message.objects.get(pk=message.pk).vote == 0
    assert Chat.objects.count() == 1


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: f"{endpoint[0]} {endpoint[1]}")
def test_a_deleted_chat_answers_404_on_every_endpoint(
    signed_in: Client, user: User, endpoint: tuple[str, str, Any]
) -> None:
    chat = chat_create(owner=user)
    message = _say(chat, _say(chat, None, "question"), "answer", Role.ASSISTANT)
    Chat.objects.filter(pk=chat.pk).update(deleted_at=timezone.now())
    assert _request(signed_in, endpoint, chat, message).status_code == 404


@pytest.mark.parametrize(
    "endpoint",
    [*ENDPOINTS, ("GET", "/api/models", None), ("GET", "/api/chats", None), ("GET", "/api/chats/changes", None)],
    ids=lambda endpoint: f"{endpoint[0]} {endpoint[1]}",
)
def test_anonymous_requests_answer_401(user: User, endpoint: tuple[str, str, Any]) -> None:
    chat = chat_create(owner=user)
    message = _say(chat, _say(chat, None, "question"), "answer", Role.ASSISTANT)
    response = _request(Client(), endpoint, chat, message)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_guests_may_list_rename_share_and_vote_on_their_own_chats(client: Client) -> None:
    guest = GuestFactory()
    client.force_login(guest)
    chat = chat_create(owner=guest)
    answer = _say(chat, _say(chat, None, "hi"), "hello", Role.ASSISTANT)
    assert _ids(client.get("/api/chats")) == [str(chat.pk)]
    assert _call(client, "PATCH", f"/api/chats/{chat.pk}", {"title": "guest chat"}).status_code == 200
    assert _call(client, "POST", f"/api/chats/{chat.pk}/share").status_code == 200
    assert _call(client, "POST", f"/api/messages/{answer.pk}/vote", {"value": 1}).status_code == 200


def test_writes_need_the_csrf_token_and_other_methods_answer_405(user: User) -> None:
    chat = chat_create(owner=user, title="safe")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert _call(strict, "PATCH", f"/api/chats/{chat.pk}", {"title": "forged"}).status_code == 403
    response = _call(strict, "GET", f"/api/chats/{chat.pk}/share")
    assert response.status_code == 405
    assert response["Allow"] == "POST, DELETE"
