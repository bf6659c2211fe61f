"""What usage does when accounts signals (connected in UsageConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from accounts.signals import guest_transfer_merging
from usage.services.quotas import quota_ledger_merge
from usage.services.rollups import rollups_forget_user


@receiver(guest_transfer_merging, dispatch_uid="usage.quota_ledger_merge")
def guest_spend_moves_with_the_guest(*, guest: Any, target: Any, **_: Any) -> None:
    """The guest's usage rows move to the account generically; the ledger and the roll-ups key
    users by a bare id, so they follow here."""
    quota_ledger_merge(guest_id=guest.pk, target_id=target.pk)
    rollups_forget_user(user_id=guest.pk)
