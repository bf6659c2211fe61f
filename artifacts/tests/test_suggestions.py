"""Suggestions: the review's answer parsed line by line, each suggestion saved and pushed to the
owner's tabs as it arrives; in-process with the OpenAI fake, and through a real Celery worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from accounts.models import User
from accounts.tests.factories import UserFactory
from artifacts.models import Document, DocumentVersion, Suggestion
from artifacts.services import document_create
from artifacts.suggestions import NO_MODEL, suggestions_generate
from artifacts.tasks import suggest
from chat.services.titles import user_group
from chat.services.tree import chat_create
from providers.catalog import catalog_seed
from providers.models import Model, Provider
from providers.secrets import encrypt_secret
from providers.testing.base import Count, Say, reply
from providers.testing.openai_server import OpenAIServer
from usage.models import UsageRecord

ESSAY = "Their going to the park tomorow.\nIt will be fun.\n"


def _line(original: str, suggested: str, description: str) -> str:
    return json.dumps({"original": original, "suggested": suggested, "description": description}) + "\n"


REVIEW = (
    _line("Their going", "They're going", "Their is possessive."),
    _line("tomorow", "tomorrow", "Spelling."),
    _line("not in the essay", "anything", "Cannot be applied."),  # dropped
    _line("tomorow", "tomorrow!", "A repeat."),  # dropped
)


def _version(owner: User) -> DocumentVersion:
    _, version = document_create(
        document_id=uuid.uuid4(),
        owner_id=owner.pk,
        chat_id=chat_create(owner=owner).pk,
        message_id=None,
        kind="text",
        title="Plans",
        language="",
        content=ESSAY,
    )
    return version


def _review_of(version: DocumentVersion, batch: str) -> tuple[int, list[dict[str, Any]]]:
    """Run the review in this thread, collecting what the owner's group hears until it is done."""
    owner_id = version.document.owner_id

    async def run() -> tuple[int, list[dict[str, Any]]]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(user_group(owner_id), channel)
        try:
            saved = await sync_to_async(suggestions_generate)(version_id=version.pk, batch=batch)
            frames = []
            while not frames or frames[-1]["type"] != "suggestions_done":
                frames.append((await asyncio.wait_for(layer.receive(channel), timeout=5))["frame"])
            return saved, frames
        finally:
            await layer.group_discard(user_group(owner_id), channel)

    return async_to_sync(run)()


@pytest.mark.django_db
def test_each_applicable_suggestion_is_saved_and_pushed_and_then_the_end(openai_fake: OpenAIServer) -> None:
    owner = UserFactory()
    catalog_seed()
    version = _version(owner)
    # Lines split across events, as a model streams them.
    text = "".join(REVIEW)
    openai_fake.script(reply(*[Say(text[start : start + 7]) for start in range(0, len(text), 7)], Count(50, 40)))
    batch = str(uuid.uuid4())

    saved, frames = _review_of(version, batch)

    assert saved == 2
    assert [(frame["type"], frame.get("original"), frame.get("suggested")) for frame in frames] == [
        ("suggestion", "Their going", "They're going"),
        ("suggestion", "tomorow", "tomorrow"),
        ("suggestions_done", None, None),
    ]
    assert frames[0]["state"] == "pending" and frames[0]["version"] == 1
    assert frames[-1] == {
        "type": "suggestions_done",
        "document_id": str(version.document_id),
        "version": 1,
        "batch": batch,
        "count": 2,
    }
    stored = Suggestion.objects.filter(version=version).order_by("created_at")
    assert [(s.original, s.suggested, s.description) for s in stored] == [
        ("Their going", "They're going", "Their is possessive."),
        ("tomorow", "tomorrow", "Spelling."),
    ]
    request = openai_fake.requests[-1].body
    assert ESSAY in request["messages"][-1]["content"] and "JSON Lines" in request["messages"][0]["content"]
    assert request["model"] != "gpt-5-mini"  # the cheapest model that does not reason first, not the reply's


@pytest.mark.django_db
def test_a_review_answered_as_one_json_array_is_still_read(openai_fake: OpenAIServer) -> None:
    owner = UserFactory()
    catalog_seed()
    version = _version(owner)
    items = [{"original": "tomorow", "suggested": "tomorrow", "description": "Spelling."}]
    openai_fake.script(reply(Say("```json\n" + json.dumps(items, indent=2) + "\n```")))
    saved, frames = _review_of(version, str(uuid.uuid4()))
    assert saved == 1 and frames[0]["suggested"] == "tomorrow"


@pytest.mark.django_db
def test_a_redelivered_batch_adds_nothing(openai_fake: OpenAIServer) -> None:
    owner = UserFactory()
    catalog_seed()
    version = _version(owner)
    batch = str(uuid.uuid4())
    openai_fake.script(reply(Say("".join(REVIEW))))
    assert suggestions_generate(version_id=version.pk, batch=batch) == 2
    calls = len(openai_fake.requests)
    assert suggestions_generate(version_id=version.pk, batch=batch) == 2
    assert len(openai_fake.requests) == calls and Suggestion.objects.count() == 2


@pytest.mark.django_db
def test_a_review_cut_off_midway_keeps_what_arrived_says_why_and_is_billed(
    openai_fake: OpenAIServer, settings: Any
) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    owner = UserFactory()
    catalog_seed()
    version = _version(owner)
    openai_fake.script(reply(Say(REVIEW[0]), Say(REVIEW[1][:20]), Say(REVIEW[1][20:]), drop_after=2))

    saved, frames = _review_of(version, str(uuid.uuid4()))

    assert saved == 1 and frames[0]["suggested"] == "They're going"
    assert frames[-1]["type"] == "suggestions_done" and frames[-1]["error"]["message"]
    row = UsageRecord.objects.get(user=owner, kind="suggestions")
    assert row.outcome != "complete" and row.output_tokens > 0  # what it wrote, estimated


@pytest.mark.django_db
def test_with_no_model_to_review_the_tabs_are_told_why(no_platform_keys: None) -> None:
    Model.objects.all().delete()
    version = _version(UserFactory())
    saved, frames = _review_of(version, str(uuid.uuid4()))
    assert saved == 0
    assert frames == [
        {
            "type": "suggestions_done",
            "document_id": str(version.document_id),
            "version": 1,
            "batch": frames[0]["batch"],
            "count": 0,
            "error": {"message": NO_MODEL},
        }
    ]


# --- Through a real worker --------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_suggestions_arrive_from_a_real_celery_worker(celery_worker_process: object, no_platform_keys: None) -> None:
    with OpenAIServer() as server:
        # The worker's environment was fixed when it started: the fake is set up in the database.
        owner = UserFactory()
        catalog_seed()
        Provider.objects.filter(slug="openai").update(
            base_url=f"{server.url}/v1", api_key_encrypted=encrypt_secret("sk-fake-in-the-database")
        )
        version = _version(owner)
        server.script(reply(Say("".join(REVIEW)), Count(50, 40)))
        batch = str(uuid.uuid4())

        async def request_and_listen() -> list[dict[str, Any]]:
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add(user_group(owner.pk), channel)
            try:
                await sync_to_async(suggest.delay)(version.pk, batch)
                frames = []
                while not frames or frames[-1]["type"] != "suggestions_done":
                    frames.append((await asyncio.wait_for(layer.receive(channel), timeout=30))["frame"])
                return frames
            finally:
                await layer.group_discard(user_group(owner.pk), channel)

        frames = async_to_sync(request_and_listen)()

    assert [frame["type"] for frame in frames] == ["suggestion", "suggestion", "suggestions_done"]
    assert frames[-1]["count"] == 2 and "error" not in frames[-1]
    headers = {name.lower(): value for name, value in server.requests[-1].headers.items()}
    assert headers["authorization"] == "Bearer sk-fake-in-the-database"
    deadline = time.monotonic() + 5
    while Suggestion.objects.filter(batch=batch).count() < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert set(Suggestion.objects.filter(batch=batch).values_list("suggested", flat=True)) == {
        "They're going",
        "tomorrow",
    }
    assert Document.objects.get(pk=version.document_id).version_count == 1  # suggestions change nothing yet
