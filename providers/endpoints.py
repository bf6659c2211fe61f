"""How to call a user's own endpoint (`UserCustomProvider`): its URL checked again by the SSRF
guard (the operator setting or DNS may have changed since it was saved) and every connection
made through the guarded client.

Both `routing` (a `byok:` model on the endpoint) and `byok` (the "test" button) need this; it
sits below both so that neither imports the other. It imports neither.
"""

from __future__ import annotations

from django.conf import settings

from providers.contract import Endpoint, Timeouts
from providers.models import UserCustomProvider
from providers.secrets import decrypt_secret
from providers.urlsafety import check_base_url, guarded_http_client


def custom_endpoint(*, custom_provider: UserCustomProvider, timeouts: Timeouts) -> Endpoint:
    """The endpoint to call now. Raises `UnsafeURL` (the URL is refused now) or
    `SecretUnreadable` (its key can no longer be decrypted). The caller closes `http_client`."""
    allow_private = settings.ALLOW_PRIVATE_PROVIDER_URLS
    base_url = check_base_url(custom_provider.base_url, allow_private=allow_private)
    return Endpoint(
        base_url=base_url,
        api_key=decrypt_secret(custom_provider.api_key_encrypted),
        timeouts=timeouts,
        http_client=guarded_http_client(allow_private=allow_private, timeouts=timeouts),
        provider=f"custom-{custom_provider.pk}",
    )
