from __future__ import annotations

import pytest
from django.test import Client, override_settings

from config.settings.base import redis_backed_settings

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.django_db
def test_healthz_answers_200_when_the_database_redis_and_a_worker_answer(celery_worker_process: object) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"] and body["celery"]["ok"]


@pytest.mark.django_db
def test_healthz_answers_503_and_names_what_is_down_when_redis_is_unreachable() -> None:
    with override_settings(CACHES=redis_backed_settings(CLOSED_PORT_REDIS)["CACHES"]):
        response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is False
    assert body["celery"] == {"ok": False, "detail": "broker unreachable", "latency_ms": 0.0}
    assert "127.0.0.1:1" not in response.content.decode()


def test_probes_answer_whatever_host_a_load_balancer_asks_for() -> None:
    response = Client(HTTP_HOST="10.0.0.7:8000").get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_other_pages_still_refuse_an_unknown_host() -> None:
    assert Client(HTTP_HOST="evil.example").get("/accounts/signin/").status_code == 400
