from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from providers.secrets import (
    SecretUnreadable,
    decrypt_secret,
    encrypt_secret,
    encryption_keys_problem,
    mask_secret,
    rotate_secret,
)

KEY = "sk-proj-abcdefghijklmnop9f2c"


def test_a_secret_is_stored_as_a_token_that_reads_back() -> None:
    token = encrypt_secret(KEY)
    assert KEY not in token
    assert decrypt_secret(token) == KEY


def test_a_secret_is_shown_as_its_kind_and_last_characters() -> None:
    assert mask_secret(KEY) == "sk-…9f2c"
    assert mask_secret("AIzaSyD1234567890xyzw") == "…xyzw"
    assert mask_secret("short") == "…"
    assert mask_secret("") == ""


def test_secrets_stored_before_explicit_keys_were_set_stay_readable_and_rotate() -> None:
    old_token = encrypt_secret(KEY)  # under the key derived from SECRET_KEY
    new_key = Fernet.generate_key().decode()
    with override_settings(SECRET_ENCRYPTION_KEYS=[new_key]):
        assert decrypt_secret(old_token) == KEY
        rotated = rotate_secret(old_token)
        assert Fernet(new_key.encode()).decrypt(rotated.encode()).decode() == KEY


def test_the_newest_key_encrypts_and_older_ones_still_decrypt() -> None:
    older, newer = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(SECRET_ENCRYPTION_KEYS=[older]):
        token = encrypt_secret(KEY)
    with override_settings(SECRET_ENCRYPTION_KEYS=[newer, older]):
        assert decrypt_secret(token) == KEY
        assert Fernet(newer.encode()).decrypt(encrypt_secret(KEY).encode()).decode() == KEY


def test_a_token_no_configured_key_can_read_is_reported_not_guessed() -> None:
    stranger = Fernet(Fernet.generate_key()).encrypt(KEY.encode()).decode()
    with pytest.raises(SecretUnreadable):
        decrypt_secret(stranger)


def test_malformed_encryption_keys_are_named_by_position_in_one_line_never_quoted() -> None:
    good = Fernet.generate_key().decode()
    problem = encryption_keys_problem(["hunter2", good, good[:-2]])
    assert problem is not None
    assert problem.startswith("SECRET_ENCRYPTION_KEYS entries 1, 3 of 3 are not Fernet keys")
    assert "hunter2" not in problem and good[:-2] not in problem
    assert "\n" not in problem
    assert encryption_keys_problem([good]) is None
    assert encryption_keys_problem([]) is None
