from __future__ import annotations

import json

from providers.adapters import adapter_for
from providers.contract import (
    ChatMessage,
    ChatRequest,
    Endpoint,
    Finish,
    FinishReason,
    TextDelta,
    ToolCallStart,
    ToolSpec,
    Usage,
)

DOCUMENT_TOOL = ToolSpec(
    name="create_document",
    description="Create a document",
    parameters={
        "type": "object",
        "properties": {"title": {"type": "string"}, "kind": {"type": "string", "enum": ["text", "code"]}},
        "required": ["title", "kind"],
    },
)


def _demo() -> object:
    return adapter_for("demo", Endpoint(provider="demo"))


async def test_the_demo_streams_a_labelled_markdown_answer_word_by_word() -> None:
    events = [event async for event in _demo().stream(ChatRequest("arbor-demo", (ChatMessage.text("user", "Hi"),)))]
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    assert text.startswith("**Arbor Demo (offline)**")
    assert "```python" in text
    assert "\n- " in text
    assert sum(isinstance(event, TextDelta) for event in events) > 20
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finish(FinishReason.STOP)


async def test_the_demo_calls_a_tool_asked_for_by_name_with_its_required_arguments() -> None:
    request = ChatRequest(
        "arbor-demo", (ChatMessage.text("user", "please use create_document for my essay"),), tools=(DOCUMENT_TOOL,)
    )
    result = await _demo().complete(request)
    assert result.finish == FinishReason.TOOL_CALLS
    [call] = result.tool_calls
    assert call.name == "create_document"
    arguments = json.loads(call.arguments)
    assert arguments["kind"] == "text"
    assert set(arguments) == {"title", "kind"}


async def test_the_demo_does_not_call_a_tool_it_was_not_asked_for() -> None:
    request = ChatRequest("arbor-demo", (ChatMessage.text("user", "just chat"),), tools=(DOCUMENT_TOOL,))
    events = [event async for event in _demo().stream(request)]
    assert not any(isinstance(event, ToolCallStart) for event in events)


async def test_after_a_tool_result_the_demo_says_what_the_tool_answered() -> None:
    request = ChatRequest(
        "arbor-demo",
        (
            ChatMessage.text("user", "use create_document"),
            ChatMessage(role="tool", parts=ChatMessage.text("tool", "Document 42 created").parts, tool_call_id="c1"),
        ),
        tools=(DOCUMENT_TOOL,),
    )
    result = await _demo().complete(request)
    assert "Document 42 created" in result.text
    assert result.finish == FinishReason.STOP


async def test_the_demo_lists_its_one_model() -> None:
    assert await _demo().list_models() == ["arbor-demo"]
