"""Every reply ends, whatever its provider does: cut at its character and wall-time limits, its
model calls sharing the model's max output, a stream without its end saved as an error, and the
text written so far kept each time. Through the real OpenAI SDK against the fake server."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from chat.generation import generation_start
from chat.generation.limits import MAX_CHARS_PER_TOKEN, REPLY_TOO_SLOW, CharBudget
from chat.models import Status
from chat.tests.test_generation import _Echo, _frames, _message, _send
from chat.tools import tools_replaced
from providers.catalogcache import catalog_changed
from providers.contract import ReasoningDelta, TextDelta, ToolCallDelta, Usage
from providers.models import Model
from providers.testing.base import ENDLESS_TEXT, Call, Count, End, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

MODEL = "openai:gpt-5-mini"


async def _generate(prompt: str, model: str = MODEL) -> tuple[str, dict[str, Any]]:
    """Run a reply to its end: its id and its `done` frame."""
    _, reply_id = await _send(prompt, model)
    await (await generation_start(reply_id))
    return reply_id, (await _frames(reply_id))[-1]


@pytest.mark.timeout(120)
async def test_an_endless_stream_is_cut_at_the_character_limit_and_saved_complete_at_length(
    openai_fake: OpenAIServer, settings: Any
) -> None:
    settings.REPLY_MAX_CHARS = 500
    reply_id, done = await _generate("Go on forever fault:endless")
    assert (done["status"], done["finish_reason"]) == ("complete", "length")
    saved = await _message(reply_id)
    assert (saved.status, saved.finish_reason, saved.error_code) == (Status.COMPLETE, "length", "")
    assert len(saved.text) == 500
    assert saved.text.startswith("Hello from the fake server." + ENDLESS_TEXT)
    deltas = "".join(frame.get("text", "") for frame in await _frames(reply_id) if frame["type"] == "delta")
    assert deltas == saved.text  # the followers saw exactly what was kept


@pytest.mark.timeout(120)
async def test_an_endless_stream_is_cut_at_the_wall_time_limit_and_saved_as_a_timeout_with_its_text(
    openai_fake: OpenAIServer, settings: Any
) -> None:
    settings.REPLY_MAX_SECONDS = 0.5
    openai_fake.script(reply(Say("Thinking aloud: "), delay=0.005, endless=True))
    reply_id, done = await _generate("Go on")
    assert done["status"] == "error"
    assert done["error"] == {"code": "timeout", "message": REPLY_TOO_SLOW.format(seconds=0.5)}
    saved = await _message(reply_id)
    assert (saved.status, saved.error_code) == (Status.ERROR, "timeout")
    assert saved.text.startswith("Thinking aloud: " + ENDLESS_TEXT)


@pytest.mark.parametrize("fault", ["drop", "cut"])
async def test_a_stream_that_ends_without_its_finish_is_saved_as_disconnected_with_the_partial_text(
    openai_fake: OpenAIServer, settings: Any, fault: str
) -> None:
    # Before the first token it would be retried; the fault strikes after "Half an ".
    openai_fake.script(reply(Say("Half "), Say("an "), Say("answer"), Count(3, 3)))
    reply_id, done = await _generate(f"Explain fault:{fault}")
    assert done["status"] == "error"
    assert done["error"]["code"] == "provider_disconnected"
    saved = await _message(reply_id)
    assert (saved.status, saved.error_code, saved.finish_reason) == (Status.ERROR, "provider_disconnected", "")
    assert saved.text and "Half an answer".startswith(saved.text) and saved.text != "Half an answer"


@database_sync_to_async
def _model_max_output(model_id: str, tokens: int) -> None:
    Model.objects.filter(model_id=model_id).update(max_output_tokens=tokens)
    catalog_changed()  # update() sends no signal


async def test_the_model_calls_of_one_reply_share_the_models_max_output(openai_fake: OpenAIServer) -> None:
    openai_fake.script(
        reply(Call("call_1", "echo", '{"text": "hi"}'), Count(10, 300), End("tool_calls")),
        reply(Call("call_2", "echo", '{"text": "again"}'), Count(20, 700), End("tool_calls")),
        reply(Say("never asked for")),
    )
    _, reply_id = await _send("Echo", MODEL)
    await _model_max_output(MODEL, 1000)
    with tools_replaced(_Echo()):
        before = len(openai_fake.requests)
        await (await generation_start(reply_id))  # prepared afresh, from the changed catalog
    asked = [request.body["max_tokens"] for request in openai_fake.requests[before:]]
    assert asked == [1000, 700]  # the third call would have had nothing left to write
    saved = await _message(reply_id)
    assert (saved.status, saved.finish_reason) == (Status.COMPLETE, "length")
    assert [part["type"] for part in saved.content] == ["tool_call", "tool_result", "tool_call", "tool_result"]


@pytest.mark.timeout(120)
async def test_a_vendor_that_ignores_max_tokens_is_cut_at_ten_characters_a_token_of_the_models_max_output(
    openai_fake: OpenAIServer,
) -> None:
    # The fake never stops at the max_tokens it is sent (as a looping local model would not).
    _, reply_id = await _send("Go on forever fault:endless", MODEL)
    await _model_max_output(MODEL, 50)
    await (await generation_start(reply_id))
    assert openai_fake.requests[-1].body["max_tokens"] == 50
    saved = await _message(reply_id)
    assert (saved.status, saved.finish_reason) == (Status.COMPLETE, "length")
    assert len(saved.text) == 50 * MAX_CHARS_PER_TOKEN


def test_the_character_budget_cuts_the_event_that_passes_it_and_counts_every_kind() -> None:
    budget = CharBudget(10)
    assert budget.take(TextDelta("abcd")) == TextDelta("abcd")
    assert budget.take(ReasoningDelta("ef")) == ReasoningDelta("ef")
    assert budget.take(Usage(1, 2)) == Usage(1, 2)
    assert budget.take(ToolCallDelta(0, "ghij")) == ToolCallDelta(0, "ghij")
    assert not budget.spent  # exactly at the limit: nothing was lost yet
    assert budget.take(TextDelta("k")) is None
    assert budget.spent

    budget = CharBudget(3)
    assert budget.take(TextDelta("abcdef")) == TextDelta("abc")
    assert budget.spent
