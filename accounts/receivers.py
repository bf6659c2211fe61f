"""What accounts announces about its own models (connected in AccountsConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.signals import password_changed


@receiver(post_save, sender=User, dispatch_uid="accounts.password_changed")
def password_change_announced(*, instance: User, created: bool, update_fields: Any = None, **_: Any) -> None:
    """`password_changed` after a saved `set_password` (the admin's form, `changepassword`, a
    guest signing up), once committed. `_password` is what Django itself keys its
    `password_changed` validators on: set by `set_password`, cleared after the save."""
    if created or getattr(instance, "_password", None) is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: password_changed.send(sender=User, user_id=user_id))
