"""Generations end to end: turn services, the runner, the stream buffer, real providers' fakes."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.tests.factories import UserFactory
from chat.generation import MAX_MODEL_CALLS, generation_start, generation_stop, generations_recover_orphans
from chat.generation.watch import HEARTBEAT_PREFIX, STOP_CHANNEL, STOP_CHECK_EVERY
from chat.models import Chat, Message, Status
from chat.services.turns import turn_send
from chat.streambuffer import stream_buffer
from chat.tools import ToolContext, ToolFailure, ToolResult, tools_replaced
from providers.catalog import catalog_seed
from providers.contract import ToolSpec
from providers.models import Model
from providers.testing.base import Call, Count, End, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]


@database_sync_to_async
def _send(text: str, model: str | None, *, supports_tools: bool = True) -> tuple[str, str]:
    user = UserFactory()  # first: it restores the default tiers the seed grants models to
    catalog_seed()
    if not supports_tools:
        Model.objects.filter(model_id=model).update(supports_tools=False)
    started = turn_send(user=user, chat_id=None, parent_id=None, content=text, model_id=model)
    Chat.objects.filter(pk=started.chat.pk).update(title="set by the test")  # no title task here
    return str(started.chat.pk), str(started.assistant_message.pk)


@database_sync_to_async
def _message(message_id: str) -> Message:
    return Message.objects.get(pk=message_id)


async def _frames(message_id: str, after: int = 0) -> list[dict[str, Any]]:
    return [frame async for frame in stream_buffer().follow(message_id, after)]


async def test_a_turn_streams_the_demo_reply_into_the_buffer_and_saves_it() -> None:
    _, reply_id = await _send("Hello there", None)  # no keys: the default is the offline demo
    await (await generation_start(reply_id))
    frames = await _frames(reply_id)
    deltas = [frame for frame in frames if frame["type"] == "delta"]
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    assert frames[-1]["type"] == "done" and frames[-1]["status"] == "complete"
    saved = await _message(reply_id)
    assert saved.status == Status.COMPLETE
    assert saved.text == "".join(frame.get("text", "") for frame in deltas)
    assert saved.text.startswith("**Arbor Demo (offline)**")
    assert saved.provider == "demo"
    assert saved.usage["output_tokens"] > 0
    assert saved.time_to_first_token_ms is not None


async def test_stop_cancels_the_provider_call_and_keeps_the_partial_text(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(*[Say(f"word{index} ") for index in range(200)], Count(5, 200), delay=0.02))
    _, reply_id = await _send("Go on", "openai:gpt-5-mini")
    task = await generation_start(reply_id)
    follower = stream_buffer().follow(reply_id, 0)
    first = await anext(follower)
    assert first["type"] == "delta"
    await generation_stop(reply_id)
    await task
    rest = [frame async for frame in follower]
    assert rest[-1]["status"] == "stopped"
    saved = await _message(reply_id)
    assert saved.status == Status.STOPPED
    assert saved.text.startswith("word0 ") and len(saved.text) < len("".join(f"word{i} " for i in range(200)))


async def test_a_provider_failure_keeps_the_partial_text_and_says_why(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Say("Half "), Say("an "), Say("answer"), drop_after=2))
    _, reply_id = await _send("Explain", "openai:gpt-5-mini")
    await (await generation_start(reply_id))
    frames = await _frames(reply_id)
    assert frames[-1]["status"] == "error"
    assert frames[-1]["error"]["code"] == "provider_disconnected"
    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Half an ", "provider_disconnected")


async def test_a_stop_flag_from_another_process_stops_the_generation(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(*[Say(f"w{index} ") for index in range(300)], delay=0.01))
    _, reply_id = await _send("Go", "openai:gpt-5-mini")
    task = await generation_start(reply_id)
    follower = stream_buffer().follow(reply_id, 0)
    await anext(follower)
    await stream_buffer().client.set(f"arbor:stop:{reply_id}", "1")  # what generation_stop does elsewhere
    await asyncio.wait_for(task, timeout=10)
    assert (await _message(reply_id)).status == Status.STOPPED


async def test_recovery_fails_a_reply_whose_process_died_and_keeps_its_buffered_text() -> None:
    _, reply_id = await _send("Hi", None)
    buffer = stream_buffer()
    await buffer.append(reply_id, {"type": "delta", "text": "Partial words"})
    assert await generations_recover_orphans() == 1
    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Partial words", "interrupted")
    assert (await buffer.replay(reply_id))[-1]["type"] == "done"


async def test_recovery_leaves_a_reply_still_running_in_another_process_alone() -> None:
    _, reply_id = await _send("Hi", None)
    await stream_buffer().client.set(HEARTBEAT_PREFIX + reply_id, "1", ex=30)
    assert await generations_recover_orphans() == 0
    assert (await _message(reply_id)).status == Status.STREAMING


async def test_the_recover_streams_command_reports_what_it_recovered() -> None:
    from io import StringIO

    from django.core.management import call_command

    _, reply_id = await _send("Hi", None)
    out = StringIO()
    await database_sync_to_async(call_command)("recover_streams", stdout=out)
    assert out.getvalue() == "Recovered 1 interrupted replies.\n"
    assert (await _message(reply_id)).status == Status.ERROR


@database_sync_to_async
def _tokens_left(message_id: str) -> float:
    from accounts.models import UsageBucket

    owner = Message.objects.select_related("chat__owner").get(pk=message_id).chat.owner
    return UsageBucket.objects.get(user=owner, kind="tokens").tokens


@database_sync_to_async
def _send_without_refill(text: str, model: str | None = None) -> tuple[Message, int]:
    """A turn by a user whose token bucket does not refill, so its level shows every charge."""
    from accounts.selectors import tier_registered_default

    tier = tier_registered_default()
    tier.tokens_per_minute = 0
    tier.save()
    user = UserFactory()
    catalog_seed()
    started = turn_send(user=user, chat_id=None, parent_id=None, content=text, model_id=model)
    Chat.objects.filter(pk=started.chat.pk).update(title="set by the test")
    return Message.objects.get(pk=started.assistant_message.pk), tier.token_capacity


async def test_a_finished_reply_charges_exactly_the_tokens_the_provider_reported() -> None:
    placeholder, capacity = await _send_without_refill("Hello there")
    assert placeholder.reservation["reserved_tokens"] > 1_000  # the input estimate and the output allowance
    await (await generation_start(placeholder.pk))
    saved = await _message(str(placeholder.pk))
    used = saved.usage["input_tokens"] + saved.usage["output_tokens"]
    assert used > 0
    assert await _tokens_left(str(placeholder.pk)) == capacity - used


async def test_a_stopped_reply_without_reported_usage_is_charged_an_estimate_not_its_reservation(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(*[Say(f"word{index} ") for index in range(200)], delay=0.02))
    placeholder, capacity = await _send_without_refill("Go on", "openai:gpt-5-mini")
    task = await generation_start(placeholder.pk)
    follower = stream_buffer().follow(placeholder.pk, 0)
    await anext(follower)
    await generation_stop(placeholder.pk)
    await task
    saved = await _message(str(placeholder.pk))
    charged = capacity - await _tokens_left(str(placeholder.pk))
    assert charged == placeholder.reservation["estimated_input_tokens"] + len(saved.text) // 4
    assert charged < placeholder.reservation["reserved_tokens"]


class _Echo:
    """A tool that answers with its argument and tells the browser it ran."""

    spec = ToolSpec("echo", "Repeat the text.", {"type": "object", "properties": {"text": {"type": "string"}}})

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        if not isinstance(arguments.get("text"), str):
            raise ToolFailure("`text` must be a string.")
        await context.emit({"type": "echo_ran", "chat_id": context.chat_id})
        return ToolResult(f"echo: {arguments['text']}", data={"length": len(arguments["text"])})


async def test_a_tool_call_is_run_its_result_sent_back_and_the_model_answers_after_it(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(
        reply(Say("Let me echo."), Call("call_1", "echo", '{"text": "hi"}'), End("tool_calls")),
        reply(Say("The tool said hi.")),
    )
    with tools_replaced(_Echo()):
        chat_id, reply_id = await _send("Echo hi", "openai:gpt-5-mini")
        await (await generation_start(reply_id))
    frames = await _frames(reply_id)
    kinds = [frame["type"] for frame in frames]
    assert kinds.index("tool_call") < kinds.index("echo_ran") < kinds.index("tool_result") < len(kinds) - 1
    assert next(frame for frame in frames if frame["type"] == "echo_ran")["chat_id"] == chat_id
    result = next(frame for frame in frames if frame["type"] == "tool_result")
    assert (result["text"], result["error"], result["data"]) == ("echo: hi", False, {"length": 2})
    first, second = (request.body for request in openai_fake.requests[-2:])
    assert [tool["function"]["name"] for tool in first["tools"]] == ["echo"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "echo: hi"}
    saved = await _message(reply_id)
    assert [part["type"] for part in saved.content] == ["text", "tool_call", "tool_result", "text"]
    assert saved.text == "Let me echo.The tool said hi."
    assert saved.status == Status.COMPLETE


async def test_malformed_tool_arguments_go_back_to_the_model_as_an_error_and_the_reply_goes_on(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(
        reply(Call("call_1", "echo", '{"text": '), End("tool_calls")),
        reply(Call("call_2", "echo", '{"text": 5}'), End("tool_calls")),
        reply(Say("Sorry, I could not echo.")),
    )
    with tools_replaced(_Echo()):
        _, reply_id = await _send("Echo", "openai:gpt-5-mini")
        await (await generation_start(reply_id))
    saved = await _message(reply_id)
    results = [part for part in saved.content if part["type"] == "tool_result"]
    assert [(part["error"], part["text"]) for part in results] == [
        (True, "The arguments of echo are not valid JSON."),
        (True, "`text` must be a string."),
    ]
    assert saved.status == Status.COMPLETE and saved.text == "Sorry, I could not echo."


async def test_a_model_that_keeps_calling_tools_is_stopped_at_the_call_limit(openai_fake: OpenAIServer) -> None:
    openai_fake.script(
        *[reply(Call(f"call_{n}", "echo", '{"text": "again"}'), End("tool_calls")) for n in range(MAX_MODEL_CALLS + 2)]
    )
    with tools_replaced(_Echo()):
        _, reply_id = await _send("Loop", "openai:gpt-5-mini")
        before = len(openai_fake.requests)
        await (await generation_start(reply_id))
    assert len(openai_fake.requests) - before == MAX_MODEL_CALLS
    assert (await _message(reply_id)).status == Status.COMPLETE


async def test_no_tools_are_offered_to_a_model_without_tool_support(openai_fake: OpenAIServer) -> None:
    with tools_replaced(_Echo()):
        _, reply_id = await _send("Hi", "openai:gpt-5-mini", supports_tools=False)
        await (await generation_start(reply_id))
    assert "tools" not in openai_fake.requests[-1].body


async def test_a_stop_announced_by_another_process_stops_the_generation_at_once(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(*[Say(f"w{index} ") for index in range(300)], delay=0.01))
    _, reply_id = await _send("Go", "openai:gpt-5-mini")
    task = await generation_start(reply_id)
    client = stream_buffer().client
    while not (await client.pubsub_numsub(STOP_CHANNEL))[0][1]:
        await asyncio.sleep(0.01)
    await client.publish(STOP_CHANNEL, reply_id)  # what generation_stop does in another process (no flag)
    await asyncio.wait_for(task, timeout=STOP_CHECK_EVERY / 2)
    assert (await _message(reply_id)).status == Status.STOPPED


@database_sync_to_async
def _usage_rows(message_id: str) -> list[Any]:
    from usage.models import UsageRecord

    return list(UsageRecord.objects.filter(message_id=message_id))


async def test_a_finished_reply_writes_one_usage_row_with_its_tokens_cost_and_timing(
    openai_fake: OpenAIServer,
) -> None:
    openai_fake.script(reply(Say("Priced words."), Count(1_000_000, 1_000_000)))
    _, reply_id = await _send("Price this", "openai:gpt-5-mini")
    await (await generation_start(reply_id))
    [row] = await _usage_rows(reply_id)
    assert (row.kind, row.model_id, row.provider, row.outcome, row.byok) == (
        "chat",
        "openai:gpt-5-mini",
        "openai",
        "complete",
        False,
    )
    assert (row.input_tokens, row.output_tokens) == (1_000_000, 1_000_000)
    assert row.cost == Decimal("2.25")  # $0.25 in and $2 out per million tokens
    assert row.ttft_ms is not None and row.total_ms >= row.ttft_ms


async def test_a_reply_orphaned_by_a_crash_is_recorded_as_interrupted_and_its_tokens_given_back() -> None:
    placeholder, capacity = await _send_without_refill("Hello there")
    await stream_buffer().append(placeholder.pk, {"type": "delta", "text": "Partial words"})
    assert await generations_recover_orphans() == 1
    [row] = await _usage_rows(str(placeholder.pk))
    assert row.outcome == "interrupted"
    estimate = placeholder.reservation["estimated_input_tokens"] + len("Partial words") // 4
    assert (row.input_tokens + row.output_tokens) == estimate
    assert await _tokens_left(str(placeholder.pk)) == capacity - estimate


class _Slow:
    """A tool that takes long: the model is not streaming while it runs."""

    spec = ToolSpec("slow", "Wait.", {"type": "object", "properties": {}})

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        self.started.set()
        await asyncio.sleep(30)
        return ToolResult("done")


async def test_a_stop_flag_set_while_a_tool_runs_stops_the_generation(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(Call("call_1", "slow", "{}"), End("tool_calls")))
    slow = _Slow()
    with tools_replaced(slow):
        _, reply_id = await _send("Wait", "openai:gpt-5-mini")
        task = await generation_start(reply_id)
        await asyncio.wait_for(slow.started.wait(), 10)
        await stream_buffer().client.set(f"arbor:stop:{reply_id}", "1")  # what generation_stop does elsewhere
        await asyncio.wait_for(task, timeout=STOP_CHECK_EVERY * 3)
    assert (await _message(reply_id)).status == Status.STOPPED


async def test_the_heartbeat_is_kept_while_a_tool_runs(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chat.generation.watch.STOP_CHECK_EVERY", 0.05)
    monkeypatch.setattr("chat.generation.watch.HEARTBEAT_EVERY", 0.1)
    openai_fake.script(reply(Call("call_1", "slow", "{}"), End("tool_calls")))
    slow = _Slow()
    client = stream_buffer().client
    with tools_replaced(slow):
        _, reply_id = await _send("Wait", "openai:gpt-5-mini")
        task = await generation_start(reply_id)
        await asyncio.wait_for(slow.started.wait(), 10)
        await client.delete(HEARTBEAT_PREFIX + reply_id)  # as if it had expired
        await asyncio.sleep(0.5)
        assert await client.exists(HEARTBEAT_PREFIX + reply_id)
        await generation_stop(reply_id)
        await task


@database_sync_to_async
def _send_untitled(text: str) -> tuple[str, str]:
    user = UserFactory()
    catalog_seed()
    started = turn_send(user=user, chat_id=None, parent_id=None, content=text, model_id=None)
    return str(started.chat.pk), str(started.assistant_message.pk)


@pytest.mark.parametrize("automatic", [True, False])
async def test_the_first_complete_reply_queues_the_chats_title_only_when_titles_are_automatic(
    automatic: bool, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chat.tasks

    queued: list[str] = []
    monkeypatch.setattr(chat.tasks, "title_chat_after_commit", queued.append)
    settings.CHAT_TITLES_AUTO = automatic
    chat_id, reply_id = await _send_untitled("Hello there")

    await (await generation_start(reply_id))

    assert (await _message(reply_id)).status == Status.COMPLETE
    assert queued == ([chat_id] if automatic else [])


@database_sync_to_async
def _tree_entry(chat_id: str, message_id: str) -> dict[str, Any]:
    """The message as `GET /api/chats/<id>` gives it in the tree."""
    import json

    from chat.selectors import chat_tree_json

    tree = json.loads(chat_tree_json(Chat.objects.get(pk=chat_id)))
    return next(entry for entry in tree if entry["id"] == message_id)


@pytest.mark.parametrize(
    ("script", "status", "error_code"),
    [
        (reply(Say("Saved "), Say("words."), Count(7, 2)), "complete", ""),
        (reply(Say("Half "), Say("an "), Say("answer"), drop_after=2), "error", "provider_disconnected"),
    ],
)
async def test_the_done_frame_carries_the_saved_reply_as_the_chats_tree_holds_it(
    openai_fake: OpenAIServer, script: Any, status: str, error_code: str
) -> None:
    openai_fake.script(script)
    chat_id, reply_id = await _send("Say it", "openai:gpt-5-mini")
    await (await generation_start(reply_id))
    done = (await _frames(reply_id))[-1]
    assert done["type"] == "done"
    assert done["message"] == await _tree_entry(chat_id, reply_id)  # the same shape, key for key
    assert (done["message"]["status"], done["message"]["error_code"]) == (status, error_code)
    assert done["message"]["usage"] == done["usage"]  # the saved usage, not what the turn reserved
    saved = await _message(reply_id)
    assert done["message"]["content"] == saved.content and saved.content


async def test_a_recovered_orphans_done_frame_carries_it_as_saved_interrupted() -> None:
    chat_id, reply_id = await _send("Hi", None)
    await stream_buffer().append(reply_id, {"type": "delta", "text": "Partial words"})
    assert await generations_recover_orphans() == 1
    done = (await stream_buffer().replay(reply_id))[-1]
    assert done["message"] == await _tree_entry(chat_id, reply_id)
    assert (done["message"]["status"], done["message"]["error_code"]) == ("error", "interrupted")
    assert done["message"]["content"] == [{"type": "text", "text": "Partial words"}]


async def test_a_reply_recovered_meanwhile_is_neither_saved_nor_billed_again(openai_fake: OpenAIServer) -> None:
    openai_fake.script(reply(*[Say(f"word{index} ") for index in range(60)], delay=0.02))
    placeholder, capacity = await _send_without_refill("Go on", "openai:gpt-5-mini")
    task = await generation_start(placeholder.pk)
    follower = stream_buffer().follow(placeholder.pk, 0)
    await anext(follower)
    # What a recovery writes when it took this process for dead (its loop stalled too long).
    await database_sync_to_async(Message.objects.filter(pk=placeholder.pk).update)(
        status=Status.ERROR, error_code="interrupted", text="word0 "
    )

    await task

    saved = await _message(str(placeholder.pk))
    assert (saved.status, saved.error_code, saved.text) == (Status.ERROR, "interrupted", "word0 ")
    assert await _usage_rows(str(placeholder.pk)) == []
    assert await _tokens_left(str(placeholder.pk)) == capacity - placeholder.reservation["reserved_tokens"]


async def test_a_turn_reads_the_catalog_version_on_the_loop_not_from_its_database_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chat.generation import turn_begin
    from chat.generation.watch import RUNNING
    from providers import catalogcache

    @database_sync_to_async
    def warm_user() -> Any:
        user = UserFactory()
        catalog_seed()
        catalogcache.catalog_snapshot()  # warm, as a serving process is
        return user

    user = await warm_user()
    asked: list[str] = []
    connection = catalogcache.get_redis_connection
    monkeypatch.setattr(catalogcache, "get_redis_connection", lambda alias: asked.append(alias) or connection(alias))

    started = await turn_begin(turn_send, user=user, chat_id=None, parent_id=None, content="Hi", model_id=None)
    reply_id = str(started.assistant_message.pk)
    if (running := RUNNING.get(reply_id)) is not None:
        await running

    assert asked == []  # the version came in with the call: the thread asked Redis for nothing
    assert (await _message(reply_id)).status == Status.COMPLETE
