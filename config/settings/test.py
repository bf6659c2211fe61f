"""Tests: the same real servers as development, kept apart from its data and from other runs.

Each test run has an id (`ARBOR_TEST_RUN`, the first process's pid, inherited by the processes
it starts: the Celery worker, `serve`), so two runs at once never share state:
- PostgreSQL: pytest-django creates `test_<name>_<run>` beside the configured database;
- Redis: one of the logical databases 8-15, claimed by the run (`config.testing_slots`); the
  suite empties it and its keys freely.
"""

from __future__ import annotations

import os

from config.redis_urls import redis_url_with_db
from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, REDIS_URL, redis_backed_settings
from config.testing_slots import redis_test_database

TEST_RUN = os.environ.setdefault("ARBOR_TEST_RUN", str(os.getpid()))
TEST_REDIS_DB = redis_test_database(int(TEST_RUN))

DEBUG = False
# The suite's own connection runs each test in a transaction it rolls back, which a pool (a
# connection per checkout) would break; the servers the suite starts (`serve`, the Celery
# worker) get DATABASE_POOL=true from `process_environment` and run pooled, as in production.
if not os.environ.get("DATABASE_POOL"):
    DATABASES["default"]["OPTIONS"].pop("pool", None)
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{TEST_RUN}"}
globals().update(redis_backed_settings(redis_url_with_db(REDIS_URL, TEST_REDIS_DB)))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite shares one real Celery worker across tests: a title task queued by a test that does
# not wait for it ran into a later test's teardown flush (a deadlock in TRUNCATE). The suite's
# own replies queue none; the servers it starts (`serve` for the browser tests) do, from
# `process_environment`, and the titles tests queue theirs explicitly.
CHAT_TITLES_AUTO = os.environ.get("CHAT_TITLES_AUTO", "false") == "true"
DEMO_TOKEN_DELAY = 0.0
# One web process unless the environment asks for more; the serve tests hand it to `serve`.
WEB_PROCESSES = int(os.environ.get("WEB_PROCESSES") or 1)
PROVIDER_RETRY_BASE_DELAY = 0.01
