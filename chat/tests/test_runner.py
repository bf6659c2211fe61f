"""Generations end to end: turn services, the runner, the stream buffer, real providers' fakes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.tests.factories import UserFactory
from chat.models import Chat, Message, Status
from chat.runner import HEARTBEAT_PREFIX, generation_start, generation_stop, generations_recover_orphans
from chat.services.turns import turn_send
from chat.streambuffer import stream_buffer
from providers.catalog import catalog_seed
from providers.testing.base import Count, Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]


@database_sync_to_async
def _send(text: str, model: str | None) -> tuple[str, str]:
    user = UserFactory()  # first: it restores the default tiers the seed grants models to
    catalog_seed()
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
    assert frames[-1]["error"]["code"] == "provider_unavailable"
    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Half an ", "provider_unavailable")


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
    assert placeholder.usage["reserved_tokens"] > 1_000  # the input estimate and the output allowance
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
    assert charged == placeholder.usage["estimated_input_tokens"] + len(saved.text) // 4
    assert charged < placeholder.usage["reserved_tokens"]
