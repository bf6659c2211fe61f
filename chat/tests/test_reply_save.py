"""`reply_save`: a reply's end is one statement that saves it, settles its turn (the token bucket,
the spend ledger's day and month, its reservation cleared) and writes its usage row, and does
nothing at all for a reply that is no longer `streaming`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from accounts.limits import TOKENS
from accounts.models import UsageBucket
from accounts.selectors import tier_registered_default
from accounts.tests.factories import UserFactory
from chat.generation.finish import reply_save
from chat.models import Chat, Message, Status
from chat.reply import Reply
from chat.services.turns import turn_send
from providers.catalog import catalog_seed
from providers.contract import ErrorCode, ProviderError, TextDelta, Usage
from usage.models import Period, SpendLedger, UsageRecord
from usage.services.quotas import period_starts
from usage.tests.factories import priced_model

pytestmark = pytest.mark.usefixtures("no_platform_keys")

save = reply_save.func  # the database thread's function, called here without an event loop

RESERVED = 5_000
SPEND_RESERVED = Decimal("0.05")


def _placeholder(model_id: str = "acme:large", *, spend: bool = True) -> Message:
    """A reply placeholder by a user whose token bucket does not refill (its level shows every
    charge), on `model_id`, holding a reservation of RESERVED tokens (and SPEND_RESERVED in the
    day and month, as admission left it)."""
    tier = tier_registered_default()
    tier.tokens_per_minute = 0
    tier.save()
    user = UserFactory()
    catalog_seed()
    started = turn_send(user=user, chat_id=None, parent_id=None, content="Hello", model_id=None)
    Chat.objects.filter(pk=started.chat.pk).update(title="set by the test")
    today, month = period_starts()
    reservation: dict[str, Any] = {"reserved_tokens": RESERVED, "estimated_input_tokens": 40}
    if spend:
        reservation |= {"spend_reserved": str(SPEND_RESERVED), "spend_day": str(today), "spend_month": str(month)}
        for period, start in ((Period.DAY, today), (Period.MONTH, month)):
            SpendLedger.objects.update_or_create(
                user_id=user.pk, period=period, start=start, defaults={"reserved": SPEND_RESERVED}
            )
    Message.objects.filter(pk=started.assistant_message.pk).update(model_id=model_id, reservation=reservation)
    UsageBucket.objects.filter(user=user, kind=TOKENS).update(tokens=tier.token_capacity - RESERVED)
    return Message.objects.get(pk=started.assistant_message.pk)


def _reply(text: str = "Sunny in Lisbon.", usage: Usage | None = None, provider: str = "acme") -> Reply:
    reply = Reply()
    reply.first_token_at = time.monotonic()
    if text:
        reply.frame_for(TextDelta(text))
    reply.usage = usage or Usage()
    reply.finish_reason = "stop"
    reply.provider = provider
    return reply


def _save(message: Message, reply: Reply, status: str = Status.COMPLETE, error: ProviderError | None = None) -> Any:
    return save(str(message.pk), reply, status, started=time.monotonic() - 1, error=error)


def _tokens_level(message: Message) -> float:
    return UsageBucket.objects.get(user_id=message.chat.owner_id, kind=TOKENS).tokens


def _ledger(message: Message) -> dict[str, tuple[Decimal, Decimal]]:
    rows = SpendLedger.objects.filter(user_id=message.chat.owner_id)
    return {row.period: (row.spent, row.reserved) for row in rows}


@pytest.mark.django_db
def test_a_replys_save_and_settlement_are_one_statement_with_no_transaction_around_it() -> None:
    priced_model()
    placeholder = _placeholder()

    with CaptureQueriesContext(connection) as captured:
        assert _save(placeholder, _reply(usage=Usage(24, 1))) is not None

    assert len(captured.captured_queries) == 1  # 6 before: BEGIN, UPDATE, SAVEPOINT, the writes, RELEASE, COMMIT
    assert captured.captured_queries[0]["sql"].lstrip().startswith("WITH saved AS")


@pytest.mark.django_db
def test_a_saved_reply_holds_its_text_status_usage_provider_and_times_and_no_reservation() -> None:
    priced_model()
    placeholder = _placeholder()

    entry = _save(placeholder, _reply(usage=Usage(2_000, 1_000, 400), provider="acme-eu"))

    saved = Message.objects.get(pk=placeholder.pk)
    assert (saved.status, saved.text, saved.provider, saved.finish_reason) == (
        "complete",
        "Sunny in Lisbon.",
        "acme-eu",
        "stop",
    )
    assert saved.content == [{"type": "text", "text": "Sunny in Lisbon."}]
    assert saved.usage == {"input_tokens": 2_000, "output_tokens": 1_000, "reasoning_tokens": 400}
    assert saved.reservation == {}
    assert saved.total_time_ms >= 1_000 and saved.time_to_first_token_ms is not None
    assert entry["status"] == "complete" and entry["usage"] == saved.usage and entry["content"] == saved.content


@pytest.mark.django_db
def test_a_saved_reply_writes_its_usage_row_settles_its_tokens_and_books_its_exact_cost() -> None:
    priced_model(input_price="3", output_price="15")
    placeholder = _placeholder()
    level = _tokens_level(placeholder)

    _save(placeholder, _reply(usage=Usage(2_000, 1_000, 400)))

    [row] = UsageRecord.objects.filter(message_id=placeholder.pk)
    assert (row.kind, row.user_id, row.chat_id, row.model_id, row.provider) == (
        "chat",
        placeholder.chat.owner_id,
        placeholder.chat_id,
        "acme:large",
        "acme",
    )
    assert (row.input_tokens, row.output_tokens, row.reasoning_tokens, row.outcome, row.byok) == (
        2_000,
        1_000,
        400,
        "complete",
        False,
    )
    assert row.cost == Decimal("0.021")  # 2,000 at $3/M and 1,000 at $15/M, exactly
    assert row.total_ms >= 1_000
    assert _tokens_level(placeholder) == level + RESERVED - 3_000  # the unused 2,000 given back
    # The reservation released and the real cost booked, in the day and the month it was made in.
    assert _ledger(placeholder) == {Period.DAY: (Decimal("0.021"), 0), Period.MONTH: (Decimal("0.021"), 0)}


@pytest.mark.django_db
def test_a_stopped_reply_with_no_reported_usage_keeps_its_text_and_is_charged_an_estimate() -> None:
    priced_model(input_price="3", output_price="15")
    placeholder = _placeholder()
    level = _tokens_level(placeholder)
    text = "Partial words, stopped."

    _save(placeholder, _reply(text), status=Status.STOPPED)

    saved = Message.objects.get(pk=placeholder.pk)
    assert (saved.status, saved.text) == ("stopped", text)
    [row] = UsageRecord.objects.filter(message_id=placeholder.pk)
    assert (row.outcome, row.input_tokens, row.output_tokens) == ("stopped", 40, len(text) // 4)
    assert _tokens_level(placeholder) == level + RESERVED - (40 + len(text) // 4)
    assert row.cost == (Decimal(40 * 3) + Decimal(len(text) // 4 * 15)) / 1_000_000


@pytest.mark.django_db
def test_a_reply_refused_before_writing_anything_costs_nothing_and_gives_everything_back() -> None:
    priced_model()
    placeholder = _placeholder()
    level = _tokens_level(placeholder)
    refused = ProviderError(ErrorCode.RATE_LIMITED, "Busy.")

    _save(placeholder, _reply(""), status=Status.ERROR, error=refused)

    saved = Message.objects.get(pk=placeholder.pk)
    assert (saved.status, saved.error_code, saved.error_message) == ("error", str(ErrorCode.RATE_LIMITED), "Busy.")
    [row] = UsageRecord.objects.filter(message_id=placeholder.pk)
    assert (row.outcome, row.input_tokens, row.output_tokens, row.cost) == (str(ErrorCode.RATE_LIMITED), 0, 0, 0)
    assert _tokens_level(placeholder) == level + RESERVED
    assert _ledger(placeholder) == {Period.DAY: (0, 0), Period.MONTH: (0, 0)}


@pytest.mark.django_db
def test_a_failed_reply_keeps_its_partial_text_and_is_charged_for_it() -> None:
    priced_model()
    placeholder = _placeholder()
    failure = ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "Gone.")

    _save(placeholder, _reply("Half a sent"), status=Status.ERROR, error=failure)

    assert Message.objects.get(pk=placeholder.pk).text == "Half a sent"
    [row] = UsageRecord.objects.filter(message_id=placeholder.pk)
    assert (row.input_tokens, row.output_tokens) == (40, len("Half a sent") // 4)


@pytest.mark.django_db
def test_a_byok_reply_costs_the_platform_nothing() -> None:
    placeholder = _placeholder("byok:mine", spend=False)

    _save(placeholder, _reply(usage=Usage(2_000, 1_000)))

    [row] = UsageRecord.objects.filter(message_id=placeholder.pk)
    assert (row.byok, row.cost, row.output_tokens) == (True, 0, 1_000)
    assert not SpendLedger.objects.filter(user_id=placeholder.chat.owner_id).exists()


@pytest.mark.django_db
def test_a_reply_no_longer_streaming_is_neither_saved_nor_settled() -> None:
    priced_model()
    placeholder = _placeholder()
    level = _tokens_level(placeholder)
    # What a recovery leaves when it took this reply's process for dead.
    Message.objects.filter(pk=placeholder.pk).update(status=Status.ERROR, error_code="interrupted", text="Par")

    assert _save(placeholder, _reply(usage=Usage(2_000, 1_000))) is None

    saved = Message.objects.get(pk=placeholder.pk)
    assert (saved.status, saved.error_code, saved.text) == ("error", "interrupted", "Par")
    assert not UsageRecord.objects.filter(message_id=placeholder.pk).exists()
    assert _tokens_level(placeholder) == level
    assert _ledger(placeholder) == {Period.DAY: (0, SPEND_RESERVED), Period.MONTH: (0, SPEND_RESERVED)}


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_saves_racing_to_finish_a_reply_settle_it_once() -> None:
    """The second save waits for the first's row lock, then finds the reply saved: it re-checks
    the updated row's status, not the version it first read."""
    priced_model(input_price="3", output_price="15")
    placeholder = _placeholder()
    level = _tokens_level(placeholder)

    first, second = _second_waits_on_the_first(
        lambda: _save(placeholder, _reply(usage=Usage(2_000, 1_000))),
        lambda: _save(placeholder, _reply(usage=Usage(3_000, 1_000))),
    )

    assert first is not None and second is None
    [row] = UsageRecord.objects.filter(message_id=placeholder.pk)
    assert (row.input_tokens, row.cost) == (2_000, Decimal("0.021"))
    assert _tokens_level(placeholder) == level + RESERVED - 3_000
    assert _ledger(placeholder) == {Period.DAY: (Decimal("0.021"), 0), Period.MONTH: (Decimal("0.021"), 0)}


@pytest.mark.django_db(transaction=True)
def test_a_save_waiting_on_a_recovery_of_its_reply_bills_nothing_after_it() -> None:
    from chat.generation.recover import _fail_orphan

    priced_model()
    placeholder = _placeholder()

    recovered, saved = _second_waits_on_the_first(
        lambda: _fail_orphan(str(placeholder.pk), [], ""),
        lambda: _save(placeholder, _reply(usage=Usage(2_000, 1_000))),
    )

    assert recovered is True and saved is None
    assert Message.objects.get(pk=placeholder.pk).error_code == "interrupted"
    assert [row.outcome for row in UsageRecord.objects.filter(message_id=placeholder.pk)] == ["interrupted"]


def _second_waits_on_the_first(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """`first` in a transaction held open until `second`, run in another thread once `first` is
    done, waits on a row lock `first` holds; then both finish. Their results."""
    done, held, answers = threading.Event(), threading.Event(), {}

    def holding() -> None:
        try:
            with transaction.atomic():
                answers["first"] = first()
                done.set()
                held.wait(10)
        finally:
            connections.close_all()

    def waiting() -> None:
        try:
            done.wait(10)
            answers["second"] = second()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=holding), threading.Thread(target=waiting)]
    for thread in threads:
        thread.start()
    done.wait(10)
    deadline = time.monotonic() + 10
    while not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    held.set()
    for thread in threads:
        thread.join(20)
    return answers.get("first"), answers.get("second")
