"""Chat's Celery tasks: short jobs that may wait. Streaming never waits on them.

Tasks take ids, are queued after the transaction that made their input commits, and import
their service inside (thin: parse, call one service).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import transaction


# Acknowledged once done, and handed back if its worker dies: titling twice is harmless (a chat
# with a title, the user's or a first run's, is left as it is), losing the title is not.
@shared_task(name="chat.title_chat", acks_late=True, reject_on_worker_lost=True)
def title_chat(chat_id: str) -> str:
    """Title a chat after its first exchange (see chat.services.titles); returns the title."""
    from chat.services.titles import chat_title_generate

    return chat_title_generate(chat_id=chat_id)


def title_chat_after_commit(chat_id: Any) -> None:
    """Queue `title_chat` once the current transaction commits (at once outside one), so the
    worker sees the first exchange and a rolled-back turn queues nothing. Nobody here waits for
    its result (the title reaches the tabs by itself): asking for one subscribed the web process
    to the task's result channel and had the worker store it, for every new chat."""
    transaction.on_commit(lambda: title_chat.apply_async((str(chat_id),), ignore_result=True))
