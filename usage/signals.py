"""Signals other apps answer without usage importing them (usage never imports chat)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `user_id` by `usage.services.operators.user_disable`, once the account is inactive
# (committed unless the caller holds a transaction): a receiver stops what the user has running
# now. chat's (`chat/receivers.py`) closes their sockets and stops their replies. Receivers are
# best effort and must not raise: the account stays disabled whatever they manage.
user_disabled = Signal()
