from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from celery.result import AsyncResult
from channels.layers import get_channel_layer

from accounts.models import User
from accounts.tests.factories import GuestFactory, UserFactory
from chat.models import Chat, Message, Role
from chat.services import titles
from chat.services.titles import (
    FALLBACK_TITLE,
    chat_title_generate,
    heuristic_title,
    sanitize_title,
    title_model_for,
    user_group,
)
from chat.services.tree import chat_create, message_append, message_edit
from chat.tasks import title_chat, title_chat_after_commit
from config.celery import app
from providers.catalog import catalog_seed
from providers.models import Model
from providers.testing.base import Fail, Say, reply
from providers.testing.openai_server import OpenAIServer

QUESTION = "How do I cook rice without a rice cooker? I only have a pot and a lid."
ANSWER = "Rinse the rice, then simmer one part rice in two parts water, covered, for 18 minutes."
OTHER_KEYS = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "XAI_API_KEY", "OPENROUTER_API_KEY", "OLLAMA_BASE_URL")


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (*OTHER_KEYS, "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def openai_fake(monkeypatch: pytest.MonkeyPatch, no_provider_keys: None) -> Iterator[OpenAIServer]:
    """The seeded catalog with only OpenAI set up, pointed at the fake server."""
    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-platform-key")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        catalog_seed()
        yield server  # type: ignore[misc]


def _chat_with_first_exchange(owner: User, question: str = QUESTION, answer: str | None = ANSWER) -> Chat:
    chat = chat_create(owner=owner)
    asked = message_append(
        chat=chat, parent=None, role=Role.USER, content=[{"type": "text", "text": question}], text=question
    )
    if answer is not None:
        message_append(
            chat=chat, parent=asked, role=Role.ASSISTANT, content=[{"type": "text", "text": answer}], text=answer
        )
    return Chat.objects.get(pk=chat.pk)


def _title_of(chat: Chat) -> str:
    return Chat.objects.get(pk=chat.pk).title


# --- With a model ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_cheapest_model_the_owners_tier_may_use_titles_the_chat(openai_fake: OpenAIServer) -> None:
    # GPT-4.1 made the cheapest of all, but only registered users may use it.
    Model.objects.filter(model_id="openai:gpt-4.1").update(input_price_per_mtok=Decimal("0.01"))
    Model.objects.filter(model_id="openai:gpt-4.1").update(output_price_per_mtok=Decimal("0.01"))
    guest_chat = _chat_with_first_exchange(GuestFactory())
    openai_fake.script(reply(Say('**"Cooking rice in a pot."**')))

    assert chat_title_generate(chat_id=guest_chat.pk) == "Cooking rice in a pot"

    body = openai_fake.requests[-1].body
    assert body["model"] == "gpt-4.1-mini"  # the guest tier's cheapest
    assert body["max_tokens"] == 24
    assert body["temperature"] == 0.2
    assert "title" in body["messages"][0]["content"].lower()  # the system prompt
    assert QUESTION in body["messages"][-1]["content"]
    assert ANSWER in body["messages"][-1]["content"]
    assert _title_of(guest_chat) == "Cooking rice in a pot"

    registered_chat = _chat_with_first_exchange(UserFactory())
    openai_fake.script(reply(Say("Rice on the stove")))
    assert chat_title_generate(chat_id=registered_chat.pk) == "Rice on the stove"
    assert openai_fake.requests[-1].body["model"] == "gpt-4.1"


@pytest.mark.django_db
def test_models_that_answer_without_reasoning_are_preferred_and_the_demo_is_never_chosen(
    openai_fake: OpenAIServer,
) -> None:
    guest = GuestFactory()
    # GPT-5 mini (reasoning) made cheaper than GPT-4.1 mini: a 24-token budget would go to thinking.
    Model.objects.filter(model_id="openai:gpt-5-mini").update(input_price_per_mtok=0, output_price_per_mtok=0)
    assert title_model_for(guest) == "openai:gpt-4.1-mini"
    Model.objects.filter(model_id="openai:gpt-4.1-mini").update(enabled=False)
    assert title_model_for(guest) == "openai:gpt-5-mini"
    Model.objects.exclude(model_id="arbor:demo").update(enabled=False)
    assert title_model_for(guest) is None  # only the demo is left: the heuristic titles instead


@pytest.mark.django_db
def test_a_long_multi_line_answer_is_cut_to_one_line_of_at_most_80_characters(openai_fake: OpenAIServer) -> None:
    chat = _chat_with_first_exchange(GuestFactory())
    openai_fake.script(reply(Say("Title: " + "word " * 40 + "\nSecond line")))
    title = chat_title_generate(chat_id=chat.pk)
    assert len(title) <= 80
    assert title.startswith("word word")
    assert "\n" not in title
    assert not title.endswith(" ")


# --- Without one ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_failing_provider_leaves_the_heuristic_title(openai_fake: OpenAIServer) -> None:
    chat = _chat_with_first_exchange(GuestFactory())
    openai_fake.script(Fail(500), Fail(500), Fail(500))
    assert chat_title_generate(chat_id=chat.pk) == "How do I cook rice without a rice cooker?"
    assert len(openai_fake.requests) == 3  # the retries were tried first
    assert _title_of(chat) == "How do I cook rice without a rice cooker?"


@pytest.mark.django_db
def test_an_empty_answer_leaves_the_heuristic_title(openai_fake: OpenAIServer) -> None:
    chat = _chat_with_first_exchange(GuestFactory(), question="Plan a weekend in Lisbon", answer=None)
    openai_fake.script(reply(Say(' "" ')))
    assert chat_title_generate(chat_id=chat.pk) == "Plan a weekend in Lisbon"


@pytest.mark.django_db
def test_with_no_model_set_up_the_heuristic_titles_the_chat(no_provider_keys: None) -> None:
    chat = _chat_with_first_exchange(UserFactory(), question="# Summarise this\n\nlong text", answer=None)
    assert chat_title_generate(chat_id=chat.pk) == "Summarise this"


@pytest.mark.django_db
def test_the_title_follows_the_active_branch_when_the_first_message_was_edited(no_provider_keys: None) -> None:
    chat = _chat_with_first_exchange(UserFactory(), question="First wording")
    root = Message.objects.get(chat=chat, parent=None)
    message_edit(message=root, content=[{"type": "text", "text": "Better wording"}], text="Better wording")
    assert chat_title_generate(chat_id=chat.pk) == "Better wording"


@pytest.mark.django_db
def test_a_chat_without_messages_is_left_untitled(no_provider_keys: None) -> None:
    chat = chat_create(owner=UserFactory())
    assert chat_title_generate(chat_id=chat.pk) == ""
    assert _title_of(chat) == ""


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Trip to Lisbon"', "Trip to Lisbon"),
        ("“Trip to Lisbon.”", "Trip to Lisbon"),
        ("## **Trip to Lisbon**", "Trip to Lisbon"),
        ("Title: `Trip` to Lisbon!", "Trip to Lisbon"),
        ("\n\n  Trip   to\tLisbon  \nmore", "Trip to Lisbon"),
        ("", ""),
    ],
)
def test_sanitising_leaves_one_plain_line(answer: str, title: str) -> None:
    assert sanitize_title(answer) == title


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("What is ltree? And why use it.", "What is ltree?"),
        ("Explain closures.\nWith examples", "Explain closures"),
        ("> quoted **bold** start", "quoted bold start"),
        ("   ", FALLBACK_TITLE),
        ("a " * 50, ("a " * 30).strip() + "…"),
        ("x" * 100, "x" * 60 + "…"),
    ],
)
def test_the_heuristic_title_is_the_first_sentence_within_60_characters(question: str, title: str) -> None:
    assert heuristic_title(question) == title


# --- Never overwriting the user -------------------------------------------------------------------
@pytest.mark.django_db
def test_a_titled_chat_keeps_its_title_and_calls_no_model(openai_fake: OpenAIServer) -> None:
    chat = _chat_with_first_exchange(GuestFactory())
    Chat.objects.filter(pk=chat.pk).update(title="My rice notes")
    assert chat_title_generate(chat_id=chat.pk) == "My rice notes"
    assert openai_fake.requests == []


@pytest.mark.django_db
def test_a_title_the_user_set_while_the_model_was_writing_stands(openai_fake: OpenAIServer) -> None:
    chat = _chat_with_first_exchange(GuestFactory())
    ask = titles._model_title

    def user_renames_meanwhile(*args: Any) -> str:
        Chat.objects.filter(pk=chat.pk).update(title="Named by me")
        return ask(*args)

    with (
        mock.patch.object(titles, "_model_title", user_renames_meanwhile),
        mock.patch.object(titles, "_push") as push,
    ):
        assert chat_title_generate(chat_id=chat.pk) == "Named by me"
    assert _title_of(chat) == "Named by me"
    push.assert_not_called()


# --- Telling the tabs --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_new_title_is_pushed_to_the_owners_group(no_provider_keys: None) -> None:
    chat = _chat_with_first_exchange(UserFactory(), question="Pushed title please")

    async def subscribe_then_title() -> dict[str, Any]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(user_group(chat.owner_id), channel)
        try:
            # Thread-sensitive: runs in the test's thread, inside its transaction.
            await sync_to_async(chat_title_generate)(chat_id=chat.pk)
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(user_group(chat.owner_id), channel)

    message = async_to_sync(subscribe_then_title)()
    assert user_group(chat.owner_id) == f"user.{chat.owner_id}"
    assert message == {
        "type": "chat.event",
        "frame": {"type": "chat", "chat_id": str(chat.pk), "title": "Pushed title please"},
    }


# --- The task ------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_task_is_queued_only_when_the_transaction_commits(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with mock.patch.object(title_chat, "apply_async") as apply_async:
        with django_capture_on_commit_callbacks(execute=True):
            title_chat_after_commit("1c2b1a4e-0000-4000-8000-000000000000")
            apply_async.assert_not_called()
        apply_async.assert_called_once_with(("1c2b1a4e-0000-4000-8000-000000000000",), ignore_result=True)


@pytest.mark.django_db(transaction=True)
def test_a_title_queued_after_a_turn_is_written_and_no_result_is_kept(celery_worker_process: object) -> None:
    Model.objects.all().delete()  # the heuristic title: no model to ask
    chat = _chat_with_first_exchange(UserFactory())
    queued: list[AsyncResult] = []
    send = title_chat.apply_async

    def recorded(*args: Any, **options: Any) -> AsyncResult:
        queued.append(send(*args, **options))
        return queued[-1]

    with mock.patch.object(title_chat, "apply_async", side_effect=recorded):
        title_chat_after_commit(chat.pk)  # outside a transaction: queued at once
    _wait_for(lambda: _title_of(chat), "the worker titles the chat")
    _wait_for(lambda: not any((app.control.inspect(timeout=2).active() or {"-": [1]}).values()), "the task ends")
    (result,) = queued
    assert not result.backend.client.exists(result.backend.get_key_for_task(result.id))


def _wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_the_task_titles_the_chat_through_a_real_worker(celery_worker_process: object) -> None:
    # The worker's environment was fixed when it started; without models it uses the heuristic.
    Model.objects.all().delete()
    chat = _chat_with_first_exchange(UserFactory())
    assert title_chat.delay(str(chat.pk)).get(timeout=30) == "How do I cook rice without a rice cooker?"
    assert _title_of(chat) == "How do I cook rice without a rice cooker?"
