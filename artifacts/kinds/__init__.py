"""The kinds of document, in a registry: kind → the module holding its `HANDLER`.

A new kind is a new module in this package (a `Kind` subclass instance named `HANDLER`) and one
line here. Handlers are imported on first use.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from artifacts.kinds.base import Kind, KindError

KINDS: dict[str, str] = {
    "text": "artifacts.kinds.text",
    "code": "artifacts.kinds.code",
    "sheet": "artifacts.kinds.sheet",
    "image": "artifacts.kinds.image",
}


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def kind_handler(name: object) -> Kind:
    """The handler of kind `name`; KindError (naming the kinds there are) for any other value."""
    if not isinstance(name, str) or name not in KINDS:
        shown = name[:40] if isinstance(name, str) else type(name).__name__
        raise KindError(f"There is no document kind {shown!r}; use one of: {', '.join(KINDS)}.")
    return _loaded(name)


@cache
def _loaded(name: str) -> Kind:
    handler: Kind = import_module(KINDS[name]).HANDLER
    return handler


__all__ = ["KINDS", "Kind", "KindError", "kind_handler", "kind_names"]
