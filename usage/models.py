"""What generations cost and who may spend how much.

- `UsageRecord`: one row per generation (chat reply, title, suggestions, artifact). Its chat and
  message are plain UUID columns, not foreign keys: spend history outlives a deleted chat. Its
  user is a foreign key set to NULL when the user is deleted: the tokens and money stay in
  every total (by model, provider, tier, day) while nothing links them to the person any more.
  A guest who signs in takes their rows along (`accounts.services.guest_data_transfer` moves
  every one-to-many relation to User).
- `UsageDaily`: the roll-up of one day's rows by (user, tier, model, provider, kind, BYOK),
  recomputed whole for a day (`usage.services.rollups`), so reports over months read a few
  rows per user and day instead of millions. `RolledUpDay` marks the days that are final.
- `TierQuota` / `QuotaOverride`: money a tier's users may spend per day and per month on
  platform models, and an operator's per-user exception.
- `SpendLedger`: per user and period (day, month) the money spent and the money reserved by
  turns still running; admission reserves under the row lock (`usage.services.quotas`).
- `AuditEntry`: what operators did and looked at (every view of a user's chat).

Ledger and roll-up rows hold `user_id` as a plain integer on purpose: they are unique per user
and period, so a guest's rows must not be moved onto an account that has its own (the
generic guest transfer would fail on the unique constraint); they are derived data.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

MONEY = {"max_digits": 20, "decimal_places": 10}
LIMIT = {"max_digits": 12, "decimal_places": 4, "null": True, "blank": True, "validators": [MinValueValidator(0)]}

# Time-to-first-token histogram buckets (upper bounds in ms, the last bucket is everything
# above): percentiles over months come from summed histograms, not from millions of rows.
TTFT_BOUNDS_MS = (
    50, 100, 150, 200, 300, 400, 500, 700, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 30_000, 60_000,
)  # fmt: skip


class Kind(models.TextChoices):
    CHAT = "chat"
    TITLE = "title"
    SUGGESTIONS = "suggestions"
    ARTIFACT = "artifact"
    API = "api"  # a call through the OpenAI-compatible API (gateway)


class Outcome(models.TextChoices):
    """An outcome is one of these or a provider error code (`providers.contract.ErrorCode`)."""

    COMPLETE = "complete"
    STOPPED = "stopped"


class UsageRecord(models.Model):
    created_at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    tier = models.ForeignKey("accounts.Tier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    chat_id = models.UUIDField(null=True, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    model_id = models.CharField(max_length=200)
    provider = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0, help_text="Reasoning included.")
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=0, help_text="Charged to the platform; 0 for BYOK.")
    byok = models.BooleanField(default=False)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=40, default=Outcome.COMPLETE)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="usage_record_time"),
            models.Index(fields=["user", "created_at"], name="usage_record_user_time"),
            models.Index(fields=["message_id"], name="usage_record_message"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.model_id} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_error(self) -> bool:
        return self.outcome not in Outcome.values


class UsageDaily(models.Model):
    day = models.DateField()
    user_id = models.BigIntegerField(null=True, blank=True)
    tier_id = models.BigIntegerField(null=True, blank=True)
    model_id = models.CharField(max_length=200)
    provider = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    byok = models.BooleanField(default=False)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(**MONEY, default=0)
    ttft_count = models.PositiveIntegerField(default=0)
    ttft_histogram = ArrayField(models.PositiveIntegerField(), default=list, blank=True)

    class Meta:
        verbose_name_plural = "usage daily"
        indexes = [
            models.Index(fields=["day"], name="usage_daily_day"),
            models.Index(fields=["model_id", "day"], name="usage_daily_model_day"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "user_id", "tier_id", "model_id", "provider", "kind", "byok"],
                name="usage_daily_one_row_per_group",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model_id} user {self.user_id}"


class RolledUpDay(models.Model):
    """A day whose roll-up was computed; `complete` once computed after the day ended (and its
    late rows were in), so reports need not roll it up again."""

    day = models.DateField(primary_key=True)
    rolled_up_at = models.DateTimeField()
    complete = models.BooleanField(default=False)
    records = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day} ({'final' if self.complete else 'partial'})"


class TierQuota(models.Model):
    """Spend limits of a tier's users on platform models (BYOK is never charged). Blank: no
    limit. A tier without this row has no spend limits."""

    tier = models.OneToOneField("accounts.Tier", on_delete=models.CASCADE, related_name="spend_quota")
    daily_limit = models.DecimalField(**LIMIT, help_text="Money per day per user (blank: no limit).")
    monthly_limit = models.DecimalField(**LIMIT, help_text="Money per calendar month per user (blank: no limit).")

    class Meta:
        verbose_name = "spend quota"

    def __str__(self) -> str:
        return f"spend quota of {self.tier}"


class QuotaOverride(models.Model):
    """An operator's exception for one user: a limit set here replaces the tier's, a blank one
    keeps the tier's; `unlimited` lifts both. Ignored after `expires_at`."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_override")
    daily_limit = models.DecimalField(**LIMIT, help_text="Replaces the tier's daily limit (blank: the tier's).")
    monthly_limit = models.DecimalField(**LIMIT, help_text="Replaces the tier's monthly limit (blank: the tier's).")
    unlimited = models.BooleanField(default=False, help_text="No spend limit at all.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Blank: until removed.")
    note = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    granted_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quota override of {self.user}"


class Period(models.TextChoices):
    DAY = "day"
    MONTH = "month"


class SpendLedger(models.Model):
    user_id = models.BigIntegerField()
    period = models.CharField(max_length=5, choices=Period.choices)
    start = models.DateField(help_text="The period's first day.")
    spent = models.DecimalField(**MONEY, default=0)
    reserved = models.DecimalField(**MONEY, default=0, help_text="Held by turns still running.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "period", "start"], name="usage_ledger_one_per_period"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="usage_ledger_reserved_not_negative"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} {self.period} {self.start}: {self.spent}"


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="Who, as they were named then.")
    action = models.CharField(max_length=40)
    subject_user_id = models.BigIntegerField(null=True, blank=True, help_text="Whose data or account.")
    target = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-at"]
        indexes = [models.Index(fields=["subject_user_id", "at"], name="usage_audit_subject")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


class Dashboard(UsageRecord):
    """The admin dashboard's entry (a proxy: no table). Its view permission is who may see it."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
