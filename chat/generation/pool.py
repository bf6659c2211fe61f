"""The thread pool generations' and sockets' database work runs on."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings

# Not Channels' single thread-sensitive thread nor the loop's default pool (2 cores: 6 threads).
# It stays below the connection pool's size (DATABASE_POOL_MAX), so a thread never waits for a
# connection.
_db_executor = ThreadPoolExecutor(max_workers=settings.DATABASE_THREADS, thread_name_prefix="arbor-db")
sync_db = functools.partial(database_sync_to_async, thread_sensitive=False, executor=_db_executor)
