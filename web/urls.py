"""The web UI's own pages and endpoints (mounted at the site root by config.urls)."""

from __future__ import annotations

from django.urls import URLPattern, path

from web import views

app_name = "web"

urlpatterns: list[URLPattern] = [
    path("settings/", views.settings_page, name="settings"),
]
