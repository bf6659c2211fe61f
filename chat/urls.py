"""The chat JSON API, mounted under /api/ (the share pages are mounted at /share/ in config.urls)."""

from __future__ import annotations

from django.urls import URLPattern, path

from chat import api, uploads_api

app_name = "chat"

urlpatterns: list[URLPattern] = [
    path("chats", api.chats_list, name="chats"),
    path("chats/changes", api.chats_changes, name="changes"),
    path("chats/<uuid:chat_id>", api.chat_detail, name="chat"),
    path("chats/<uuid:chat_id>/fork", api.chat_fork, name="fork"),
    path("chats/<uuid:chat_id>/share", api.chat_share, name="share"),
    path("chats/<uuid:chat_id>/export", api.chat_export, name="export"),
    path("messages/<uuid:message_id>/vote", api.message_vote, name="vote"),
    path("uploads", uploads_api.uploads, name="uploads"),
    path("uploads/<uuid:upload_id>", uploads_api.upload_file, name="upload"),
]
