"""The chat selectors behind the API: the search expressions match their indexes, the cursor is
opaque and strict, the changes feed overlaps, exports of a branched tree."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from chat import queries
from chat.models import Chat, Message, Role
from chat.services.tree import chat_create, message_append, message_edit

pytestmark = pytest.mark.django_db


def _say(chat: Chat, parent: Message | None, text: str, role: str = Role.USER) -> Message:
    return message_append(chat=chat, parent=parent, role=role, content=[{"type": "text", "text": text}], text=text)


def _plan(queryset: QuerySet[Chat] | QuerySet[Message]) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def user() -> User:
    return UserFactory()


@pytest.mark.parametrize(("model", "index"), [(Message, "message_text_search"), (Chat, "chat_title_search")])
def test_the_search_expressions_are_the_ones_their_gin_indexes_serve(model: type[Chat | Message], index: str) -> None:
    query = SearchQuery("aardvark", config="simple", search_type="websearch")
    matching = model.objects.alias(vector=queries._indexed_expression(model, index)).filter(vector=query)
    assert f"Bitmap Index Scan on {index}" in _plan(matching)


def test_search_understands_phrases_and_exclusions(user: User) -> None:
    both = chat_create(owner=user, title="both")
    _say(both, None, "red apples and green pears")
    apples = chat_create(owner=user, title="apples")
    _say(apples, None, "green apples")

    def found(search: str) -> set[str]:
        return {row["title"] for row in queries.chat_list(owner=user, search=search).chats}

    assert found("apples") == {"both", "apples"}
    assert found('"green apples"') == {"apples"}
    assert found("apples -pears") == {"apples"}
    assert found("   ") == {"both", "apples"}


def test_a_cursor_from_elsewhere_is_refused(user: User) -> None:
    for cursor in ("%%%", "bm90IGpzb24", "WyJ0cnVlIiwgIjIwMjUtMDEtMDFUMDA6MDA6MDAiLCAieCJd"):
        with pytest.raises(queries.InvalidCursor):
            queries.chat_list(owner=user, cursor=cursor)


def test_the_last_page_has_no_next_cursor(user: User) -> None:
    for _ in range(3):
        chat_create(owner=user)
    first = queries.chat_list(owner=user, limit=2)
    assert len(first.chats) == 2
    assert first.next_cursor is not None
    last = queries.chat_list(owner=user, limit=2, cursor=first.next_cursor)
    assert len(last.chats) == 1
    assert last.next_cursor is None


def test_changes_repeat_a_few_seconds_before_since_for_writes_that_committed_late(user: User) -> None:
    chat = chat_create(owner=user)
    since = timezone.now() + queries.CHANGES_OVERLAP / 2
    assert [row["id"] for row in queries.chat_changes(owner=user, since=since).chats] == [chat.pk]
    later = timezone.now() + queries.CHANGES_OVERLAP * 2
    assert queries.chat_changes(owner=user, since=later).chats == []
    assert queries.chat_changes(owner=UserFactory(), since=since - timedelta(days=1)).chats == []


def test_json_with_raw_splices_json_text_as_a_member() -> None:
    assert json.loads(queries.json_with_raw({"a": 1}, "tree", '[{"x": null}]')) == {"a": 1, "tree": [{"x": None}]}
    assert json.loads(queries.json_with_raw({}, "tree", "[]")) == {"tree": []}


def test_the_markdown_of_the_whole_tree_numbers_messages_and_names_their_versions(user: User) -> None:
    chat = chat_create(owner=user, title="Plans")
    question = _say(chat, None, "Where to?")
    answer = _say(chat, question, "Lisbon.", Role.ASSISTANT)
    Message.objects.filter(pk=answer.pk).update(model_id="arbor:demo")
    follow_up = _say(chat, answer, "Why?")
    message_edit(message=follow_up, content=[], text="When?")
    chat.refresh_from_db()
    assert queries.chat_export_markdown(chat, branch="all") == (
        "# Plans\n\n"
        "## 1. User\n\nWhere to?\n\n"
        "## 2. Assistant (arbor:demo)\n\nLisbon.\n\n"
        "## 3. User — version 1 of 2\n\nWhy?\n\n"
        "## 4. User — reply to 2, version 2 of 2\n\nWhen?\n"
    )
    assert queries.chat_export_markdown(chat, branch="active") == (
        "# Plans\n\n## User\n\nWhere to?\n\n## Assistant (arbor:demo)\n\nLisbon.\n\n## User\n\nWhen?\n"
    )


def test_an_empty_chat_exports_an_empty_branch(user: User) -> None:
    chat = chat_create(owner=user)
    assert json.loads(queries.chat_export_json(chat, branch="active"))["messages"] == []
    assert queries.chat_export_markdown(chat, branch="all") == "# Untitled chat\n"
