"""usage_report, prune_guests, set_tier and rollup_usage, run as an operator runs them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import GuestFactory, TierFactory, UserFactory
from chat.models import Chat
from chat.services.tree import chat_create
from usage.models import AuditEntry, RolledUpDay, UsageDaily, UsageRecord
from usage.tests.factories import usage_row

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("command", ["usage_report", "prune_guests", "set_tier", "rollup_usage"])
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        call_command(command, "--help")

    assert "Example: python manage.py " + command in capsys.readouterr().out.replace("\n", " ")


class TestUsageReport:
    def _usage(self) -> tuple[User, User]:
        now = timezone.now()
        ada, bob = UserFactory(email="ada@example.com"), UserFactory(email="bob@example.com")
        usage_row(at=now, user=ada, model_id="acme:large", cost=Decimal("0.5"), input_tokens=1000, output_tokens=10)
        usage_row(at=now - timedelta(days=3), user=ada, model_id="acme:small", cost=Decimal("0.25"))
        usage_row(at=now - timedelta(days=3), user=bob, model_id="acme:large", cost=Decimal("1"), outcome="timeout")
        usage_row(at=now - timedelta(days=40), user=bob, model_id="acme:large", cost=Decimal("9"))
        return ada, bob

    def test_the_csv_by_model_sums_past_days_and_today(self) -> None:
        self._usage()

        rows = list(csv.DictReader(io.StringIO(_run("usage_report", "--by", "model", "--format", "csv"))))

        assert [(row["model"], row["requests"], row["errors"], row["cost"]) for row in rows] == [
            ("acme:large", "2", "1", "1.500000"),
            ("acme:small", "1", "0", "0.250000"),
        ]

    def test_grouping_by_user_and_model_names_the_users(self) -> None:
        self._usage()

        rows = list(csv.DictReader(io.StringIO(_run("usage_report", "--by", "user,model", "--format", "csv"))))

        assert {(row["user"], row["model"]) for row in rows} == {
            ("ada@example.com", "acme:large"),
            ("ada@example.com", "acme:small"),
            ("bob@example.com", "acme:large"),
        }

    def test_the_table_has_a_total_line(self) -> None:
        self._usage()

        table = _run("usage_report", "--period", "7d", "--by", "provider")

        assert "by provider" in table
        total = next(line for line in table.splitlines() if line.startswith("total"))
        assert total.split()[-1] == "1.750000"

    def test_since_reaches_back_and_rolls_up_the_days_it_reads(self) -> None:
        self._usage()
        since = (timezone.localdate() - timedelta(days=60)).isoformat()

        rows = list(csv.DictReader(io.StringIO(_run("usage_report", "--since", since, "--format", "csv"))))

        assert sum(Decimal(row["cost"]) for row in rows) == Decimal("10.75")
        assert RolledUpDay.objects.filter(complete=True).exists()

    def test_an_unknown_grouping_is_refused(self) -> None:
        with pytest.raises(CommandError, match="--by takes"):
            _run("usage_report", "--by", "colour")


class TestPruneGuests:
    def _guests(self) -> tuple[User, User, User]:
        long_ago = timezone.now() - timedelta(days=100)
        idle = GuestFactory(date_joined=long_ago, last_login=long_ago)
        chatting = GuestFactory(date_joined=long_ago, last_login=long_ago)
        chat_create(owner=chatting)  # activity now
        new = GuestFactory()
        usage_row(at=long_ago, user=idle)
        chat = chat_create(owner=idle)
        Chat.objects.filter(pk=chat.pk).update(last_activity_at=long_ago)
        return idle, chatting, new

    def test_a_dry_run_counts_and_deletes_nothing(self) -> None:
        self._guests()

        out = _run("prune_guests", "--days", "30")

        assert "1 guests idle for 30 days would be deleted" in out
        assert User.objects.filter(is_guest=True).count() == 3

    def test_apply_deletes_only_idle_guests_with_their_chats_and_keeps_usage_anonymous(self) -> None:
        idle, chatting, new = self._guests()
        registered = UserFactory(date_joined=timezone.now() - timedelta(days=100))

        out = _run("prune_guests", "--days", "30", "--apply")

        assert "Deleted 1 guests" in out
        assert set(User.objects.values_list("pk", flat=True)) == {chatting.pk, new.pk, registered.pk}
        assert not Chat.objects.filter(owner_id=idle.pk).exists()
        assert UsageRecord.objects.filter(user=None).count() == 1
        assert AuditEntry.objects.filter(action="guests.prune").exists()


class TestSetTier:
    def test_it_moves_the_user_and_writes_the_audit_log(self) -> None:
        user = UserFactory(email="Ada@Example.com")
        pro = TierFactory(slug="pro")

        out = _run("set_tier", "ada@example.com", "pro")

        user.refresh_from_db()
        assert user.tier == pro
        assert "→ pro" in out
        entry = AuditEntry.objects.get(action="user.tier")
        assert (entry.subject_user_id, entry.actor_label, entry.detail) == (user.pk, "manage.py", "registered → pro")

    @pytest.mark.parametrize(
        ("email", "tier", "error"), [("nobody@x.org", "pro", "no account"), ("a@x.org", "gold", "no tier")]
    )
    def test_an_unknown_user_or_tier_is_an_error(self, email: str, tier: str, error: str) -> None:
        UserFactory(email="a@x.org")
        TierFactory(slug="pro")

        with pytest.raises(CommandError, match=error):
            _run("set_tier", email, tier)


def test_rollup_usage_rebuilds_the_days_asked_for() -> None:
    user = UserFactory()
    usage_row(at=timezone.now(), user=user)
    usage_row(at=timezone.now() - timedelta(days=2), user=user)
    since = (timezone.localdate() - timedelta(days=2)).isoformat()

    out = _run("rollup_usage", "--since", since)

    assert out.count("usage rows rolled up") == 3
    assert UsageDaily.objects.count() == 2
