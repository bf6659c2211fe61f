"""The spend quota where a turn is admitted (chat.services.turns): refused with the reset time,
nothing taken by a refused turn, BYOK never refused for money, a disabled user refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.limits import MESSAGES
from accounts.models import UsageBucket, User
from accounts.tests.factories import TierFactory, UserFactory
from chat.models import Chat, Message
from chat.services.turns import RESERVED_OUTPUT_TOKENS, TurnRefused, turn_send
from providers.tests.catalog_fixtures import make_model, make_provider
from usage.models import Period, SpendLedger
from usage.services.quotas import tier_quota_set

pytestmark = pytest.mark.django_db

MODEL = "acme:large"


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch) -> User:
    """A user whose tier may spend $0.05 a day on acme:large ($10 per million tokens each way)."""
    monkeypatch.setenv("ACME_TEST_KEY", "sk-test")
    tier = TierFactory()
    tier_quota_set(tier_id=tier.pk, daily=Decimal("0.05"), monthly=None)
    model = make_model(MODEL, (make_provider("acme", api_key_env="ACME_TEST_KEY"), "large"), tiers=(tier,))
    model.input_price_per_mtok = model.output_price_per_mtok = Decimal("10")
    model.save()
    return UserFactory(tier=tier)


def _send(user: User, content: str = "hello there") -> Message:
    return turn_send(user=user, chat_id=None, parent_id=None, content=content, model_id=MODEL).assistant_message


def test_a_turn_reserves_its_estimated_cost_on_the_reply(user: User) -> None:
    reply = _send(user)

    # (10 input tokens estimated for 11 characters + 1,000 output reserved) at $10 per million
    expected = Decimal(10 + RESERVED_OUTPUT_TOKENS) * 10 / 1_000_000
    assert Decimal(reply.reservation["spend_reserved"]) == expected
    assert SpendLedger.objects.get(user_id=user.pk, period=Period.DAY).reserved == expected


def test_the_turn_past_the_limit_is_refused_with_the_reset_time_and_takes_nothing(user: User) -> None:
    for _ in range(4):
        _send(user)  # 4 x $0.0101 reserved of $0.05
    messages_before = UsageBucket.objects.get(user=user, kind=MESSAGES).tokens
    chats_before = Chat.objects.count()

    with pytest.raises(TurnRefused) as refused:
        _send(user)

    assert refused.value.code == "quota_exceeded"
    assert "daily spending limit ($0.05)" in refused.value.message
    assert "resets at" in refused.value.message
    assert 0 < refused.value.retry_after <= 86_400
    assert UsageBucket.objects.get(user=user, kind=MESSAGES).tokens == messages_before
    assert Chat.objects.count() == chats_before


def test_a_disabled_user_cannot_start_a_turn(user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)

    with pytest.raises(TurnRefused) as refused:
        _send(user)

    assert refused.value.code == "account_disabled"
    assert not Message.objects.exists()
