"""Generations: one asyncio task per reply in the ASGI process, not tied to any socket.

The pipeline, a module a step: `begin` (the one service a socket's turn frame calls) →
`prepare` → `run` (the model's stream and the tool loop) → `write`
(each frame into the reply's Redis stream, then to this process's followers) → `finish` (save,
settle and bill, `done`); `watch` keeps stops and heartbeats, `owner` tells whether a
generation's process is alive, `recover` ends orphans, `sweep` looks for them periodically,
`stop` ends a generation wherever it runs, `pool` holds the database threads. Other apps use the
names exported here.

A generation streams from the provider (through `RoutedStream`: retries, failover, breaker),
coalesces deltas (~30 ms) into the message's Redis stream (`chat.streambuffer`), which every
tab of any process can follow, and hands each stored frame to this process's own followers
directly (`chat.fanout`). It saves the message when it ends: complete, stopped (the partial
text kept) or error (the partial text kept, with a user-safe code). Closing a tab does not stop it.

Tools: a model whose route supports tool calls is offered every registered tool
(`chat.tools`). When a model call ends with tool calls, each is run, its result is stored in
the reply and streamed as a `tool_result` frame, and the model is called again with the
results, for at most `MAX_MODEL_CALLS` calls per reply.

Stop works from any process: the local task is cancelled; another process hears of it on a
Redis channel, and a flag behind it covers a process that was not listening at that moment.
A heartbeat key per generation names the process running it, and each process keeps a short-lived
key of its own while it runs generations, so recovery (at start-up, from every web process's
periodic sweep, and for a stop asked of it) tells a generation still running elsewhere from one
whose process died, even while the dead one's heartbeat has not expired yet.
"""

from __future__ import annotations

from chat.generation.begin import turn_begin
from chat.generation.pool import sync_db
from chat.generation.prepare import Prepared, generation_prepare, generation_prepare_for
from chat.generation.recover import INTERRUPTED, INTERRUPTED_CODE, generations_recover_orphans
from chat.generation.run import MAX_MODEL_CALLS, generation_start
from chat.generation.stop import generation_stop
from chat.generation.sweep import GenerationsWatched, generations_watch
from chat.generation.watch import RUNNING

__all__ = [
    "INTERRUPTED",
    "INTERRUPTED_CODE",
    "MAX_MODEL_CALLS",
    "RUNNING",
    "GenerationsWatched",
    "Prepared",
    "generation_prepare",
    "generation_prepare_for",
    "generation_start",
    "generation_stop",
    "generations_recover_orphans",
    "generations_watch",
    "sync_db",
    "turn_begin",
]
