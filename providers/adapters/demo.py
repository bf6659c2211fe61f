"""The offline demo model: a working product with no keys and no network.

It answers with a labelled Markdown reply (a heading, a list, a code block) streamed word by
word at a realistic pace, and calls a tool when it is offered tools and the user asks for one by
name (`use create_document`), filling the tool's required arguments from its JSON Schema. After
a tool result it says what the tool answered.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings

from providers.adapters.base import Adapter
from providers.contract import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    Usage,
)

DEMO_MODEL_ID = "arbor-demo"


def _text_of(message: ChatMessage) -> str:
    return " ".join(part.text for part in message.parts if isinstance(part, TextPart))


def _answer(question: str) -> str:
    topic = question.strip().splitlines()[0][:80] if question.strip() else "your message"
    return (
        "**Arbor Demo (offline)** — this reply is generated locally, no model was called.\n\n"
        f"### About “{topic}”\n\n"
        "Here is what a real model's answer would look like:\n\n"
        "- Replies stream in as they are written.\n"
        "- **Markdown** is rendered: lists, tables, `inline code` and blocks.\n"
        "- Add an API key (see `.env.example`) to talk to a real model.\n\n"
        "```python\n"
        "def greet(name: str) -> str:\n"
        '    return f"Hello, {name}!"\n'
        "```\n"
    )


def _sample_arguments(tool: ToolSpec, question: str) -> dict[str, Any]:
    """Required properties filled with plausible values from the schema."""
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    arguments: dict[str, Any] = {}
    for name in tool.parameters.get("required", list(properties)):
        schema = properties.get(name, {})
        if "enum" in schema:
            arguments[name] = schema["enum"][0]
        elif schema.get("type") in {"integer", "number"}:
            arguments[name] = 1
        elif schema.get("type") == "boolean":
            arguments[name] = True
        else:
            arguments[name] = question[:60] or name
    return arguments


def _requested_tool(request: ChatRequest, question: str) -> ToolSpec | None:
    for tool in request.tools:
        if re.search(rf"\b{re.escape(tool.name)}\b", question):
            return tool
    return None


def _words(text: str) -> list[str]:
    """Chunks that keep whitespace, so the joined stream is exactly `text`."""
    return re.findall(r"\S+\s*|\s+", text)


class DemoAdapter(Adapter):
    protocol = "demo"

    async def list_models(self) -> list[str]:
        return [DEMO_MODEL_ID]

    async def _stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        delay = settings.DEMO_TOKEN_DELAY
        last = request.messages[-1] if request.messages else ChatMessage.text("user", "")
        question = _text_of(last)
        prompt_tokens = sum(len(_text_of(message).split()) for message in request.messages)

        tool = _requested_tool(request, question) if last.role == "user" else None
        if tool is not None:
            arguments = json.dumps(_sample_arguments(tool, question))
            yield ToolCallStart(index=0, id="demo-call-1", name=tool.name)
            await asyncio.sleep(delay)
            yield ToolCallDelta(index=0, arguments=arguments)
            yield ToolCallEnd(index=0)
            yield Usage(input_tokens=prompt_tokens, output_tokens=len(arguments.split()))
            yield Finish(FinishReason.TOOL_CALLS)
            return

        if last.role == "tool":
            text = f"**Arbor Demo (offline)** — the tool answered:\n\n> {question[:500]}\n"
        else:
            text = _answer(question)
        words = _words(text)
        for word in words:
            await asyncio.sleep(delay)
            yield TextDelta(word)
        yield Usage(input_tokens=prompt_tokens, output_tokens=len(words))
        yield Finish(FinishReason.STOP)
