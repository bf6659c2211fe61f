from __future__ import annotations

from django.urls import URLPattern, path

from providers import views

app_name = "providers"

urlpatterns: list[URLPattern] = [
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/", views.key_detail, name="key"),
    path("keys/<int:key_id>/test/", views.key_test, name="key-test"),
    path("endpoints/", views.endpoints, name="endpoints"),
    path("endpoints/<int:endpoint_id>/", views.endpoint_detail, name="endpoint"),
    path("endpoints/<int:endpoint_id>/test/", views.endpoint_test, name="endpoint-test"),
    path("models/", views.byok_models, name="models"),
    path("models/<int:model_id>/", views.byok_model_detail, name="model"),
]
