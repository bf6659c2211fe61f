"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("arbor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="arbor.ping")
def ping(payload: str = "pong") -> str:
    """Echoes its payload: proves a round trip through the broker, a worker and the results."""
    return payload
