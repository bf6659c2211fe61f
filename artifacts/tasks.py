"""Artifacts' Celery tasks: reviews that may wait (suggestions). Thin: ids in, one service."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction


# Acknowledged once done, and handed back if its worker dies: a batch is written once, so a
# second run of one whose worker died before any suggestion was saved reviews it again, and a
# second run of one that saved some adds nothing.
@shared_task(name="artifacts.suggest", acks_late=True, reject_on_worker_lost=True)
def suggest(version_id: int, batch: str) -> int:
    """Review one document version (see artifacts.suggestions); returns how many were saved."""
    from artifacts.suggestions import suggestions_generate

    return suggestions_generate(version_id=version_id, batch=batch)


def suggest_after_commit(*, version_id: int, batch: str) -> None:
    """Queue `suggest` once the current transaction commits (at once outside one), its result
    unasked for, as a title's (`chat.tasks.title_chat_after_commit`)."""
    transaction.on_commit(lambda: suggest.apply_async((version_id, batch), ignore_result=True))
