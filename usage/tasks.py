"""Usage's Celery tasks (thin: each calls one service). Scheduled by CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="usage.rollup_recent")
def rollup_recent() -> int:
    """Recompute yesterday's and today's daily roll-ups; safe to run twice or concurrently."""
    from usage.services.rollups import rollups_recent

    return rollups_recent()


@shared_task(name="usage.prune_ledger")
def prune_ledger() -> int:
    """Drop spend-ledger rows of periods before last month (quotas read only current ones)."""
    from datetime import timedelta

    from django.utils import timezone

    from usage.services.quotas import ledger_prune

    first_of_month = timezone.localdate().replace(day=1)
    return ledger_prune(before=(first_of_month - timedelta(days=1)).replace(day=1))
