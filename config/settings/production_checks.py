"""What production refuses to start with, read from the raw environment.

Checked before the base settings load, so production can never fall back to an embedded
server. Each problem is one line that names the variable to fix.
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.secrets import encryption_keys_problem

MIN_SECRET_KEY_LENGTH = 50
MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5
TRUE_WORDS = {"1", "true", "yes", "on", "y", "t"}


def production_problems(environ: Mapping[str, str]) -> list[str]:
    problems = []
    if not environ.get("DATABASE_URL"):
        problems.append("DATABASE_URL is not set: production refuses the embedded PostgreSQL")
    if not environ.get("REDIS_URL"):
        problems.append("REDIS_URL is not set: production refuses the embedded Redis")
    if environ.get("DEBUG", "").strip().lower() in TRUE_WORDS:
        problems.append("DEBUG is on: production refuses to show debug pages; unset DEBUG")
    secret_key = environ.get("SECRET_KEY", "")
    if not secret_key:
        problems.append("SECRET_KEY is not set: production needs a random key of 50+ characters")
    elif (
        len(secret_key) < MIN_SECRET_KEY_LENGTH
        or len(set(secret_key)) < MIN_SECRET_KEY_UNIQUE_CHARACTERS
        or secret_key.startswith("django-insecure")
        or "change-me" in secret_key
    ):
        problems.append(
            f"SECRET_KEY is a default or too short: use a random key of {MIN_SECRET_KEY_LENGTH}+ characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(50))")'
        )
    hosts = [host.strip() for host in environ.get("ALLOWED_HOSTS", "").split(",") if host.strip()]
    if not hosts:
        problems.append("ALLOWED_HOSTS is empty: name the host names this site answers to")
    # Split as the settings' env.list does (comma-separated, empty entries dropped, no strip).
    encryption_keys = [key for key in environ.get("SECRET_ENCRYPTION_KEYS", "").split(",") if key]
    keys_problem = encryption_keys_problem(encryption_keys)
    if keys_problem:
        problems.append(keys_problem)
    return problems
