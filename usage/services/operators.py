"""What operators do to accounts: disable and enable, change a tier, prune idle guests, and the
audit log every such act (and every view of a user's chat) is written to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Tier, User
from usage.models import AuditEntry
from usage.signals import user_disabled


def _label(actor: User | None) -> str:
    return str(actor) if actor is not None else "manage.py"


def audit_record(
    *, actor: User | None, action: str, subject_user_id: int | None = None, target: str = "", detail: str = ""
) -> AuditEntry:
    """Write one audit entry. `actor` None means the command line."""
    return AuditEntry.objects.create(
        actor=actor,
        actor_label=_label(actor)[:254],
        action=action,
        subject_user_id=subject_user_id,
        target=target[:200],
        detail=detail[:500],
    )


def user_disable(*, user: User, actor: User | None) -> None:
    """Disable an account at once: no new request or turn is accepted (Django refuses inactive
    users' sessions; the turn admission re-reads `is_active`), and `user_disabled` is sent so
    the apps above stop what the user has running (chat closes their sockets and stops their
    replies, so spending stops too)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        audit_record(actor=actor, action="user.disable", subject_user_id=user.pk, target=str(user))
    user.is_active = False
    user_disabled.send(sender=User, user_id=user.pk)


def user_enable(*, user: User, actor: User | None) -> None:
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=True)
        audit_record(actor=actor, action="user.enable", subject_user_id=user.pk, target=str(user))
    user.is_active = True


class UnknownUser(Exception):
    pass


class UnknownTier(Exception):
    pass


def user_tier_set(*, email: str, tier_slug: str, actor: User | None = None) -> tuple[User, Tier, Tier]:
    """Move the account with this email (any case) to the tier with this slug; (user, old, new).
    Rate limits and quotas of the new tier apply from the user's next turn."""
    user = User.objects.filter(email__iexact=email.strip()).select_related("tier").first()
    if user is None:
        raise UnknownUser(email)
    tier = Tier.objects.filter(slug=tier_slug).first()
    if tier is None:
        raise UnknownTier(tier_slug)
    old = user.tier
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(tier=tier)
        detail = f"{old.slug} → {tier.slug}"
        audit_record(actor=actor, action="user.tier", subject_user_id=user.pk, target=str(user), detail=detail)
    user.tier = tier
    return user, old, tier


# --- Idle guests --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PruneResult:
    guests: int
    deleted: bool


def idle_guests(*, days: int, now: datetime | None = None) -> QuerySet[User]:
    """Guests with no sign-in, chat activity or generation in the last `days` days."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    # Each multi-valued exclude is its own NOT EXISTS subquery (no join fan-out).
    return (
        User.objects.filter(is_guest=True, date_joined__lt=cutoff)
        .filter(Q(last_login__isnull=True) | Q(last_login__lt=cutoff))
        .exclude(chats__last_activity_at__gte=cutoff)
        .exclude(usage_records__created_at__gte=cutoff)
    )


def guests_prune(*, days: int, apply: bool, now: datetime | None = None, batch: int = 500) -> PruneResult:
    """Delete idle guests with their data (chats and messages, keys, buckets; their usage rows
    stay, anonymous), in batches; with `apply` False only count them."""
    guests = idle_guests(days=days, now=now)
    if not apply:
        return PruneResult(guests=guests.count(), deleted=False)
    deleted = 0
    while ids := list(guests.values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            User.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    if deleted:
        audit_record(actor=None, action="guests.prune", detail=f"{deleted} guests idle for {days} days")
    return PruneResult(guests=deleted, deleted=True)
