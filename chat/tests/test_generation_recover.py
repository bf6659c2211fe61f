"""Orphans: a reply whose process died ends as `interrupted`, its text kept, within a bound,
whatever the timing of a restart (issue 12, item 1)."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import ApplicationCommunicator

from accounts.tests.factories import UserFactory
from chat.generation import generation_start, generation_stop, generations_recover_orphans
from chat.generation.owner import HEARTBEAT_PREFIX, PROCESS_ID, PROCESS_PREFIX
from chat.generation.sweep import SWEEP_LOCK, generations_sweep
from chat.models import Chat, Message, Status
from chat.services.turns import turn_send
from chat.streambuffer import stream_buffer
from chat.tests.test_consumers import Tab, _person
from config.asgi import application
from providers.catalog import catalog_seed
from providers.testing.base import Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]

A_DEAD_PROCESS = "0" * 32  # no `arbor:proc:` key: the process that wrote this is gone


@database_sync_to_async
def _orphan(*, user: Any = None, age: float = 60.0) -> str:
    """A reply placeholder left `streaming` with no generation running it, `age` seconds old."""
    user = user or UserFactory()
    catalog_seed()
    started = turn_send(user=user, chat_id=None, parent_id=None, content="Hi", model_id=None)
    Chat.objects.filter(pk=started.chat.pk).update(title="set by the test")
    created = started.assistant_message.created_at - datetime.timedelta(seconds=age)
    Message.objects.filter(pk=started.assistant_message.pk).update(created_at=created)
    return str(started.assistant_message.pk)


async def _written(message_id: str, text: str, *, owner: str | None) -> None:
    """What a generation had done before its process was killed: frames in its buffer, and
    (with `owner`) a heartbeat naming that process, still alive."""
    buffer = stream_buffer()
    await buffer.open(message_id)
    await buffer.append(message_id, {"type": "delta", "text": text})
    if owner is not None:
        await buffer.client.set(HEARTBEAT_PREFIX + message_id, owner, ex=30)


@database_sync_to_async
def _message(message_id: str) -> Message:
    return Message.objects.get(pk=message_id)


async def _dones(message_id: str) -> list[dict[str, Any]]:
    return [frame for frame in await stream_buffer().replay(message_id) if frame["type"] == "done"]


async def test_a_reply_whose_heartbeat_lives_but_whose_process_is_gone_is_recovered() -> None:
    reply_id = await _orphan()
    await _written(reply_id, "Partial words", owner=A_DEAD_PROCESS)

    assert await generations_recover_orphans() == 1

    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Partial words", "interrupted")
    [done] = await _dones(reply_id)
    assert (done["status"], done["error"]["code"]) == ("error", "interrupted")


async def test_the_sweep_recovers_an_orphan_its_restart_came_back_too_soon_to_see() -> None:
    # The case: start-up recovery ran 9 s after the kill, the heartbeat (30 s) still
    # alive; the sweep, run later by the web process, must end it, and only it.
    reply_id = await _orphan()
    await _written(reply_id, "Half a reply", owner=A_DEAD_PROCESS)
    running_elsewhere = await _orphan()
    another = "1" * 32
    await _written(running_elsewhere, "Still writing", owner=another)
    await stream_buffer().client.set(PROCESS_PREFIX + another, "1", ex=15)
    await stream_buffer().client.delete(SWEEP_LOCK)

    assert await generations_sweep(stream_buffer()) == 1

    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Half a reply", "interrupted")
    untouched = await _message(running_elsewhere)
    assert (untouched.status, untouched.text) == (Status.STREAMING, "")
    assert await _dones(running_elsewhere) == []


async def test_a_generation_names_its_process_which_stays_alive_while_it_runs(
    openai_fake: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chat.generation.watch.STOP_CHECK_EVERY", 0.05)
    monkeypatch.setattr("chat.generation.watch.HEARTBEAT_EVERY", 0.1)
    openai_fake.script(reply(*[Say(f"w{index} ") for index in range(400)], delay=0.01))
    reply_id = await _orphan(age=0)
    task = await generation_start(reply_id)
    follower = stream_buffer().follow(reply_id, 0)
    await anext(follower)
    client = stream_buffer().client
    assert await client.get(HEARTBEAT_PREFIX + reply_id) == PROCESS_ID
    await client.delete(PROCESS_PREFIX + PROCESS_ID)  # as if it had expired: the watcher renews it
    for _ in range(100):  # a heartbeat round every 0.1 s; a loaded machine may take longer
        if await client.exists(PROCESS_PREFIX + PROCESS_ID):
            break
        await asyncio.sleep(0.05)
    assert await client.exists(PROCESS_PREFIX + PROCESS_ID)
    # Another process's sweep (this one skips what it runs itself) finds the owner alive.
    monkeypatch.setattr("chat.generation.recover.RUNNING", {})
    assert await generations_recover_orphans() == 0
    await generation_stop(reply_id)
    await asyncio.wait_for(task, timeout=10)
    assert (await _message(reply_id)).status == Status.STOPPED


async def test_a_reply_not_yet_claimed_is_left_to_its_starting_generation_for_a_while() -> None:
    reply_id = await _orphan(age=0)  # its generation has not written its first heartbeat yet
    await stream_buffer().client.delete(SWEEP_LOCK)
    assert await generations_sweep(stream_buffer()) == 0
    assert (await _message(reply_id)).status == Status.STREAMING

    older = await _orphan(age=60)  # nothing ever claimed it: its process died before
    await stream_buffer().client.delete(SWEEP_LOCK)
    assert await generations_sweep(stream_buffer()) == 1
    assert (await _message(older)).status == Status.ERROR


async def test_two_processes_recovering_at_once_end_an_orphan_once() -> None:
    reply_id = await _orphan()
    await _written(reply_id, "Partial", owner=A_DEAD_PROCESS)

    counts = await asyncio.gather(generations_recover_orphans(), generations_recover_orphans())

    assert sorted(counts) == [0, 1]
    assert len(await _dones(reply_id)) == 1


async def test_one_process_sweeps_at_a_time() -> None:
    buffer = stream_buffer()
    await buffer.client.delete(SWEEP_LOCK)
    assert await generations_sweep(buffer) == 0
    assert await generations_sweep(buffer) is None  # another process swept a moment ago


async def test_a_stop_asked_of_an_orphan_ends_it_at_once() -> None:
    reply_id = await _orphan()
    await _written(reply_id, "Cut short", owner=A_DEAD_PROCESS)
    running_elsewhere = await _orphan()
    another = "2" * 32
    await _written(running_elsewhere, "Still writing", owner=another)
    await stream_buffer().client.set(PROCESS_PREFIX + another, "1", ex=15)

    await generation_stop(reply_id)
    await generation_stop(running_elsewhere)  # its own process hears the stop and saves it

    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Cut short", "interrupted")
    assert len(await _dones(reply_id)) == 1
    assert (await _message(running_elsewhere)).status == Status.STREAMING


async def test_a_resume_waiting_on_an_orphan_ends_with_done_once_it_is_recovered() -> None:
    person = await _person()
    reply_id = await _orphan(user=person.user)
    await _written(reply_id, "Kept text", owner=A_DEAD_PROCESS)
    tab = await Tab(person.cookie).open()
    try:
        await tab.send({"type": "resume", "req": 1, "message_id": reply_id, "after_seq": 0})
        delta = await tab.receive()
        assert (delta["type"], delta["text"]) == ("delta", "Kept text")
        assert await tab.hears_nothing()  # the buffer is open: the tab waits for the reply

        await stream_buffer().client.delete(SWEEP_LOCK)
        assert await generations_sweep(stream_buffer()) == 1

        done = await tab.receive(timeout=10)
        assert (done["type"], done["status"], done["error"]["code"]) == ("done", "error", "interrupted")
        assert done["message"]["content"] == [{"type": "text", "text": "Kept text"}]
    finally:
        await tab.close()


async def test_a_web_process_sweeps_periodically_from_its_first_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chat.generation.sweep.SWEEP_EVERY", 0.2)
    reply_id = await _orphan()
    await _written(reply_id, "Orphaned", owner=A_DEAD_PROCESS)
    await stream_buffer().client.delete(SWEEP_LOCK)

    # Any request starts the sweep: here the supervisor's readiness probe, before any turn.
    probe = ApplicationCommunicator(
        application,
        {"type": "http", "method": "GET", "path": "/livez", "headers": [(b"host", b"localhost")], "query_string": b""},
    )
    await probe.send_input({"type": "http.request", "body": b""})
    assert (await probe.receive_output(timeout=10))["status"] == 200

    for _ in range(200):  # up to 20 s: the sweep runs every 0.2 s here
        if (await _message(reply_id)).status != Status.STREAMING:
            break
        await asyncio.sleep(0.1)
    saved = await _message(reply_id)
    assert (saved.status, saved.text, saved.error_code) == (Status.ERROR, "Orphaned", "interrupted")
