"""Reads for the web UI's own endpoints."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.utils import timezone

from accounts.models import UsageBucket, User
from providers.models import Provider, WireProtocol


def usage_levels(*, user: User, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each rate-limit bucket as the settings page shows it: what is available now against the
    tier's capacity, and how fast it refills. A missing bucket row is a full bucket; the refill
    since the row's last change is added here (accounts.limits does the same in SQL when it
    takes), using this process's clock: close enough for display, never used to admit a turn."""
    now = now or timezone.now()
    tier = user.tier
    rules = {
        UsageBucket.Kind.MESSAGES: (tier.message_capacity, tier.messages_per_minute),
        UsageBucket.Kind.TOKENS: (tier.token_capacity, tier.tokens_per_minute),
    }
    stored = {bucket.kind: bucket for bucket in UsageBucket.objects.filter(user=user)}
    levels: dict[str, dict[str, Any]] = {}
    for kind, (capacity, per_minute) in rules.items():
        bucket = stored.get(kind)
        if bucket is None:
            level = float(capacity)
        else:
            elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
            level = min(float(capacity), bucket.tokens + per_minute / 60 * elapsed)
        levels[str(kind)] = {"available": max(0, math.floor(level)), "capacity": capacity, "per_minute": per_minute}
    return levels


def key_providers() -> list[dict[str, str]]:
    """The providers a user may add a key for (the same set the keys API accepts)."""
    providers = Provider.objects.filter(enabled=True).exclude(protocol=WireProtocol.DEMO).order_by("name")
    return [{"slug": provider.slug, "name": provider.name} for provider in providers]
