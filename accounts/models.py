"""Users (email login, or guests with none) and the tiers that decide what they may do."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.managers import UserManager


class Tier(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    system_prompt = models.TextField(
        blank=True,
        max_length=8000,
        help_text="Added to every conversation of this tier's users, after the platform prompt.",
    )
    is_guest_default = models.BooleanField(default=False, help_text="New guests get this tier.")
    is_registered_default = models.BooleanField(default=False, help_text="New accounts get this tier.")
    # Rate limits (accounts.limits): one token bucket per user for messages, one for model tokens.
    # A capacity is the burst; the per-minute rate refills it. Zero capacity means no access.
    message_capacity = models.PositiveIntegerField(
        default=20, help_text="Messages a user may send in a burst. 0 means no sending at all."
    )
    messages_per_minute = models.FloatField(
        default=10, validators=[MinValueValidator(0)], help_text="How fast the message allowance refills."
    )
    token_capacity = models.PositiveIntegerField(
        default=200_000, help_text="Model tokens (input + output) a user may use in a burst. 0 means none."
    )
    tokens_per_minute = models.FloatField(
        default=100_000, validators=[MinValueValidator(0)], help_text="How fast the token allowance refills."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(messages_per_minute__gte=0) & Q(tokens_per_minute__gte=0),
                name="accounts_tier_refill_rates_not_negative",
                violation_error_message="Refill rates cannot be negative.",
            ),
            models.UniqueConstraint(
                fields=["is_guest_default"],
                condition=Q(is_guest_default=True),
                name="accounts_tier_one_guest_default",
                violation_error_message="Another tier is already the guest default.",
            ),
            models.UniqueConstraint(
                fields=["is_registered_default"],
                condition=Q(is_registered_default=True),
                name="accounts_tier_one_registered_default",
                violation_error_message="Another tier is already the registered default.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractBaseUser, PermissionsMixin):
    """A person. A guest has no email and no usable password and lives on a session cookie;
    signing up turns the same row into a registered user, so nothing of theirs moves."""

    # Stored as typed; uniqueness ignores case (the Lower constraint below).
    email = models.EmailField(unique=True, null=True, blank=True)
    display_name = models.CharField(max_length=150, blank=True)
    # The user's own layer of the system prompt (chat.prompts), between the tier's and a chat's.
    custom_instructions = models.TextField(blank=True, max_length=4000)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="users")
    is_guest = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    created_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="accounts_user_email_ci_unique",
                violation_error_message="An account with this email already exists.",
            ),
            models.CheckConstraint(
                condition=Q(is_guest=True, email__isnull=True) | Q(is_guest=False, email__isnull=False),
                name="accounts_user_email_iff_registered",
            ),
        ]

    def __str__(self) -> str:
        return self.email or f"guest #{self.pk}"

    def get_full_name(self) -> str:
        return self.display_name or str(self)

    def get_short_name(self) -> str:
        return self.display_name or (self.email or "guest").split("@")[0]


class UsageBucket(models.Model):
    """One user's token bucket of one kind (accounts.limits). `tokens` is the level at
    `updated_at`; the refill since then is computed on every change, never stored ahead.
    A row is created full on first use; a missing row reads as a full bucket."""

    class Kind(models.TextChoices):
        MESSAGES = "messages"
        TOKENS = "tokens"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="usage_buckets")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # May be negative: limit_charge books real usage past what was reserved.
    tokens = models.FloatField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="accounts_usagebucket_one_per_user_and_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind}: {self.tokens:g}"


class PersonalToken(models.Model):
    """A personal access token: a program acts as its user through the JSON API (accounts.tokens).
    Only the SHA-256 of the secret is kept; the secret is shown once, when it is made. `prefix`
    (the secret's first characters) tells tokens apart in a list without revealing them."""

    class Scope(models.TextChoices):
        READ = "read", "Read"  # GET and HEAD only
        CHAT = "chat", "Read and chat"  # every method the API allows the user

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="personal_tokens")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_token_user_recent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"
