"""The sockets of a session: the channel-layer group they join, the event that closes them, and
whether a session still signs its user in.

A socket is authenticated once, by its session cookie, at the handshake; it must not outlive the
session. When a session ends (sign-out, a password change cycling the key, a flush, an operator
deleting it, expiry cleanup) the apps holding sockets send `SESSION_ENDED_EVENT` to
`session_group(key)` (chat does, from `chat/receivers.py`), and each socket closes with 4401.
"""

from __future__ import annotations

import hashlib
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

# Sent to a session's group (or a user's): every socket in it closes as signed out.
SESSION_ENDED_EVENT = "session.ended"


def session_group(session_key: str) -> str:
    """The group every socket opened on this session joins. The key is hashed: it is a bearer
    credential, and group names are stored in Redis."""
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


DB_ENGINE = "django.contrib.sessions.backends.db"
# Every turn asks (a socket must not outlive its session): one statement of constant text, not
# the ORM query the store's `load` builds each time.
_UNEXPIRED_DATA = f"SELECT session_data FROM {Session._meta.db_table} WHERE session_key = %s AND expire_date > %s"


def session_signed_in(*, session_key: str | None, user_id: int) -> bool:
    """Whether the session still exists, unexpired, signed in as `user_id` (one read of the
    session store, by its key)."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if settings.SESSION_ENGINE != DB_ENGINE:
        return str(store.load().get(SESSION_KEY)) == str(user_id)
    with connection.cursor() as cursor:
        cursor.execute(_UNEXPIRED_DATA, [session_key, timezone.now()])
        row = cursor.fetchone()
    return row is not None and str(store.decode(row[0]).get(SESSION_KEY)) == str(user_id)
