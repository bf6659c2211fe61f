"""Reading a JSON API request's body: a JSON object, or ValueError."""

from __future__ import annotations

import json
from typing import Any


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a dict (an empty body is `{}`); ValueError for anything but a JSON object."""
    try:
        data = json.loads(body or b"{}")
    except UnicodeDecodeError as error:
        raise ValueError("not UTF-8") from error
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
