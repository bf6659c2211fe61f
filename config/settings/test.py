"""Tests: the same real servers as development, kept apart from its data.

PostgreSQL: pytest-django creates and migrates `test_<name>` beside the configured database.
Redis: the tests use logical database 15 of the configured server and flush it freely.
"""

from __future__ import annotations

from config.redis_urls import redis_url_with_db
from config.settings.base import *  # noqa: F403
from config.settings.base import REDIS_URL, redis_backed_settings

TEST_REDIS_DB = 15

DEBUG = False
globals().update(redis_backed_settings(redis_url_with_db(REDIS_URL, TEST_REDIS_DB)))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEMO_TOKEN_DELAY = 0.0
PROVIDER_RETRY_BASE_DELAY = 0.01
