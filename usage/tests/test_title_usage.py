"""Titles record their usage (chat.services.titles): the tokens the provider reported, priced,
and failed attempts with their error code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.tests.factories import UserFactory
from chat.models import Role
from chat.services.titles import chat_title_generate
from chat.services.tree import chat_create, message_append
from providers.catalog import catalog_seed
from providers.models import Model
from providers.testing.base import Count, Fail, Say, reply
from providers.testing.openai_server import OpenAIServer
from usage.models import UsageRecord


def _chat_id(owner: object) -> object:
    chat = chat_create(owner=owner)
    text = "How do I cook rice in a pot?"
    message_append(chat=chat, parent=None, role=Role.USER, content=[{"type": "text", "text": text}], text=text)
    return chat.pk


@pytest.mark.django_db
def test_a_title_records_its_tokens_and_cost(openai_fake: OpenAIServer) -> None:
    user = UserFactory()
    catalog_seed()
    chat_id = _chat_id(user)
    openai_fake.script(reply(Say("Cooking rice"), Count(120, 4)))

    assert chat_title_generate(chat_id=chat_id) == "Cooking rice"

    row = UsageRecord.objects.get(kind="title")
    model = Model.objects.get(model_id=row.model_id)
    assert (row.user_id, row.chat_id, row.provider, row.outcome) == (user.pk, chat_id, "openai", "complete")
    assert (row.input_tokens, row.output_tokens) == (120, 4)
    assert row.cost == (120 * model.input_price_per_mtok + 4 * model.output_price_per_mtok) / Decimal(1_000_000)
    assert row.cost > 0
    assert row.total_ms is not None


@pytest.mark.django_db
def test_a_failed_title_is_recorded_with_its_error_and_no_cost(openai_fake: OpenAIServer, settings: Any) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    user = UserFactory()
    catalog_seed()
    chat_id = _chat_id(user)
    openai_fake.script(Fail(400, "bad"))

    chat_title_generate(chat_id=chat_id)

    row = UsageRecord.objects.get(kind="title")
    assert (row.outcome, row.cost, row.provider) == ("bad_request", 0, "openai")
