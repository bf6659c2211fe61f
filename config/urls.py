from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from chat import api as chat_api
from config import views
from config.api import api
from gateway.api import v1

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("accounts/", include("accounts.urls")),
    path("", include("web.urls")),
    path("api/", api.urls),
    path("v1/", v1.urls),
    path("api/providers/", include("providers.urls")),
    path("api/", include("chat.urls")),
    path("api/", include("artifacts.urls")),
    path("share/<str:token>", chat_api.share_page, name="share"),
    path("share/<str:token>/fork", chat_api.share_fork, name="share-fork"),
    path("admin/", admin.site.urls),
]
