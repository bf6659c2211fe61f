"""What a generation has written so far: the reply's parts in the order they were written.

A reply may run a tool loop: text, tool calls, their results, more text, over several model
calls ("steps"). Parts keep that order, which is the order `chat.prompts` reads them back in.
Text arrives as many small deltas: each text or reasoning part keeps its chunks in a list and
joins them once, when the parts are read, so a reply costs O(n) in its length.

The stored part shapes are `chat.parts`'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chat import frames
from chat.parts import Part, reasoning_part, text_part, tool_call_part, tool_result_part
from providers.contract import (
    ChatMessage,
    Finish,
    ReasoningDelta,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

Frame = dict[str, Any]


@dataclass
class _Written:
    """One part being written: a kind and its chunks (text, reasoning or a call's arguments)."""

    kind: str
    chunks: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


class Reply:
    def __init__(self) -> None:
        self._parts: list[_Written] = []
        self._step_start = 0  # index of the first part written by the current model call
        self._calls: dict[int, _Written] = {}  # the current step's tool calls by stream index
        self.usage = Usage()
        self._usage_before_step = Usage()
        self.finish_reason = ""
        self.first_token_at: float | None = None
        self.provider = ""  # the provider that answered the first model call

    # --- Reading ------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return "".join(chunk for part in self._parts if part.kind == "text" for chunk in part.chunks)

    def parts(self) -> list[Part]:
        return [_stored(part) for part in self._parts]

    def step_calls(self) -> list[ToolCall]:
        """The tool calls the current step made, in the order the model listed them."""
        return [
            ToolCall(id=call.fields["id"], name=call.fields["name"], arguments="".join(call.chunks))
            for _, call in sorted(self._calls.items())
        ]

    def step_messages(self) -> list[ChatMessage]:
        """The current step as contract messages: the assistant's text and calls, then one
        `tool` message per result (what the model is sent back on the next step)."""
        text = "".join(
            chunk for part in self._parts[self._step_start :] if part.kind == "text" for chunk in part.chunks
        )
        said = (TextPart(text),) if text else ()
        messages = [ChatMessage(role="assistant", parts=said, tool_calls=tuple(self.step_calls()))]
        for part in self._parts[self._step_start :]:
            if part.kind == "tool_result":
                content = (TextPart(part.fields["text"]),)
                messages.append(ChatMessage(role="tool", parts=content, tool_call_id=part.fields["tool_call_id"]))
        return messages

    # --- Writing ------------------------------------------------------------------------------
    def step_begin(self) -> None:
        """A new model call starts (after tool results): its calls are counted afresh."""
        self._step_start = len(self._parts)
        self._calls = {}
        self._usage_before_step = self.usage
        self.finish_reason = ""

    def result_add(self, call: ToolCall, *, text: str, error: bool, data: dict[str, Any]) -> Frame:
        """Record a tool's result; return the frame that tells the browser."""
        fields = {"tool_call_id": call.id, "name": call.name, "text": text, "error": error, "data": data}
        self._parts.append(_Written("tool_result", fields=fields))
        return frames.tool_result_frame(**fields)

    def frame_for(self, event: object) -> Frame | None:
        """Record `event`; return the frame that tells the browser about it."""
        match event:
            case TextDelta(text=text):
                self._chunk("text", text)
                return frames.text_delta(text)
            case ReasoningDelta(text=text):
                self._chunk("reasoning", text)
                return frames.reasoning_delta(text)
            case ToolCallStart(index=index, id=call_id, name=name):
                call = _Written("tool_call", fields={"id": call_id, "name": name})
                self._calls[index] = call
                self._parts.append(call)
                return frames.tool_call_frame(index=index, id=call_id, name=name)
            case ToolCallDelta(index=index, arguments=arguments):
                call = self._calls.get(index)
                if call is None:  # arguments before their start (a lax vendor): the call begins here
                    call = self._calls[index] = _Written("tool_call", fields={"id": "", "name": ""})
                    self._parts.append(call)
                call.chunks.append(arguments)
                return frames.tool_call_delta_frame(index=index, arguments=arguments)
            case ToolCallEnd(index=index):
                return frames.tool_call_end_frame(index=index)
            case Usage():
                # A step's latest report is its usage (adapters may report more than once); the
                # reply's is the sum over its steps.
                before = self._usage_before_step
                self.usage = Usage(
                    input_tokens=before.input_tokens + event.input_tokens,
                    output_tokens=before.output_tokens + event.output_tokens,
                    reasoning_tokens=before.reasoning_tokens + event.reasoning_tokens,
                )
            case Finish(reason=reason):
                self.finish_reason = str(reason)
        return None

    def _chunk(self, kind: str, text: str) -> None:
        last = self._parts[-1] if len(self._parts) > self._step_start else None
        if last is None or last.kind != kind:
            last = _Written(kind)
            self._parts.append(last)
        last.chunks.append(text)


def _stored(part: _Written) -> Part:
    if part.kind == "text":
        return text_part("".join(part.chunks))
    if part.kind == "reasoning":
        return reasoning_part("".join(part.chunks))
    if part.kind == "tool_call":
        return tool_call_part(id=part.fields["id"], name=part.fields["name"], arguments="".join(part.chunks))
    return tool_result_part(**part.fields)
