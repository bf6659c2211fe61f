from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Role, Status
from chat.selectors import (
    active_branch,
    active_branch_rows,
    ancestor_rows,
    chat_tree,
    chat_tree_json,
    message_ancestors,
    message_tree_entry,
    message_tree_entry_read,
)
from chat.services.tree import (
    chat_create,
    chat_fork,
    message_append,
    message_delete_subtree,
    message_edit,
    message_regenerate,
    message_switch,
)

pytestmark = pytest.mark.django_db


def _say(chat: Chat, parent: Message | None, text: str, role: str = Role.USER) -> Message:
    return message_append(chat=chat, parent=parent, role=role, content=[{"type": "text", "text": text}], text=text)


def _texts(messages: list[Message]) -> list[str]:
    return [message.text for message in messages]


def _fresh(chat: Chat) -> Chat:
    return Chat.objects.select_related("active_leaf").get(pk=chat.pk)


def _walk_selections(chat: Chat) -> list[str]:
    """The reference: follow selected_root and selected_child pointers one by one."""
    chat = Chat.objects.get(pk=chat.pk)
    by_id = {message.pk: message for message in Message.objects.filter(chat=chat).defer("path")}
    line, current = [], by_id.get(chat.selected_root_id)
    while current is not None:
        line.append(current.text)
        current = by_id.get(current.selected_child_id)
    return line


def _walk_parents(message: Message) -> list[str]:
    by_id = {row.pk: row for row in Message.objects.filter(chat=message.chat).defer("path")}
    line, current = [], by_id[message.pk]
    while current is not None:
        line.append(current.text)
        current = by_id.get(current.parent_id)
    return line[::-1]


@pytest.fixture
def chat() -> Chat:
    return chat_create(owner=UserFactory())


def test_a_linear_chat_stays_in_one_one_label_segment_however_long(chat: Chat) -> None:
    parent = None
    for index in range(300):
        parent = _say(chat, parent, f"m{index}", Role.USER if index % 2 == 0 else Role.ASSISTANT)
    segments = {str(path) for path in Message.objects.filter(chat=chat).values_list("path", flat=True)}
    assert len(segments) == 1 and "." not in str(next(iter(segments)))
    assert _texts(active_branch(_fresh(chat))) == [f"m{index}" for index in range(300)]
    assert _fresh(chat).message_count == 300


def test_an_edit_adds_a_selected_sibling_and_keeps_the_old_branch(chat: Chat) -> None:
    question = _say(chat, None, "hello")
    answer = _say(chat, question, "hi", Role.ASSISTANT)
    _say(chat, answer, "tell me more")
    edited = message_edit(message=question, content=[{"type": "text", "text": "hello!"}], text="hello!")
    assert edited.parent_id is None and edited.rank == 1
    assert _texts(active_branch(_fresh(chat))) == ["hello!"]
    assert Message.objects.filter(chat=chat).count() == 4


def test_regenerate_adds_an_empty_streaming_reply_beside_the_old_one(chat: Chat) -> None:
    question = _say(chat, None, "q")
    first = _say(chat, question, "first answer", Role.ASSISTANT)
    second = message_regenerate(message=first, model_id="openai:gpt-5")
    assert (second.parent_id, second.role, second.status, second.content) == (question.pk, "assistant", "streaming", [])
    assert [message.pk for message in active_branch(_fresh(chat))] == [question.pk, second.pk]


def test_switching_back_follows_that_siblings_own_selections_to_its_leaf(chat: Chat) -> None:
    root = _say(chat, None, "root")
    old = _say(chat, root, "old answer", Role.ASSISTANT)
    deep = old
    for index in range(20):
        deep = _say(chat, deep, f"old {index}")
    message_regenerate(message=old, model_id="x")
    assert _texts(active_branch(_fresh(chat))) == ["root", ""]
    leaf = message_switch(message=Message.objects.get(pk=old.pk))
    assert leaf.pk == deep.pk
    assert _texts(active_branch(_fresh(chat))) == ["root", "old answer", *[f"old {i}" for i in range(20)]]


def test_forty_five_siblings_keep_creation_order_by_rank_and_by_path(chat: Chat) -> None:
    root = _say(chat, None, "root")
    for index in range(45):
        _say(chat, root, f"child {index}", Role.ASSISTANT)
    expected = [f"child {index}" for index in range(45)]
    assert list(Message.objects.filter(parent=root).order_by("rank").values_list("text", flat=True)) == expected
    assert list(Message.objects.filter(parent=root).order_by("path").values_list("text", flat=True)) == expected


def test_a_fork_copies_the_line_to_the_message_into_a_new_chat(chat: Chat) -> None:
    first = _say(chat, None, "a")
    second = _say(chat, first, "b", Role.ASSISTANT)
    _say(chat, second, "c")
    other = UserFactory()
    fork = chat_fork(message=second, owner=other)
    assert fork.owner == other and fork.forked_from_chat_id == chat.pk
    assert _texts(active_branch(_fresh(fork))) == ["a", "b"]
    assert Message.objects.filter(chat=chat).count() == 3
    _say(fork, fork.active_leaf, "d")
    assert _texts(active_branch(_fresh(fork))) == ["a", "b", "d"]


def test_deleting_a_subtree_removes_its_branches_and_reselects_a_sibling(chat: Chat) -> None:
    root = _say(chat, None, "root")
    keep = _say(chat, root, "keep", Role.ASSISTANT)
    doomed = _say(chat, root, "doomed", Role.ASSISTANT)
    below = _say(chat, doomed, "below")
    _say(chat, below, "below-a", Role.ASSISTANT)
    branch = _say(chat, below, "below-b", Role.ASSISTANT)  # another segment under the doomed one
    _say(chat, branch, "deeper")
    assert message_delete_subtree(message=Message.objects.get(pk=doomed.pk)) == 5
    assert set(Message.objects.filter(chat=chat).values_list("text", flat=True)) == {"root", "keep"}
    assert _texts(active_branch(_fresh(chat))) == ["root", "keep"]
    assert _fresh(chat).message_count == 2
    assert keep.pk == Message.objects.get(pk=root.pk).selected_child_id


def test_the_tree_payload_has_no_paths_and_every_selection(chat: Chat) -> None:
    root = _say(chat, None, "root")
    _say(chat, root, "a", Role.ASSISTANT)
    rows = chat_tree(chat)
    assert "path" not in rows[0]
    assert rows[0]["selected_child_id"] == rows[1]["id"]


def test_random_operations_keep_the_active_branch_and_ancestors_equal_to_pointer_walks(chat: Chat) -> None:
    randomness = random.Random(7)
    messages = [_say(chat, None, "m0")]
    for step in range(1, 300):
        action = randomness.random()
        target = Message.objects.get(pk=randomness.choice(messages).pk)
        if action < 0.55:
            messages.append(_say(chat, target, f"m{step}", randomness.choice([Role.USER, Role.ASSISTANT])))
        elif action < 0.7 and target.role == Role.USER:
            messages.append(message_edit(message=target, content=[], text=f"m{step}"))
        elif action < 0.8 and target.role == Role.ASSISTANT:
            regenerated = message_regenerate(message=target, model_id="x")
            Message.objects.filter(pk=regenerated.pk).update(text=f"m{step}")
            messages.append(regenerated)
        elif action < 0.95:
            message_switch(message=target)
        elif target.depth > 1:
            message_delete_subtree(message=target)
            alive = set(Message.objects.filter(chat=chat).values_list("pk", flat=True))
            messages = [message for message in messages if message.pk in alive]
        assert _texts(active_branch(_fresh(chat))) == _walk_selections(chat), step
        probe = Message.objects.get(pk=randomness.choice(messages).pk)
        assert _texts(message_ancestors(probe)) == _walk_parents(probe), step
        # The hot paths' raw rows (one statement of constant text) walk the same lines.
        assert [text for (text,) in ancestor_rows(probe, fields=("text",))] == _walk_parents(probe), step
        assert [text for (text,) in active_branch_rows(_fresh(chat), fields=("text",))] == _walk_selections(chat)


def test_raw_line_rows_refuse_what_is_not_a_column(chat: Chat) -> None:
    root = _say(chat, None, "m0")
    with pytest.raises(ValueError, match="not columns"):
        ancestor_rows(root, fields=("text; DROP TABLE chat_message",))


@pytest.mark.django_db(transaction=True)
def test_concurrent_replies_to_one_message_get_distinct_ranks() -> None:
    chat = chat_create(owner=UserFactory())
    root = _say(chat, None, "root")
    errors: list[Exception] = []

    def reply(index: int) -> None:
        try:
            _say(Chat.objects.get(pk=chat.pk), Message.objects.get(pk=root.pk), f"r{index}", Role.ASSISTANT)
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=reply, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ranks = sorted(Message.objects.filter(parent=root).values_list("rank", flat=True))
    assert ranks == list(range(12))
    assert Message.objects.get(pk=root.pk).child_count == 12
    assert Status.STREAMING not in set(Message.objects.filter(chat=chat).values_list("status", flat=True))


@pytest.mark.parametrize("microseconds", [123456, 120000, 0])
def test_a_message_tree_entry_is_the_tree_payloads_entry_to_the_character(
    chat: Chat, microseconds: int, django_assert_num_queries: Any
) -> None:
    root = _say(chat, None, "root")
    reply = _say(chat, root, "an answer", Role.ASSISTANT)
    at = datetime(2026, 3, 1, 12, 30, 5, microseconds, tzinfo=UTC)
    Message.objects.filter(pk=reply.pk).update(
        created_at=at, usage={"input_tokens": 3, "output_tokens": 2}, status=Status.STOPPED, vote=-1
    )
    [api_root, api_reply] = json.loads(chat_tree_json(chat))
    with django_assert_num_queries(1):
        assert message_tree_entry_read(reply.pk) == api_reply
    assert message_tree_entry(Message.objects.get(pk=root.pk)) == api_root
    assert json.dumps(message_tree_entry(Message.objects.get(pk=reply.pk))) == json.dumps(api_reply)
