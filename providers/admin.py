"""The catalog in the admin: creators, providers (keys write-only, shown masked), models with
their routes, tiers' model access (a two-pane picker on the Tier page), BYOK rows read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import TierAdmin
from accounts.models import Tier
from providers.catalogcache import catalog_changed
from providers.models import (
    Creator,
    Model,
    ModelProvider,
    Provider,
    TierAccess,
    UserByokModel,
    UserCustomProvider,
    UserProviderKey,
)
from providers.secrets import SecretUnreadable, decrypt_secret, encrypt_secret, mask_secret
from providers.services import provider_check


def _masked(token: str) -> str:
    if not token:
        return "—"
    try:
        return mask_secret(decrypt_secret(token))
    except SecretUnreadable:
        return "unreadable (rotate or re-enter)"


@admin.register(Creator)
class CreatorAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]


class ProviderForm(forms.ModelForm):
    new_api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted; leave empty to keep the current key. The key is never shown again.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Provider
        fields = [
            "slug",
            "name",
            "protocol",
            "base_url",
            "base_url_env",
            "api_key_env",
            "requires_key",
            "enabled",
        ]

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            provider.api_key_encrypted = ""
        elif self.cleaned_data.get("new_api_key"):
            provider.api_key_encrypted = encrypt_secret(self.cleaned_data["new_api_key"])
        if commit:
            provider.save()
        return provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "slug", "protocol", "enabled", "key_source", "stored_key"]
    list_filter = ["protocol", "enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["stored_key"]
    actions = ["test_providers"]

    @admin.display(description="stored key")
    def stored_key(self, provider: Provider) -> str:
        return _masked(provider.api_key_encrypted)

    @admin.display(description="key from")
    def key_source(self, provider: Provider) -> str:
        if provider.api_key_encrypted:
            return "stored"
        return f"${provider.api_key_env}" if provider.api_key_env else "—"

    @admin.action(description="Test the selected providers' keys")
    def test_providers(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            health = provider_check(provider=provider)
            level = messages.SUCCESS if health.healthy else messages.WARNING
            self.message_user(request, f"{provider.slug}: {health.detail}", level)


class ModelProviderInline(admin.TabularInline):
    model = ModelProvider
    extra = 0
    autocomplete_fields = ["provider"]
    fields = ["provider", "provider_model_id", "priority", "enabled"]


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    inlines = [ModelProviderInline]
    list_display = [
        "model_id",
        "display_name",
        "creator",
        "enabled",
        "supports_tools",
        "supports_reasoning",
        "input_price_per_mtok",
        "output_price_per_mtok",
    ]
    list_filter = ["creator", "enabled", "supports_tools", "supports_reasoning"]
    list_select_related = ["creator"]
    search_fields = ["model_id", "display_name"]
    actions = ["enable", "disable", "test_models"]

    @admin.action(description="Enable the selected models")
    def enable(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        changed = queryset.update(enabled=True)
        catalog_changed()  # update() sends no signal
        self.message_user(request, f"Enabled {changed} models.")

    @admin.action(description="Disable the selected models")
    def disable(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        changed = queryset.update(enabled=False)
        catalog_changed()  # update() sends no signal
        self.message_user(request, f"Disabled {changed} models.")

    @admin.action(description="Test the providers of the selected models")
    def test_models(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        providers = Provider.objects.filter(routes__model__in=queryset).distinct()
        for provider in providers:
            health = provider_check(provider=provider)
            level = messages.SUCCESS if health.healthy else messages.WARNING
            self.message_user(request, f"{provider.slug}: {health.detail}", level)


class TierAccessInline(admin.StackedInline):
    model = TierAccess
    can_delete = False
    filter_horizontal = ["allowed_models"]
    autocomplete_fields = ["default_model"]


# The Tier page belongs to accounts, which knows nothing of models: the picker is added here.
admin.site.unregister(Tier)


@admin.register(Tier)
class TierWithModelsAdmin(TierAdmin):
    inlines = [*TierAdmin.inlines, TierAccessInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Users' own rows: visible for support, never editable here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UserProviderKey)
class UserProviderKeyAdmin(ReadOnlyAdmin):
    list_display = ["user", "provider", "masked_key", "created_at"]
    list_select_related = ["user", "provider"]
    exclude = ["api_key_encrypted"]
    readonly_fields = ["masked_key"]

    @admin.display(description="key")
    def masked_key(self, row: UserProviderKey) -> str:
        return _masked(row.api_key_encrypted)


@admin.register(UserCustomProvider)
class UserCustomProviderAdmin(ReadOnlyAdmin):
    list_display = ["name", "user", "base_url", "masked_key", "created_at"]
    list_select_related = ["user"]
    exclude = ["api_key_encrypted"]
    readonly_fields = ["masked_key"]

    @admin.display(description="key")
    def masked_key(self, row: UserCustomProvider) -> str:
        return _masked(row.api_key_encrypted)


@admin.register(UserByokModel)
class UserByokModelAdmin(ReadOnlyAdmin):
    list_display = ["slug", "display_name", "user", "provider", "custom_provider", "provider_model_id"]
    list_select_related = ["user", "provider", "custom_provider"]
