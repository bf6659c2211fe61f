"""The artifacts JSON API, mounted under /api/."""

from __future__ import annotations

from django.urls import URLPattern, path

from artifacts import api

app_name = "artifacts"

urlpatterns: list[URLPattern] = [
    path("documents", api.documents_list, name="documents"),
    path("documents/<uuid:document_id>", api.document_detail, name="document"),
    path("documents/<uuid:document_id>/versions", api.document_versions, name="versions"),
    path("documents/<uuid:document_id>/versions/<int:number>", api.version_detail, name="version"),
    path("documents/<uuid:document_id>/versions/<int:number>/restore", api.version_restore, name="restore"),
    path("documents/<uuid:document_id>/diff", api.document_diff, name="diff"),
    path("documents/<uuid:document_id>/download", api.document_download, name="download"),
    path("documents/<uuid:document_id>/suggestions", api.document_suggestions, name="suggestions"),
    path("suggestions/<uuid:suggestion_id>/accept", api.suggestion_accept, name="accept"),
    path("suggestions/<uuid:suggestion_id>/reject", api.suggestion_reject, name="reject"),
]
