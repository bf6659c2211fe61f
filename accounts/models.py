"""Users (email login, or guests with none) and the tiers that decide what they may do."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.managers import UserManager


class Tier(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    is_guest_default = models.BooleanField(default=False, help_text="New guests get this tier.")
    is_registered_default = models.BooleanField(default=False, help_text="New accounts get this tier.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
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
