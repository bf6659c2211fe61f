"""Secrets at rest: API keys are stored encrypted (Fernet), never shown in clear, never logged.

Keys come from SECRET_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first): the newest
encrypts, all of them decrypt, and `manage.py rotate_secrets` re-encrypts everything under the
newest. Unset, one key is derived from SECRET_KEY (fine for development; set real keys in
production so that rotating SECRET_KEY does not make stored keys unreadable). The derived key
always decrypts too, so setting explicit keys later loses nothing: run rotate_secrets then.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

MASK_VISIBLE_TAIL = 4


class SecretUnreadable(Exception):
    """A stored secret no configured key can decrypt (keys were changed without rotation)."""


GENERATE_KEY_HINT = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


def encryption_keys_problem(keys: Sequence[str]) -> str | None:
    """One line saying what is wrong with the SECRET_ENCRYPTION_KEYS list `keys`, or None.

    Checked at start in production (`config.settings.production_checks`): otherwise a malformed
    key passes unnoticed until the first key is saved or read, and then every such request fails.
    The line names entries by position only: it is printed, and a key is a secret."""
    bad = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:  # binascii.Error (not base64) is a ValueError too
            bad.append(str(position))
    if not bad:
        return None
    which = f"entry {bad[0]} of {len(keys)} is not a Fernet key"
    if len(bad) > 1:
        which = f"entries {', '.join(bad)} of {len(keys)} are not Fernet keys"
    return (
        f"SECRET_ENCRYPTION_KEYS {which} (32 url-safe base64-encoded bytes; comma-separated, newest first): "
        f"make one with {GENERATE_KEY_HINT}"
    )


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    derived = base64.urlsafe_b64encode(hashlib.sha256(f"arbor-secrets:{secret_key}".encode()).digest()).decode()
    # The key derived from SECRET_KEY always decrypts (last), so moving from it to explicit keys
    # keeps stored secrets readable until `rotate_secrets` re-encrypts them under the newest.
    return MultiFernet([Fernet(key.encode()) for key in (*keys, derived)])


def _cipher() -> MultiFernet:
    return _fernet(tuple(settings.SECRET_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt_secret(plain: str) -> str:
    return _cipher().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    if not token:
        return ""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with the configured keys") from None


def rotate_secret(token: str) -> str:
    """The same secret encrypted under the newest key."""
    if not token:
        return token
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("a stored secret cannot be decrypted with the configured keys") from None


def mask_secret(plain: str) -> str:
    """What a person may see of a key: its kind and last characters (`sk-…9f2c`)."""
    if not plain:
        return ""
    tail = plain[-MASK_VISIBLE_TAIL:] if len(plain) > MASK_VISIBLE_TAIL * 3 else ""
    head = plain.split("-", 1)[0] + "-" if "-" in plain[:8] else ""
    return f"{head}…{tail}"
