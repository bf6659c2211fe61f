"""The operators' console in the Django admin: the dashboard, usage rows, the audit log, and the
users, tiers and catalog pages extended with usage, quotas and account controls.

Every list stays a bounded number of queries whatever the row count: related rows come with
`list_select_related`, per-row figures are subqueries annotated onto the one list query, and
the big tables (usage rows, audit) count at most CAPPED_COUNT rows for their paginator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import DecimalField, Exists, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.admin import TierForm
from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import Tier, User
from providers.admin import ModelAdmin as CatalogModelAdmin
from providers.admin import TierWithModelsAdmin
from providers.models import Model
from usage import charts
from usage.dashboard import DAYS, dashboard_data
from usage.models import AuditEntry, Dashboard, Period, QuotaOverride, SpendLedger, TierQuota, UsageRecord
from usage.services.operators import user_disable, user_enable
from usage.services.quotas import money, period_starts, spend_status, tier_quota_set

CAPPED_COUNT = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most CAPPED_COUNT rows (a COUNT over millions of rows takes seconds): the
    pages past the cap are reached by narrowing the filters."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:CAPPED_COUNT].count()


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Dashboard ----------------------------------------------------------------------------------
def _money(value: float) -> str:
    return money(Decimal(str(value)))


def _tokens(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1_000:.1f}k" if value >= 1_000 else f"{value:.0f}"


def dashboard_context(now: Any = None) -> dict[str, Any]:
    data = dashboard_data(now=now)
    return {
        "data": data,
        "days": DAYS,
        "spend_chart": charts.column_chart(
            [(f"{day:%m-%d}", float(spend)) for day, spend, _ in data.daily],
            title=f"Spend per day, last {DAYS} days",
            value_format=_money,
        ),
        "messages_chart": charts.column_chart(
            [(f"{day:%m-%d}", messages_) for day, _, messages_ in data.daily],
            title=f"Messages per day, last {DAYS} days",
            color=charts.PALETTE[3],
        ),
        "model_tokens_chart": charts.bar_chart(
            [(line.label["model"], line.tokens) for line in data.models_30d],
            title="Tokens by model",
            value_format=_tokens,
        ),
        "model_spend_chart": charts.bar_chart(
            [(line.label["model"], float(line.cost)) for line in data.models_30d],
            title="Spend by model",
            value_format=_money,
            color=charts.PALETTE[2],
        ),
        "provider_spend_chart": charts.bar_chart(
            [(line.label["provider"], float(line.cost)) for line in data.providers_30d],
            title="Spend by provider",
            value_format=_money,
            color=charts.PALETTE[0],
        ),
        "tier_spend_chart": charts.bar_chart(
            [(line.label["tier"], float(line.cost)) for line in data.tiers_30d],
            title="Spend by tier",
            value_format=_money,
            color=charts.PALETTE[5],
        ),
        "ttft_chart": charts.paired_bar_chart(
            [(health.slug, health.p50_30d, health.p95_30d) for health in data.providers if health.requests_30d],
            title="Time to first token by provider (ms)",
            names=("p50", "p95"),
            value_format=lambda value: f"≤{value:,.0f} ms",
        ),
    }


@admin.register(Dashboard)
class DashboardAdmin(ReadOnly):
    """The list page of the proxy is the dashboard (the admin's own permission checks apply:
    a superuser, or staff given `usage.view_dashboard`)."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        context = {**self.admin_site.each_context(request), **dashboard_context(), "title": "Dashboard"}
        context["opts"] = self.model._meta
        return TemplateResponse(request, "admin/usage/dashboard.html", context)


# --- Usage rows and the audit log ---------------------------------------------------------------
@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnly):
    list_display = [
        "created_at",
        "user",
        "tier",
        "kind",
        "model_id",
        "provider",
        "input_tokens",
        "output_tokens",
        "cost",
        "ttft_ms",
        "outcome",
        "byok",
    ]
    list_filter = ["kind", "byok", "provider"]
    list_select_related = ["user", "tier"]
    search_fields = ["=model_id", "=user__email", "=chat_id"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    ordering = ["-created_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly):
    list_display = ["at", "actor_label", "action", "target", "subject_user_id", "detail"]
    list_filter = ["action"]
    search_fields = ["=subject_user_id", "actor_label", "target"]
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


# --- Users --------------------------------------------------------------------------------------
class QuotaOverrideInline(admin.StackedInline):
    model = QuotaOverride
    fk_name = "user"
    can_delete = True
    extra = 0
    max_num = 1
    fields = ["unlimited", "daily_limit", "monthly_limit", "expires_at", "note", "granted_by", "granted_at"]
    readonly_fields = ["granted_by", "granted_at"]
    verbose_name = "spend quota override"


admin.site.unregister(User)


@admin.register(User)
class OperatorUserAdmin(AccountsUserAdmin):
    list_display = [
        "__str__",
        "tier",
        "account",
        "spent_this_month",
        "overridden",
        "is_active",
        "is_staff",
        "date_joined",
    ]
    inlines = [*AccountsUserAdmin.inlines, QuotaOverrideInline]
    actions = ["disable_users", "enable_users"]
    readonly_fields = [*AccountsUserAdmin.readonly_fields, "usage_this_period"]
    fieldsets = [
        *AccountsUserAdmin.fieldsets,
        ("Usage", {"fields": ["usage_this_period"]}),
    ]

    def get_inlines(self, request: HttpRequest, obj: User | None) -> list[Any]:
        return super().get_inlines(request, obj) if obj is not None else []

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        _, month = period_starts()
        spent = SpendLedger.objects.filter(user_id=OuterRef("pk"), period=Period.MONTH, start=month).values("spent")
        return (
            super()
            .get_queryset(request)
            .annotate(
                month_spend=Coalesce(Subquery(spent[:1]), Value(Decimal(0)), output_field=DecimalField()),
                has_override=Exists(QuotaOverride.objects.filter(user_id=OuterRef("pk"))),
            )
        )

    @admin.display(description="account", ordering="is_guest")
    def account(self, user: User) -> str:
        return "guest" if user.is_guest else "registered"

    @admin.display(description="spent this month", ordering="month_spend")
    def spent_this_month(self, user: User) -> str:
        return money(user.month_spend)  # type: ignore[attr-defined]

    @admin.display(description="quota override", boolean=True, ordering="has_override")
    def overridden(self, user: User) -> bool:
        return bool(user.has_override)  # type: ignore[attr-defined]

    @admin.display(description="usage this period")
    def usage_this_period(self, user: User) -> str:
        if user.pk is None:
            return "-"
        status = spend_status(user_id=user.pk)
        daily = money(status.limits.daily) if status.limits.daily is not None else "no limit"
        monthly = money(status.limits.monthly) if status.limits.monthly is not None else "no limit"
        override = " (override)" if status.limits.overridden else ""
        return (
            f"today {money(status.spent_today)} of {daily}; this month {money(status.spent_month)} of {monthly}"
            f"{override}; held by running replies {money(status.reserved)}"
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:
            if isinstance(inline_form.instance, QuotaOverride) and inline_form.has_changed():
                inline_form.instance.granted_by = request.user
        super().save_formset(request, form, formset, change)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """Unticking "active" here disables the account the same way as the action does."""
        was_active = change and User.objects.filter(pk=obj.pk, is_active=True).exists()
        super().save_model(request, obj, form, change)
        if was_active and not obj.is_active:
            user_disable(user=obj, actor=request.user)  # type: ignore[arg-type]

    @admin.action(description="Disable the selected users (close their sockets now)")
    def disable_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [user for user in queryset if user.pk != request.user.pk]
        for user in users:
            user_disable(user=user, actor=request.user)  # type: ignore[arg-type]
        self.message_user(request, f"Disabled {len(users)} users.", messages.SUCCESS)

    @admin.action(description="Enable the selected users")
    def enable_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset.filter(is_active=False))
        for user in users:
            user_enable(user=user, actor=request.user)  # type: ignore[arg-type]
        self.message_user(request, f"Enabled {len(users)} users.", messages.SUCCESS)


# --- Tiers --------------------------------------------------------------------------------------
QUOTA_FIELDS = {"daily_spend_limit": "daily_limit", "monthly_spend_limit": "monthly_limit"}


class OperatorTierForm(TierForm):
    """The tier's spend quota (a usage.TierQuota row) as two fields of the tier's own form. Like
    the rate limits, a field left out of a post keeps its value; submitted blank means no limit."""

    daily_spend_limit = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=4, help_text="Money per day per user (blank: none)."
    )
    monthly_spend_limit = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=4,
        help_text="Money per month per user (blank: none).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        quota = TierQuota.objects.filter(tier_id=self.instance.pk).first() if self.instance.pk else None
        for field, column in QUOTA_FIELDS.items():
            self.fields[field].initial = getattr(quota, column, None)

    def quota_changes(self) -> dict[str, Decimal | None]:
        """The quota fields this post carried, by TierQuota column."""
        return {column: self.cleaned_data.get(field) for field, column in QUOTA_FIELDS.items() if field in self.data}


admin.site.unregister(Tier)


@admin.register(Tier)
class OperatorTierAdmin(TierWithModelsAdmin):
    form = OperatorTierForm
    list_display = [*TierWithModelsAdmin.list_display, "daily_limit", "monthly_limit"]
    fieldsets = [
        *TierWithModelsAdmin.fieldsets,
        (
            "Spend quota",
            {
                "fields": list(QUOTA_FIELDS),
                "description": "Money each user of the tier may spend on platform models, per day and per "
                "calendar month (BYOK is never charged). A user over it is refused until the reset; "
                "grant exceptions on the user's page.",
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tier]:
        return super().get_queryset(request).select_related("spend_quota")

    def save_model(self, request: HttpRequest, obj: Tier, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changes = form.quota_changes()
        if changes:
            current = TierQuota.objects.filter(tier=obj).values("daily_limit", "monthly_limit").first() or {}
            merged = {"daily_limit": None, "monthly_limit": None, **current, **changes}
            tier_quota_set(tier_id=obj.pk, daily=merged["daily_limit"], monthly=merged["monthly_limit"])

    def _quota(self, tier: Tier, name: str) -> str:
        quota = getattr(tier, "spend_quota", None)
        value = getattr(quota, name, None) if quota is not None else None
        return "—" if value is None else money(value)

    @admin.display(description="daily limit")
    def daily_limit(self, tier: Tier) -> str:
        return self._quota(tier, "daily_limit")

    @admin.display(description="monthly limit")
    def monthly_limit(self, tier: Tier) -> str:
        return self._quota(tier, "monthly_limit")


# --- Catalog ------------------------------------------------------------------------------------
admin.site.unregister(Model)


@admin.register(Model)
class OperatorModelAdmin(CatalogModelAdmin):
    """Usage columns are the last 30 days' roll-ups (final days; today is on the dashboard)."""

    list_display = [*CatalogModelAdmin.list_display, "requests_30d", "tokens_30d", "spend_30d"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        from usage.models import UsageDaily

        since = timezone.localdate() - timedelta(days=DAYS)
        per_model = UsageDaily.objects.filter(model_id=OuterRef("model_id"), day__gte=since).values("model_id")

        def total(expression: Any, field: Any) -> Any:
            summed = Subquery(per_model.annotate(total=expression).values("total")[:1])
            return Coalesce(summed, Value(0), output_field=field)

        return (
            super()
            .get_queryset(request)
            .annotate(
                usage_requests=total(Sum("requests"), IntegerField()),
                usage_tokens=total(Sum("input_tokens") + Sum("output_tokens"), IntegerField()),
                usage_spend=total(Sum("cost"), DecimalField()),
            )
        )

    @admin.display(description=f"requests ({DAYS} d)", ordering="usage_requests")
    def requests_30d(self, model: Model) -> int:
        return model.usage_requests  # type: ignore[attr-defined]

    @admin.display(description=f"tokens ({DAYS} d)", ordering="usage_tokens")
    def tokens_30d(self, model: Model) -> str:
        return _tokens(model.usage_tokens)  # type: ignore[attr-defined]

    @admin.display(description=f"spend ({DAYS} d)", ordering="usage_spend")
    def spend_30d(self, model: Model) -> str:
        return money(Decimal(model.usage_spend))  # type: ignore[attr-defined]
