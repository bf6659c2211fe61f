"""Signals other apps answer without accounts importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `guest` and `target` inside `guest_data_transfer`'s transaction, before the guest's
# rows move: a receiver merges rows that would collide with the target's on a per-user unique
# constraint, or that point at the user by a bare id, which the generic move cannot see.
guest_transfer_merging = Signal()

# Sent with `user_id` once a changed password is committed (`accounts.receivers`): every session of
# the user signed in with the old one is void (Django checks each session's password hash), so a
# receiver ends what those sessions hold open. chat's closes the user's sockets.
password_changed = Signal()
