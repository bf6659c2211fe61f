"""`manage.py rotate_secrets`: every stored secret re-encrypted under the newest key."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings

from accounts.tests.factories import UserFactory
from providers.management.commands.rotate_secrets import Command
from providers.models import Provider, UserCustomProvider, UserProviderKey
from providers.secrets import SecretUnreadable, decrypt_secret, encrypt_secret
from providers.secrets_rotation import secrets_rotate
from providers.tests.catalog_fixtures import make_provider

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def stored_under_old_key(settings: Settings) -> dict[str, str]:
    """A platform key, a user's key and an endpoint key, all encrypted under OLD_KEY."""
    settings.SECRET_ENCRYPTION_KEYS = [OLD_KEY]
    user = UserFactory()
    provider = make_provider("openai")
    Provider.objects.filter(pk=provider.pk).update(api_key_encrypted=encrypt_secret("sk-platform-000000001"))
    UserProviderKey.objects.create(user=user, provider=provider, api_key_encrypted=encrypt_secret("sk-user-0000000002"))
    UserCustomProvider.objects.create(
        user=user, name="mine", base_url="https://93.184.216.34/v1", api_key_encrypted=encrypt_secret("sk-end-0000003")
    )
    UserCustomProvider.objects.create(user=user, name="keyless", base_url="https://93.184.216.34/v1")
    return stored_tokens()


def stored_tokens() -> dict[str, str]:
    return {
        "platform": Provider.objects.get().api_key_encrypted,
        "user": UserProviderKey.objects.get().api_key_encrypted,
        "endpoint": UserCustomProvider.objects.get(name="mine").api_key_encrypted,
    }


def test_rotation_reencrypts_every_secret_so_only_the_new_key_is_needed(
    stored_under_old_key: dict[str, str], settings: Settings
) -> None:
    settings.SECRET_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)

    rotated = stored_tokens()
    assert all(rotated[name] != stored_under_old_key[name] for name in rotated)
    settings.SECRET_ENCRYPTION_KEYS = [NEW_KEY]
    assert {name: decrypt_secret(token) for name, token in rotated.items()} == {
        "platform": "sk-platform-000000001",
        "user": "sk-user-0000000002",
        "endpoint": "sk-end-0000003",
    }
    assert UserCustomProvider.objects.get(name="keyless").api_key_encrypted == ""
    assert "Rotated 3 secret(s)" in out.getvalue()
    assert "providers.UserProviderKey: 1 rotated" in out.getvalue()


def test_without_rotation_the_old_secrets_are_unreadable_under_the_new_key_alone(
    stored_under_old_key: dict[str, str], settings: Settings
) -> None:
    settings.SECRET_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(SecretUnreadable):
        decrypt_secret(stored_under_old_key["user"])


def test_secrets_no_key_can_read_are_left_alone_counted_and_fail_the_command(
    stored_under_old_key: dict[str, str], settings: Settings
) -> None:
    foreign = Fernet(Fernet.generate_key()).encrypt(b"sk-lost").decode()
    UserProviderKey.objects.update(api_key_encrypted=foreign)
    settings.SECRET_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    with pytest.raises(CommandError, match="1 secret"):
        call_command("rotate_secrets", stdout=StringIO())
    assert UserProviderKey.objects.get().api_key_encrypted == foreign
    settings.SECRET_ENCRYPTION_KEYS = [NEW_KEY]
    assert decrypt_secret(Provider.objects.get().api_key_encrypted) == "sk-platform-000000001"


def test_rotating_twice_keeps_every_secret_readable(stored_under_old_key: dict[str, str], settings: Settings) -> None:
    settings.SECRET_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    first = secrets_rotate()
    second = secrets_rotate()
    assert first.total_rotated == second.total_rotated == 3
    assert decrypt_secret(UserProviderKey.objects.get().api_key_encrypted) == "sk-user-0000000002"


def test_the_help_shows_an_example() -> None:
    help_text = Command().create_parser("manage.py", "rotate_secrets").format_help()
    assert "Example:" in help_text
    assert "rotate_secrets" in help_text
