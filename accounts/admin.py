from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from accounts.models import Tier, User


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_guest_default", "is_registered_default", "user_count"]
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
