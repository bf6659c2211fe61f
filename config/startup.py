"""Startup failures a person can fix end as `error: …` lines and exit code 2, not tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured

from config.embedded.base import EmbeddedServiceError

STARTUP_ERROR_EXIT_CODE = 2


class StartupError(Exception):
    """A problem found before serving (an unreachable URL, a busy port); one line per problem."""


@contextmanager
def exit_on_startup_error() -> Iterator[None]:
    try:
        yield
    except (ImproperlyConfigured, EmbeddedServiceError, StartupError) as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(STARTUP_ERROR_EXIT_CODE) from None
