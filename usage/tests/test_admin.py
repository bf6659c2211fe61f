"""The operators' console: the dashboard from real usage rows, who may see what, the users,
tiers, catalog and chats pages, and list pages whose query count does not grow with rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, GuestFactory, TierFactory, UserFactory
from chat.models import Role
from chat.services.tree import chat_create, message_append, message_edit
from providers.breaker import BreakerPolicy, breaker_record_failure
from providers.tests.catalog_fixtures import make_model, make_provider
from usage.models import AuditEntry, QuotaOverride, TierQuota, UsageRecord
from usage.services import usage_record
from usage.services.quotas import quota_override_grant, tier_quota_set
from usage.tests.factories import priced_model, usage_row

pytestmark = pytest.mark.django_db

Counter = Callable[..., Any]


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root@example.com", DEFAULT_PASSWORD)


@pytest.fixture
def root(superuser: User) -> Client:
    return _client(superuser)


@pytest.fixture
def staff() -> User:
    return UserFactory(is_staff=True)


def _busy_month() -> None:
    """Usage rows over 30 days from two providers, one of them failing now and then."""
    # Anchored at least 10 minutes into today, so "today" holds the same rows just after midnight.
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    now = max(timezone.now(), midnight + timedelta(minutes=10))
    priced_model("acme:large", input_price="3", output_price="15")
    priced_model("acme:small", input_price="0.2", output_price="0.8")
    users = [UserFactory(), UserFactory(), GuestFactory()]
    for day in range(30):
        for index, user in enumerate(users):
            usage_row(
                at=now - timedelta(days=day, minutes=index),
                user=user,
                model_id=["acme:large", "acme:small"][index % 2],
                provider=["acme", "backup"][day % 3 == 0],
                cost=Decimal("0.01") * (index + 1) * (day % 7 + 1),
                input_tokens=1_000 * (index + 1),
                output_tokens=300,
                ttft_ms=200 + 40 * day + index,
                outcome="timeout" if (day + index) % 9 == 0 else "complete",
            )
    usage_record(user_id=users[0].pk, kind="chat", model_id="acme:large", provider="acme", usage=_usage(), ttft_ms=350)


def _usage() -> Any:
    from providers.contract import Usage

    return Usage(input_tokens=5_000, output_tokens=1_000)


class TestDashboard:
    def test_it_renders_charts_from_real_usage_rows_for_a_superuser(self, root: Client) -> None:
        _busy_month()
        make_provider("acme", api_key_env="ACME_KEY")
        breaker_record_failure("acme", BreakerPolicy(threshold=1, open_seconds=60))

        response = root.get(reverse("admin:usage_dashboard_changelist"))

        assert response.status_code == 200
        page = response.content.decode()
        assert page.count("<svg") >= 7
        assert "acme:large" in page and "acme:small" in page
        assert "Spend per day, last 30 days" in page
        data = response.context["data"]
        assert data.summary_30d.messages == 91
        assert data.summary_30d.active_users == 3
        assert data.summary_today.messages == 4
        assert data.summary_30d.spend == sum(row.cost for row in UsageRecord.objects.all())
        acme = next(health for health in data.providers if health.slug == "acme")
        assert acme.breaker == "open"
        assert acme.p50_today is not None and acme.p50_30d is not None
        assert 0 < acme.error_rate_30d < 1
        assert "open" in page

    def test_staff_without_the_permission_are_refused(self, staff: User) -> None:
        assert _client(staff).get(reverse("admin:usage_dashboard_changelist")).status_code == 403

    def test_staff_given_the_view_permission_may_see_it(self, staff: User) -> None:
        staff.user_permissions.add(Permission.objects.get(codename="view_dashboard"))

        assert _client(staff).get(reverse("admin:usage_dashboard_changelist")).status_code == 200

    def test_its_query_count_does_not_grow_with_usage(
        self, root: Client, django_assert_max_num_queries: Counter
    ) -> None:
        root.get(reverse("admin:usage_dashboard_changelist"))  # the first view rolls up the past days
        _busy_month()
        root.get(reverse("admin:usage_dashboard_changelist"))

        with django_assert_max_num_queries(40):
            assert root.get(reverse("admin:usage_dashboard_changelist")).status_code == 200


class TestUsers:
    def test_the_list_shows_account_kind_spend_this_month_and_overrides(self, root: Client) -> None:
        priced_model()
        spender = UserFactory(email="spender@example.com")
        usage_record(user_id=spender.pk, kind="chat", model_id="acme:large", provider="acme", usage=_usage())
        quota_override_grant(user=spender, granted_by=None, unlimited=True)
        GuestFactory()

        page = root.get(reverse("admin:accounts_user_changelist")).content.decode()

        assert "$0.03" in page  # 5,000 in at $3/M + 1,000 out at $15/M
        assert "guest" in page and "registered" in page

    def test_the_change_page_shows_usage_this_period_and_the_override(self, root: Client) -> None:
        user = UserFactory()
        tier_quota_set(tier_id=user.tier_id, daily=Decimal("2"), monthly=None)

        page = root.get(reverse("admin:accounts_user_change", args=[user.pk])).content.decode()

        assert "today $0.00 of $2.00; this month $0.00 of no limit" in page
        assert "spend quota override" in page.lower()

    def test_disabling_from_the_list_disables_and_audits(self, root: Client, superuser: User) -> None:
        users = [UserFactory(), UserFactory()]

        response = root.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "disable_users", "_selected_action": [user.pk for user in users] + [superuser.pk]},
        )

        assert response.status_code == 302
        assert not User.objects.filter(pk__in=[user.pk for user in users], is_active=True).exists()
        assert User.objects.get(pk=superuser.pk).is_active  # never yourself
        assert AuditEntry.objects.filter(action="user.disable", actor=superuser).count() == 2

    def test_an_override_saved_in_the_admin_records_who_granted_it(self, root: Client, superuser: User) -> None:
        user = UserFactory()
        url = reverse("admin:accounts_user_change", args=[user.pk])
        form = root.get(url).context["adminform"].form
        data = {key: value for key, value in form.initial.items() if value is not None and key != "password"}
        data.update(
            {
                "email": user.email,
                "tier": user.tier_id,
                "is_active": "on",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
                "groups": [],
                "user_permissions": [],
                "quota_override-TOTAL_FORMS": "1",
                "quota_override-INITIAL_FORMS": "0",
                "quota_override-MIN_NUM_FORMS": "0",
                "quota_override-MAX_NUM_FORMS": "1",
                "quota_override-0-monthly_limit": "50",
                "quota_override-0-note": "conference demo",
            }
        )
        for key in ("groups", "user_permissions", "last_login", "date_joined"):
            data.pop(key, None)

        response = root.post(url, data)

        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
        override = QuotaOverride.objects.get(user=user)
        assert (override.monthly_limit, override.granted_by) == (Decimal("50"), superuser)

    def test_the_list_query_count_does_not_grow_with_users(
        self, root: Client, django_assert_max_num_queries: Counter
    ) -> None:
        priced_model()
        url = reverse("admin:accounts_user_changelist")

        def add_users(count: int) -> None:
            for _ in range(count):
                user = UserFactory(tier=TierFactory())
                usage_record(user_id=user.pk, kind="chat", model_id="acme:large", provider="acme", usage=_usage())
                quota_override_grant(user=user, granted_by=None, daily=Decimal("1"))

        add_users(2)
        with django_assert_max_num_queries(12) as few:
            root.get(url)
        add_users(60)
        with django_assert_max_num_queries(len(few.captured_queries)) as many:
            assert root.get(url).status_code == 200
        assert len(many.captured_queries) == len(few.captured_queries)


class TestTiersAndCatalog:
    def test_the_tier_page_edits_quotas_beside_limits_and_models(self, root: Client) -> None:
        tier = TierFactory()
        tier_quota_set(tier_id=tier.pk, daily=Decimal("1.5"), monthly=Decimal("20"))

        listing = root.get(reverse("admin:accounts_tier_changelist")).content.decode()
        page = root.get(reverse("admin:accounts_tier_change", args=[tier.pk])).content.decode()

        assert "$1.50" in listing and "$20.00" in listing
        assert 'name="daily_spend_limit" value="1.5000"' in page
        assert "Rate limits" in page
        assert "allowed_models" in page

    def test_the_tier_form_sets_the_quota_and_a_post_without_it_keeps_it(self, root: Client) -> None:
        tier = TierFactory()
        url = reverse("admin:accounts_tier_change", args=[tier.pk])
        base = {"name": tier.name, "slug": tier.slug, "description": ""}
        inline = {"model_access-TOTAL_FORMS": "0", "model_access-INITIAL_FORMS": "0"}

        assert (
            root.post(url, {**base, **inline, "daily_spend_limit": "3", "monthly_spend_limit": ""}).status_code == 302
        )
        assert root.post(url, {**base, **inline, "name": "Renamed"}).status_code == 302

        quota = TierQuota.objects.get(tier=tier)
        assert (quota.daily_limit, quota.monthly_limit) == (Decimal("3"), None)

    def test_the_tier_list_query_count_does_not_grow_with_tiers(
        self, root: Client, django_assert_max_num_queries: Counter
    ) -> None:
        for _ in range(30):
            tier = TierFactory()
            tier_quota_set(tier_id=tier.pk, daily=Decimal("1"), monthly=None)
            UserFactory(tier=tier)

        with django_assert_max_num_queries(10):
            assert root.get(reverse("admin:accounts_tier_changelist")).status_code == 200

    def test_the_model_list_shows_usage_per_model_in_bounded_queries(
        self, root: Client, django_assert_max_num_queries: Counter
    ) -> None:
        provider = make_provider("acme", api_key_env="ACME_KEY")
        for index in range(30):
            make_model(f"acme:m{index}", (provider, f"m{index}"))
        user = UserFactory()
        yesterday = timezone.now() - timedelta(days=1)
        usage_row(
            at=yesterday, user=user, model_id="acme:m3", cost=Decimal("1.25"), input_tokens=2_000, output_tokens=100
        )
        from usage.services.rollups import usage_rollup

        usage_rollup(day=timezone.localdate(yesterday))

        with django_assert_max_num_queries(10):
            page = root.get(reverse("admin:providers_model_changelist")).content.decode()

        assert "$1.25" in page
        assert "2.1k" in page  # 2,000 in + 100 out


class TestChats:
    def _chat(self) -> Any:
        owner = UserFactory(email="owner@example.com")
        chat = chat_create(owner=owner)
        question = message_append(
            chat=chat,
            parent=None,
            role=Role.USER,
            content=[{"type": "text", "text": "first question"}],
            text="first question",
        )
        message_append(chat=chat, parent=question, role=Role.ASSISTANT, content=[], text="an answer")
        message_edit(message=question, content=[{"type": "text", "text": "edited question"}], text="edited question")
        return chat

    def test_a_superuser_browses_the_tree_and_each_view_is_audited(self, root: Client, superuser: User) -> None:
        chat = self._chat()

        page = root.get(reverse("admin:chat_chat_change", args=[chat.pk])).content.decode()
        root.get(reverse("admin:chat_chat_change", args=[chat.pk]))

        assert "first question" in page and "an answer" in page and "edited question" in page
        assert 'margin-left:1.5em"><strong>assistant' in page  # the reply indented under its question
        assert 'name="title"' not in page  # read-only
        entries = AuditEntry.objects.filter(action="chat.view")
        assert entries.count() == 2
        assert {(entry.actor, entry.subject_user_id) for entry in entries} == {(superuser, chat.owner_id)}

    def test_staff_cannot_see_chats_even_with_the_permission(self, staff: User) -> None:
        chat = self._chat()
        staff.user_permissions.add(Permission.objects.get(codename="view_chat"))
        client = _client(staff)

        assert client.get(reverse("admin:chat_chat_changelist")).status_code == 403
        assert client.get(reverse("admin:chat_chat_change", args=[chat.pk])).status_code == 403
        assert not AuditEntry.objects.exists()

    def test_nothing_in_a_chat_can_be_changed(self, root: Client) -> None:
        chat = self._chat()

        root.post(reverse("admin:chat_chat_change", args=[chat.pk]), {"title": "changed"})

        chat.refresh_from_db()
        assert chat.title != "changed"

    def test_the_chat_list_query_count_does_not_grow_with_chats(
        self, root: Client, django_assert_max_num_queries: Counter
    ) -> None:
        for _ in range(40):
            chat_create(owner=UserFactory())

        with django_assert_max_num_queries(8):
            assert root.get(reverse("admin:chat_chat_changelist")).status_code == 200


class TestUsageAndAudit:
    def test_the_usage_list_is_bounded_and_read_only(
        self, root: Client, django_assert_max_num_queries: Counter
    ) -> None:
        users = [UserFactory(tier=TierFactory()) for _ in range(20)]
        for user in users:
            usage_row(at=timezone.now(), user=user)

        with django_assert_max_num_queries(8):
            response = root.get(reverse("admin:usage_usagerecord_changelist"))

        assert response.status_code == 200
        assert reverse("admin:usage_usagerecord_add") not in response.content.decode()

    def test_the_audit_log_is_for_superusers_only(self, root: Client, staff: User) -> None:
        staff.user_permissions.add(Permission.objects.get(codename="view_auditentry"))

        assert root.get(reverse("admin:usage_auditentry_changelist")).status_code == 200
        assert _client(staff).get(reverse("admin:usage_auditentry_changelist")).status_code == 403
