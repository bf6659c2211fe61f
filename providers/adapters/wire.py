"""Small readings every adapter needs from its vendor's wire: Retry-After, tool arguments, and
whether a failed read was the connection going away."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2


def retry_after_header(value: str | None) -> float | None:
    """`Retry-After` as seconds to wait: a number of seconds, or an HTTP date (never negative)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def arguments_object(arguments: str) -> dict[str, Any]:
    """A tool call's stored arguments as an object; what does not parse to one is sent as {}."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def connection_lost(error: BaseException) -> bool:
    """Whether a read of a response body failed because the connection went away (reset, closed
    mid-chunk), not because it timed out, could not connect or sent something unreadable."""
    return isinstance(error, httpx2.ReadError | httpx2.RemoteProtocolError)
