"""usage_record: one row per generation, its cost from the model's prices at that time."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.limits import TOKENS, limit_take
from accounts.models import UsageBucket
from accounts.tests.factories import GuestFactory, UserFactory
from providers.contract import Usage
from providers.models import Model
from usage.models import Period, SpendLedger, UsageRecord
from usage.services import usage_record
from usage.services.quotas import period_starts
from usage.tests.factories import priced_model

pytestmark = pytest.mark.django_db


def _record(user_id: int, **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "user_id": user_id,
        "kind": "chat",
        "model_id": "acme:large",
        "provider": "acme",
        "usage": Usage(input_tokens=2_000, output_tokens=1_000, reasoning_tokens=400),
    }
    values.update(fields)
    usage_record(**values)  # type: ignore[arg-type]
    return UsageRecord.objects.latest("id")


@pytest.mark.parametrize("kind", ["chat", "title", "suggestions", "artifact"])
def test_every_kind_of_generation_is_recorded_with_its_cost(kind: str) -> None:
    priced_model(input_price="3", output_price="15")
    user = UserFactory()
    chat_id, message_id = uuid.uuid4(), uuid.uuid4()

    row = _record(user.pk, kind=kind, chat_id=chat_id, message_id=message_id, ttft_ms=420, total_ms=3_100)

    # 2,000 in at $3/M + 1,000 out (reasoning included) at $15/M
    assert row.cost == Decimal("0.021")
    assert (row.kind, row.user_id, row.tier_id) == (kind, user.pk, user.tier_id)
    assert (row.chat_id, row.message_id) == (chat_id, message_id)
    assert (row.input_tokens, row.output_tokens, row.reasoning_tokens) == (2_000, 1_000, 400)
    assert (row.ttft_ms, row.total_ms, row.outcome, row.byok) == (420, 3_100, "complete", False)


def test_the_cost_uses_the_prices_at_the_time_of_the_generation() -> None:
    priced_model(input_price="1", output_price="1")
    user = UserFactory()
    before = _record(user.pk)
    model = Model.objects.get(model_id="acme:large")
    model.input_price_per_mtok = model.output_price_per_mtok = Decimal(10)
    model.save()  # as the admin does: the catalog's version changes with it

    after = _record(user.pk)

    assert (before.cost, after.cost) == (Decimal("0.003"), Decimal("0.03"))
    assert UsageRecord.objects.get(pk=before.pk).cost == Decimal("0.003")


def test_byok_usage_is_recorded_but_not_charged() -> None:
    priced_model()
    user = UserFactory()

    row = _record(user.pk, model_id="byok:mine", provider="openai", byok=True)

    assert row.byok
    assert row.cost == 0
    assert row.output_tokens == 1_000
    assert not SpendLedger.objects.filter(user_id=user.pk).exists()


def test_platform_cost_is_booked_to_the_users_day_and_month() -> None:
    priced_model(input_price="3", output_price="15")
    user = UserFactory()

    _record(user.pk)
    _record(user.pk, kind="title")

    today, month = period_starts()
    day_row = SpendLedger.objects.get(user_id=user.pk, period=Period.DAY, start=today)
    month_row = SpendLedger.objects.get(user_id=user.pk, period=Period.MONTH, start=month)
    assert day_row.spent == month_row.spent == Decimal("0.042")


def test_a_generation_writes_its_row_and_both_ledger_periods_in_one_statement() -> None:
    priced_model(input_price="3", output_price="15")
    user = UserFactory()

    with CaptureQueriesContext(connection) as captured:
        usage_record(
            user_id=user.pk,
            kind="chat",
            model_id="acme:large",
            provider="acme",
            usage=Usage(input_tokens=2_000, output_tokens=1_000),
            tier_id=user.tier_id,
        )

    # The prices are read inside it, from the catalog's rows: no snapshot to load first.
    assert [query["sql"].split("(")[0] for query in captured.captured_queries] == ["SELECT usage_record_write"]
    assert UsageRecord.objects.get(user=user).cost == Decimal("0.021")
    assert SpendLedger.objects.filter(user_id=user.pk, spent=Decimal("0.021")).count() == 2


def test_a_replys_token_settlement_is_in_that_one_statement_too() -> None:
    priced_model(input_price="3", output_price="15")
    user = UserFactory()
    limit_take(user=user, kind=TOKENS, amount=5_000)  # a turn's reservation
    reserved_level = UsageBucket.objects.get(user=user, kind=TOKENS).tokens

    with CaptureQueriesContext(connection) as captured:
        usage_record(
            user_id=user.pk,
            kind="chat",
            model_id="acme:large",
            provider="acme",
            usage=Usage(input_tokens=2_000, output_tokens=1_000),
            tier_id=user.tier_id,
            tokens_settled=-2_000,  # 3,000 used of the 5,000 reserved
        )

    assert len(captured.captured_queries) == 1
    assert UsageBucket.objects.get(user=user, kind=TOKENS).tokens == pytest.approx(reserved_level + 2_000, abs=50)
    assert SpendLedger.objects.filter(user_id=user.pk, spent=Decimal("0.021")).count() == 2


def test_stopped_and_failed_generations_keep_their_outcome() -> None:
    priced_model()
    user = UserFactory()

    stopped = _record(user.pk, outcome="stopped")
    failed = _record(user.pk, outcome="provider_unavailable", usage=Usage())

    assert (stopped.outcome, stopped.is_error) == ("stopped", False)
    assert (failed.outcome, failed.is_error, failed.cost) == ("provider_unavailable", True, 0)


def test_a_model_missing_from_the_catalog_costs_nothing() -> None:
    user = GuestFactory()

    row = _record(user.pk, model_id="gone:model")

    assert row.cost == 0
    assert row.tier_id == user.tier_id


def test_a_user_deleted_before_the_save_leaves_an_anonymous_row() -> None:
    priced_model()
    user = UserFactory()
    user_id = user.pk
    user.delete()

    row = _record(user_id)

    assert row.user_id is None
    assert row.tier_id is None
    assert row.cost == Decimal("0.021")


def test_deleting_a_user_keeps_their_usage_anonymously() -> None:
    priced_model()
    user = UserFactory()
    row = _record(user.pk)

    user.delete()

    row.refresh_from_db()
    assert row.user_id is None
    assert row.cost == Decimal("0.021")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown usage kind"):
        _record(UserFactory().pk, kind="embedding")


def test_a_guest_who_signs_in_takes_their_usage_rows_along() -> None:
    from accounts.services import guest_data_transfer

    priced_model()
    guest, account = GuestFactory(), UserFactory()
    row = _record(guest.pk)
    _record(account.pk)

    guest_data_transfer(guest=guest, target=account)

    row.refresh_from_db()
    assert row.user_id == account.pk
    assert UsageRecord.objects.filter(user=account).count() == 2
