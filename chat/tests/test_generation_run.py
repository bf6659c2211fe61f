"""The run's failures of Arbor's own: saved with a server-side code, the partial text kept
(issue 12, item 9)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.db import database_sync_to_async

from accounts.tests.factories import UserFactory
from chat.generation import generation_start
from chat.models import Chat, Message, Status
from chat.services.turns import turn_send
from chat.streambuffer import StreamBuffer
from providers.catalog import catalog_seed
from providers.testing.base import Say, reply
from providers.testing.openai_server import OpenAIServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_platform_keys")]


class RedisLink:
    """A TCP relay to the real Redis that can be cut, as a lost Redis server or network is:
    every open connection closed, new ones refused."""

    def __init__(self, redis_url: str) -> None:
        self.parts = urlsplit(redis_url)  # tcp (redis://host:port/db) or a unix socket (?db=N)
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RedisLink:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cut()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        if self.parts.scheme == "unix":
            database, credentials = parse_qs(self.parts.query).get("db", ["0"])[0], ""
        else:
            database, credentials = self.parts.path.strip("/") or "0", self.parts.netloc.rpartition("@")[0]
        return f"redis://{credentials + '@' if credentials else ''}127.0.0.1:{port}/{database}"

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.parts.scheme == "unix":
            return await asyncio.open_unix_connection(self.parts.path)
        return await asyncio.open_connection(self.parts.hostname or "127.0.0.1", self.parts.port or 6379)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await self._open()
        self.writers += [client_writer, server_writer]

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


@database_sync_to_async
def _send(text: str, model: str) -> str:
    user = UserFactory()
    catalog_seed()
    started = turn_send(user=user, chat_id=None, parent_id=None, content=text, model_id=model)
    Chat.objects.filter(pk=started.chat.pk).update(title="set by the test")
    return str(started.assistant_message.pk)


@database_sync_to_async
def _message(message_id: str) -> Message:
    return Message.objects.get(pk=message_id)


async def test_redis_lost_mid_reply_saves_it_with_a_server_side_code_and_its_text(
    openai_fake: OpenAIServer, settings: Any
) -> None:
    openai_fake.script(reply(*[Say(f"word{index} ") for index in range(400)], delay=0.02))
    reply_id = await _send("Go on", "openai:gpt-5-mini")
    watcher = StreamBuffer(settings.REDIS_URL)  # the test's own view of Redis, not through the link
    try:
        async with RedisLink(settings.REDIS_URL) as link:
            settings.REDIS_URL = link.url  # the generation's buffer, heartbeats and watchers
            task = await generation_start(reply_id)
            follower = watcher.follow(reply_id, 0)
            first = await asyncio.wait_for(anext(follower), timeout=10)
            assert first["type"] == "delta"
            await link.cut()
            await asyncio.wait_for(task, timeout=30)
    finally:
        await watcher.aclose()

    saved = await _message(reply_id)
    assert (saved.status, saved.error_code) == (Status.ERROR, "internal")
    assert saved.error_message.startswith("Something went wrong on the server")
    assert saved.text.startswith("word0 ") and len(saved.text) < len("".join(f"word{i} " for i in range(400)))
