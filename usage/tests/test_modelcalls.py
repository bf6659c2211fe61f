"""The one call-and-bill path (usage.services.modelcalls): `model_text` asks a model through the
route's providers and keeps what came before any failure; `model_call_bill` charges the token
allowance and records the cost, estimating when the provider reported nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from accounts.limits import TOKENS, limit_take
from accounts.models import UsageBucket
from accounts.selectors import tier_registered_default
from accounts.tests.factories import UserFactory
from providers.catalog import catalog_seed
from providers.contract import ChatMessage, ChatRequest, ErrorCode, ProviderError, Usage
from providers.models import Model
from providers.routing import route_for
from providers.testing.base import Count, Fail, Say, reply
from providers.testing.openai_server import OpenAIServer
from usage.models import UsageRecord
from usage.services import ModelCall, model_call_bill, model_text

REQUEST = ChatRequest(model="", messages=(ChatMessage.text("user", "Say something. " * 10),), max_tokens=50)


def _cheapest_openai_model(user: Any) -> str:
    catalog_seed()
    return Model.objects.filter(routes__provider__slug="openai", enabled=True).order_by("model_id").first().model_id


def _user_without_refill() -> Any:
    """A user whose token bucket does not refill, so its level shows every charge."""
    tier = tier_registered_default()
    tier.tokens_per_minute = 0
    tier.save()
    return UserFactory(tier=tier)


def _ask(user: Any, **options: Any) -> ModelCall:
    route = route_for(user=user, model_id=_cheapest_openai_model(user))
    return async_to_sync(model_text)(route, REQUEST, **options)


@pytest.mark.django_db
def test_model_text_streams_the_text_to_its_reader_and_keeps_what_it_used(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("Hello "), Say("there"), Count(30, 2)))
    pieces: list[str] = []

    async def on_text(text: str) -> None:
        pieces.append(text)

    call = _ask(UserFactory(), on_text=on_text)

    assert "".join(pieces) == call.text == "Hello there"
    assert (call.usage, call.provider, call.error, call.outcome) == (Usage(30, 2), "openai", None, "complete")
    assert call.ttft_ms is not None and call.sent_tokens > 0


@pytest.mark.django_db
def test_model_text_past_its_character_limit_is_cut_there(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("abcdef"), Say("ghijkl"), Say("never read")))

    call = _ask(UserFactory(), max_chars=8)

    assert (call.text, call.cut, call.error) == ("abcdefgh", True, None)


@pytest.mark.django_db
def test_a_provider_failing_mid_answer_leaves_the_text_before_it(openai_fake: OpenAIServer, settings: Any) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    openai_fake.script(reply(Say("Partial "), Say("words"), Say("lost"), drop_after=2))

    call = _ask(UserFactory())

    assert call.text == "Partial words"
    assert call.error is not None and call.outcome == str(call.error.code) != "complete"


@pytest.mark.django_db
def test_a_refused_call_is_billed_nothing_and_recorded_with_its_code(openai_fake: OpenAIServer, settings: Any) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    user = UserFactory()
    openai_fake.script(Fail(400, "bad"))
    call = _ask(user)

    charged = model_call_bill(call, user_id=user.pk, kind="title", model_id=_cheapest_openai_model(user))

    row = UsageRecord.objects.get(user=user)
    assert charged == Usage() and (row.outcome, row.cost) == ("bad_request", 0)


@pytest.mark.django_db
def test_a_call_with_reported_usage_is_charged_those_tokens_at_the_models_prices() -> None:
    user = _user_without_refill()
    model_id = _cheapest_openai_model(user)
    model = Model.objects.get(model_id=model_id)
    limit_take(user=user, kind=TOKENS, amount=0)  # the bucket, full

    model_call_bill(
        ModelCall(text="Hi", usage=Usage(1_000, 200), provider="openai"),
        user_id=user.pk,
        kind="artifact",
        model_id=model_id,
    )

    row = UsageRecord.objects.get(user=user)
    assert (row.kind, row.input_tokens, row.output_tokens) == ("artifact", 1_000, 200)
    assert row.cost == (1_000 * model.input_price_per_mtok + 200 * model.output_price_per_mtok) / Decimal(1_000_000)
    assert UsageBucket.objects.get(user=user, kind=TOKENS).tokens == user.tier.token_capacity - 1_200


@pytest.mark.django_db
def test_a_stopped_or_half_failed_call_without_usage_is_charged_an_estimate() -> None:
    user = UserFactory()
    model_id = _cheapest_openai_model(user)
    failed = ModelCall(text="x" * 400, sent_tokens=50, error=ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "gone"))

    charged = model_call_bill(failed, user_id=user.pk, kind="suggestions", model_id=model_id)

    assert charged == Usage(input_tokens=50, output_tokens=100)
    row = UsageRecord.objects.get(user=user)
    assert (row.input_tokens, row.output_tokens, row.outcome) == (50, 100, "provider_unavailable")
    assert row.cost > 0


@pytest.mark.django_db
def test_a_byok_call_costs_the_platform_nothing() -> None:
    user = UserFactory()

    model_call_bill(ModelCall(text="Hi", usage=Usage(1_000, 200)), user_id=user.pk, kind="title", model_id="byok:mine")

    row = UsageRecord.objects.get(user=user)
    assert (row.byok, row.cost, row.input_tokens) == (True, 0, 1_000)


@pytest.mark.django_db
def test_billing_a_call_with_no_placeholder_is_one_statement(django_assert_num_queries: Any) -> None:
    user = UserFactory()
    model_id = _cheapest_openai_model(user)

    # The tier, the prices, the estimate, the bucket, the ledger and the row: all in `usage_call_bill`.
    with django_assert_num_queries(1):
        charged = model_call_bill(
            ModelCall(text="A title", sent_tokens=30), user_id=user.pk, kind="title", model_id=model_id
        )

    assert charged == Usage(input_tokens=30, output_tokens=len("A title") // 4)
    assert UsageRecord.objects.get(user=user).cost > 0
