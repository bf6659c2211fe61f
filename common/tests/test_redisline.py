from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.redisline import RedisLine, _Line, _reply_at, command_encode
from config.redis_urls import redis_url_with_db


@pytest.fixture
async def line() -> AsyncIterator[RedisLine]:
    line = RedisLine(settings.REDIS_URL)
    yield line
    line.close()


def key() -> str:
    return f"test:redisline:{uuid.uuid4()}"


def test_a_command_is_an_array_of_bulk_strings() -> None:
    assert command_encode((b"SET", "k", 5)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n"


@pytest.mark.parametrize(
    ("wire", "reply"),
    [
        (b":42\r\n", 42),
        (b"$5\r\nhello\r\n", b"hello"),
        (b"$0\r\n\r\n", b""),
        (b"$-1\r\n", None),
        (b"+OK\r\n", "OK"),
        (b"*2\r\n:1\r\n*1\r\n$1\r\nx\r\n", [1, [b"x"]]),
        (b"*-1\r\n", None),
    ],
)
def test_every_reply_kind_is_read_and_ends_where_it_should(wire: bytes, reply: object) -> None:
    assert _reply_at(bytearray(wire + b":7\r\n"), 0) == (reply, len(wire))


def test_an_error_reply_is_returned_as_redis_py_s_error() -> None:
    error, _ = _reply_at(bytearray(b"-NOSCRIPT No matching script\r\n"), 0)
    assert isinstance(error, NoScriptError)
    error, _ = _reply_at(bytearray(b"-ERR wrong number of arguments\r\n"), 0)
    assert type(error) is ResponseError


async def test_replies_split_at_any_byte_reach_their_callers_in_order() -> None:
    loop = asyncio.get_running_loop()
    protocol = _Line(loop, timeout=30)
    waiting = [protocol.request(command_encode((b"PING",))) for _ in range(3)]
    wire = b":1\r\n$3\r\nabc\r\n*2\r\n:2\r\n$-1\r\n"
    for index in range(len(wire)):
        protocol.data_received(wire[index : index + 1])
    assert [future.result() for future in waiting] == [1, b"abc", [2, None]]


async def test_a_command_gets_its_reply_from_redis(line: RedisLine) -> None:
    name = key()
    assert await line.execute(b"SET", name, b"v", b"EX", 60) == "OK"
    assert await line.execute(b"GET", name) == b"v"
    assert await line.execute(b"INCR", name + ":n") == 1


async def test_an_error_fails_its_own_command_only(line: RedisLine) -> None:
    name = key()
    results = await asyncio.gather(
        line.execute(b"SET", name, b"1"),
        line.execute(b"EVALSHA", b"0" * 40, 0),
        line.execute(b"INCR", name),
        return_exceptions=True,
    )
    assert results[0] == "OK"
    assert isinstance(results[1], NoScriptError)
    assert results[2] == 2


async def test_the_commands_of_one_loop_iteration_go_in_one_write(
    line: RedisLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await line.execute(b"PING")
    writes: list[bytes] = []
    transport = line._line._transport  # type: ignore[union-attr]
    real_write: Callable[[bytes], None] = transport.write
    monkeypatch.setattr(transport, "write", lambda data: (writes.append(data), real_write(data)))
    replies = await asyncio.gather(*[line.execute(b"INCR", key()) for _ in range(50)])
    assert replies == [1] * 50
    assert len(writes) == 1


async def test_the_url_s_database_is_selected() -> None:
    line = RedisLine(redis_url_with_db(settings.REDIS_URL, 5))
    name = key()
    try:
        await line.execute(b"SET", name, b"in five", b"EX", 60)
    finally:
        line.close()
    five = redis.Redis.from_url(redis_url_with_db(settings.REDIS_URL, 5), driver_info=None)
    zero = redis.Redis.from_url(redis_url_with_db(settings.REDIS_URL, 0), driver_info=None)
    try:
        assert await five.get(name) == b"in five"
        assert await zero.get(name) is None
    finally:
        await five.aclose()
        await zero.aclose()


async def test_a_cancelled_caller_leaves_the_next_reply_to_its_own_caller(line: RedisLine) -> None:
    name = key()
    await line.execute(b"PING")  # connected
    cancelled = asyncio.ensure_future(line.execute(b"SET", name, b"first"))
    await asyncio.sleep(0)  # asked for, not yet answered
    cancelled.cancel()
    assert await line.execute(b"GET", name) == b"first"


async def test_a_lost_connection_fails_its_waiters_and_the_next_command_connects_again(line: RedisLine) -> None:
    await line.execute(b"PING")
    first = line._line
    waiting = asyncio.ensure_future(line.execute(b"BLPOP", key(), 5))
    await asyncio.sleep(0.05)
    first._transport.abort()  # type: ignore[union-attr]
    with pytest.raises(RedisConnectionError):
        await waiting
    assert await line.execute(b"PING") == "PONG"
    assert line._line is not first


async def test_a_silent_server_fails_the_waiting_commands_with_a_timeout() -> None:
    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    line = RedisLine(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        with pytest.raises(RedisTimeoutError):
            await line.execute(b"PING")
    finally:
        line.close()
        server.close()
        await server.wait_closed()


async def test_a_refused_connection_is_redis_py_s_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    line = RedisLine(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(RedisConnectionError, match="Could not connect to Redis"):
        await line.execute(b"PING")


def test_tls_urls_are_left_to_redis_py() -> None:
    assert not RedisLine.serves("rediss://127.0.0.1:6380/0")
    assert RedisLine.serves("redis://127.0.0.1:6379/0")
    assert RedisLine.serves("unix:///tmp/redis.sock?db=2")
    with pytest.raises(ValueError, match="TLS"):
        RedisLine("rediss://127.0.0.1:6380/0")


async def test_commands_within_the_gathering_time_share_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    line = RedisLine(settings.REDIS_URL, gather=1.0)
    try:
        await line.execute(b"PING")
        writes: list[bytes] = []
        transport = line._line._transport  # type: ignore[union-attr]
        real_write: Callable[[bytes], None] = transport.write
        monkeypatch.setattr(transport, "write", lambda data: (writes.append(data), real_write(data)))

        async def later(name: str) -> int:
            await asyncio.sleep(0)  # another loop iteration, well within the gathering time
            return await line.execute(b"INCR", name)

        assert await asyncio.gather(line.execute(b"INCR", key()), later(key())) == [1, 1]
        assert len(writes) == 1
    finally:
        line.close()


async def test_a_script_runs_by_its_hash_and_again_whole_once_redis_forgot_it(line: RedisLine) -> None:
    script = "return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])"
    name = key()
    assert await line.run_script(script, (name,), (10,)) == 11
    await line.execute(b"SCRIPT", b"FLUSH")
    assert await line.run_script(script, (name,), (10,)) == 12  # refused by hash, then sent whole
    assert await line.run_script(script, (name,), (10,)) == 13  # known again
