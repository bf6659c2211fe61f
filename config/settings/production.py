"""Production: refuses unsafe values before anything else loads, then hardens the base."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env
from config.settings.production_checks import production_problems

_problems = production_problems(os.environ)
if _problems:
    raise ImproperlyConfigured("\n".join(_problems))

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import STORAGES  # noqa: E402
from config.settings.env import BASE_DIR  # noqa: E402

DEBUG = False
STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
WHITENOISE_USE_FINDERS = False
STATIC_ROOT = BASE_DIR / "staticfiles"

# Behind a TLS-terminating proxy, it says the original scheme in X-Forwarded-Proto.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
