from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accounts.models import PersonalToken, Tier, User
from accounts.tokens import tokens_revoke_all

LIMIT_FIELDS = ["message_capacity", "messages_per_minute", "token_capacity", "tokens_per_minute"]


class TierForm(forms.ModelForm):
    """The rate limits may be left out of a post (or blank): the tier keeps its current numbers
    (a new tier: the defaults), so forms and scripts written before the limits still save."""

    class Meta:
        model = Tier
        fields = [
            "name",
            "slug",
            "description",
            "system_prompt",
            "is_guest_default",
            "is_registered_default",
            *LIMIT_FIELDS,
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in LIMIT_FIELDS:
            if name in self.fields:
                self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in LIMIT_FIELDS:
            if name in self.fields and cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    form = TierForm
    list_display = [
        "name",
        "slug",
        "is_guest_default",
        "is_registered_default",
        "message_capacity",
        "messages_per_minute",
        "token_capacity",
        "tokens_per_minute",
        "user_count",
    ]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_guest_default", "is_registered_default"]}),
        ("System prompt", {"fields": ["system_prompt"]}),
        (
            "Rate limits",
            {
                "fields": LIMIT_FIELDS,
                "description": "Each user has a bucket of messages and one of model tokens (BYOK models "
                "included): the capacity is the burst, the rate per minute refills it. 0 capacity: no access.",
            },
        ),
    ]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tier]:
        return super().get_queryset(request).annotate(user_count=Count("users"))

    @admin.display(ordering="user_count", description="users")
    def user_count(self, tier: Tier) -> int:
        return tier.user_count  # type: ignore[attr-defined]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["-date_joined"]
    list_display = ["__str__", "display_name", "tier", "is_guest", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_guest", "tier", "is_staff", "is_superuser", "is_active"]
    list_select_related = ["tier"]
    search_fields = ["email", "display_name"]
    readonly_fields = ["date_joined", "last_login", "created_ip"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["display_name", "tier", "is_guest"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("History", {"fields": ["date_joined", "last_login", "created_ip"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "tier", "password1", "password2"]})]


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin):
    """Operators see who holds tokens and may revoke them; a token's secret is never stored."""

    list_display = ["name", "user", "scope", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__email"]
    readonly_fields = list_display
    exclude = ["digest"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is made by its user, who alone sees its secret

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        revoked = tokens_revoke_all(queryset)
        self.message_user(request, f"Revoked {revoked} tokens.")
