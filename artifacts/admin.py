from __future__ import annotations

from django.contrib import admin

from artifacts.models import Document, DocumentVersion, Suggestion


class VersionInline(admin.TabularInline):
    model = DocumentVersion
    fields = ("number", "author", "message", "restored_from", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False  # versions come from the model, edits and restores, never from here


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "owner", "version_count", "updated_at")
    list_filter = ("kind",)
    search_fields = ("title", "owner__email")
    raw_id_fields = ("owner", "chat", "created_from_message")
    readonly_fields = ("version_count", "created_at", "updated_at")
    inlines = [VersionInline]


@admin.register(DocumentVersion)
class DocumentVersionAdmin(admin.ModelAdmin):
    list_display = ("document", "number", "author", "created_at")
    raw_id_fields = ("document", "message")

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False  # a version is never changed


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    list_display = ("description", "state", "version", "created_at")
    list_filter = ("state",)
    raw_id_fields = ("version", "applied_version")
