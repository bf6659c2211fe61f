"""Tools the model may call while writing a reply, in a registry that other apps fill.

`chat` knows no tool by name: an app registers its tools from its `AppConfig.ready()` with
`tool_register` (artifacts registers create_document, update_document, request_suggestions),
and the runner offers every registered tool to a model whose route says it supports tool calls.

A tool is a `ToolSpec` (name, description, JSON Schema of its arguments) and an async `run`.
`run` gets the parsed arguments (always a dict) and a `ToolContext`; it returns a `ToolResult`
whose `content` the model reads and whose `data` is kept in the reply (for the browser). It
raises `ToolFailure` for anything the user or the model got wrong (a bad argument, another
user's id): the message goes back to the model as an error result, so it can recover, and the
reply goes on. `tool_call_run` turns every other outcome (malformed JSON, an unknown tool, a
crash) into an error result too: a tool never ends a reply.

Tools run in the ASGI event loop: database work goes through `chat.generation.sync_db`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from providers.contract import ToolCall, ToolSpec

logger = logging.getLogger(__name__)

Frame = dict[str, Any]


@dataclass(frozen=True)
class ToolContext:
    """Who called the tool and where its live output goes."""

    user_id: int
    chat_id: str
    message_id: str  # the assistant reply whose model made the call
    model_id: str  # that reply's model, "creator:model"
    # Adds a frame (e.g. `{"type": "artifact_delta", ...}`) to the reply's stream: numbered,
    # delivered to every tab following the reply, and replayed on resume like any delta.
    emit: Callable[[Frame], Awaitable[None]]


@dataclass(frozen=True)
class ToolResult:
    content: str  # what the model reads
    error: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # kept in the reply's tool_result part


class ToolFailure(Exception):
    """A refusal the model may learn from: `message` is shown to the user and sent to the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Tool(Protocol):
    spec: ToolSpec

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult: ...


_REGISTRY: dict[str, Tool] = {}


def tool_register(tool: Tool) -> None:
    """Offer `tool` to tool-calling models (replacing a tool of the same name)."""
    _REGISTRY[tool.spec.name] = tool


def tools_registered() -> tuple[Tool, ...]:
    return tuple(_REGISTRY.values())


@contextmanager
def tools_replaced(*tools: Tool) -> Iterator[None]:
    """Exactly `tools` are registered inside the block (for tests)."""
    saved = dict(_REGISTRY)
    _REGISTRY.clear()
    for tool in tools:
        tool_register(tool)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)


async def tool_call_run(call: ToolCall, context: ToolContext) -> ToolResult:
    """Run one call the model made; every failure comes back as an error result."""
    tool = _REGISTRY.get(call.name)
    if tool is None:
        return ToolResult(f"There is no tool named {call.name[:80]!r}.", error=True)
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        return ToolResult(f"The arguments of {call.name} are not valid JSON.", error=True)
    if not isinstance(arguments, dict):
        return ToolResult(f"The arguments of {call.name} must be a JSON object.", error=True)
    try:
        return await tool.run(arguments, context)
    except ToolFailure as failure:
        return ToolResult(failure.message, error=True)
    except Exception:
        logger.exception("tool %s failed", call.name)
        return ToolResult(f"The tool {call.name} failed; try again or go on without it.", error=True)
