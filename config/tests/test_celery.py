from __future__ import annotations

import pytest

from config.celery import app, ping


def test_tasks_are_queued_not_run_in_the_caller() -> None:
    assert app.conf.task_always_eager is False


@pytest.mark.django_db
def test_a_task_round_trips_through_the_broker_and_a_real_worker(celery_worker_process: object) -> None:
    result = ping.delay("round trip")
    assert result.get(timeout=20) == "round trip"
    assert result.successful()
