from __future__ import annotations

from chat.reply import Reply
from providers.contract import (
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)


def test_parts_keep_the_order_they_were_written_in_across_a_tool_call() -> None:
    reply = Reply()
    for event in (
        ReasoningDelta("hm"),
        TextDelta("Let me "),
        TextDelta("check."),
        ToolCallStart(0, "c1", "lookup"),
        ToolCallDelta(0, '{"q":'),
        ToolCallDelta(0, '"x"}'),
    ):
        reply.frame_for(event)
    [call] = reply.step_calls()
    reply.result_add(call, text="found", error=False, data={"n": 1})
    reply.step_begin()
    reply.frame_for(TextDelta("It is x."))
    assert reply.parts() == [
        {"type": "reasoning", "text": "hm"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": '{"q":"x"}'},
        {
            "type": "tool_result",
            "tool_call_id": "c1",
            "name": "lookup",
            "text": "found",
            "error": False,
            "data": {"n": 1},
        },
        {"type": "text", "text": "It is x."},
    ]
    assert reply.text == "Let me check.It is x."
    assert reply.step_calls() == []


def test_a_step_is_sent_back_as_the_assistants_calls_then_one_tool_message_per_result() -> None:
    reply = Reply()
    reply.frame_for(TextDelta("Checking"))
    reply.frame_for(ToolCallStart(0, "a", "one"))
    reply.frame_for(ToolCallStart(1, "b", "two"))
    for call in reply.step_calls():
        reply.result_add(call, text=f"{call.name} done", error=False, data={})
    assistant, first, second = reply.step_messages()
    assert assistant.role == "assistant" and assistant.parts[0].text == "Checking"
    assert assistant.tool_calls == (ToolCall("a", "one", ""), ToolCall("b", "two", ""))
    assert (first.role, first.tool_call_id, first.parts[0].text) == ("tool", "a", "one done")
    assert (second.tool_call_id, second.parts[0].text) == ("b", "two done")


def test_usage_is_the_last_report_of_each_model_call_summed_over_the_calls() -> None:
    reply = Reply()
    reply.frame_for(Usage(input_tokens=10, output_tokens=1))
    reply.frame_for(Usage(input_tokens=10, output_tokens=5))  # a later, fuller report of the same call
    reply.step_begin()
    reply.frame_for(Usage(input_tokens=20, output_tokens=7, reasoning_tokens=2))
    assert reply.usage == Usage(input_tokens=30, output_tokens=12, reasoning_tokens=2)
