"""The chat WebSocket (`/ws/chat/`; the protocol is docs/protocol.md).

Thin: a frame's shape is checked here (types, ids, lengths), one service is called, the answer
is sent. Generations do not belong to a socket: `chat.generation` runs them and writes their frames
to the stream buffer; a socket only *follows* a reply (`chat.fanout.follow_reply`: in memory
when the reply runs in this process, from Redis otherwise), with one follower task per (socket,
message). A second follow of the same message replaces the first; closing the socket cancels
its followers and never a generation. Every socket of a user joins the channel-layer group
`user.<id>`; a `chat.event` message there carries a ready `frame` for the user's tabs (titles,
new generations, switches), skipping the socket named in `skip` (the tab that caused it).
A socket also joins its session's group (`accounts.sessions.session_group`): a `session.ended`
there, or in the user's group after a password change, closes it with 4401 (chat/receivers.py
sends them), and each turn frame re-reads the session before it starts anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts.models import User
from accounts.sessions import session_group, session_signed_in
from chat.client_frames import (
    EditFrame,
    FrameRefused,
    PingFrame,
    RegenerateFrame,
    ResumeFrame,
    SendFrame,
    StopFrame,
    SwitchFrame,
    client_frame,
)
from chat.fanout import follow_reply
from chat.generation import INTERRUPTED, generation_stop, sync_db, turn_begin
from chat.models import Message, Role, Status
from chat.parts import reasoning_of
from chat.services.titles import user_group
from chat.services.tree import message_switch
from chat.services.turns import (
    TurnRefused,
    TurnStarted,
    turn_edit,
    turn_regenerate,
    turn_send,
)
from chat.streambuffer import BufferExpired, frame_encode, stream_buffer
from chat.tabs import others_listening, presence_ensure

logger = logging.getLogger(__name__)

# The scope key under which `chat.routing.RawSendKept` keeps the server's own `send`.
RAW_SEND = "arbor.raw_send"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_DISABLED = 4403  # the account was disabled by an operator (usage.services.operators.user_disable)
# A repeated send waits at most this long for the first copy's generation to open its buffer.
REPEAT_WAIT_INTERVAL = 0.05
REPEAT_WAIT_POLLS = 100

Frame = dict[str, Any]


class SessionEnded(Exception):
    """The socket's session no longer signs its user in: the socket closes with 4401."""


class FrameError(Exception):
    """Answered with an `error` frame (code, message); the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(message: str) -> FrameError:
    return FrameError("bad_frame", message)


def _not_found() -> FrameError:
    # The same answer for another user's message as for a missing one: ids are not probeable.
    return FrameError("not_found", "No such message.")


# --- Database calls (sync, run in the thread pool) ----------------------------------------------
def _owned(user: User, message_id: str) -> Message | None:
    return (
        Message.objects.filter(pk=message_id, chat__owner=user, chat__deleted_at__isnull=True)
        .select_related("chat")
        .first()
    )


@sync_db
def _switch(user: User, message_id: str) -> tuple[str, str] | None:
    """(chat id, new active leaf id) after selecting the user's message; None if not theirs."""
    message = _owned(user, message_id)
    if message is None:
        return None
    return str(message.chat_id), str(message_switch(message=message).pk)


def saved_frames(message: Message) -> list[Frame]:
    """A reply from the database once its buffer is gone: one `snapshot` delta with the whole
    text (and reasoning) and its `done`. Neither has a seq. A reply still `streaming` with no
    buffer has no generation writing it (its process died): it ends as `interrupted`, and no
    generation is started again. The `done` carries the message as the chat's tree holds it, so
    the tab patches its tree instead of reading the whole chat again."""
    from chat.selectors import message_tree_entry

    message_id = str(message.pk)
    reasoning = reasoning_of(message.content)
    snapshot: Frame = {"type": "delta", "message_id": message_id, "seq": None, "snapshot": True, "text": message.text}
    if reasoning:
        snapshot["reasoning"] = reasoning
    done: Frame = {"type": "done", "message_id": message_id, "seq": None, "status": message.status}
    done.update(finish_reason=message.finish_reason, usage=message.usage or {}, message=message_tree_entry(message))
    if message.status == Status.STREAMING:
        done.update(status=Status.ERROR, error={"code": "interrupted", "message": INTERRUPTED})
        # As the recovery will save it: a tab must not keep it `streaming` with nothing writing it.
        done["message"].update(status=Status.ERROR, error_code="interrupted", error_message=INTERRUPTED)
    elif message.error_code:
        done["error"] = {"code": message.error_code, "message": message.error_message}
    return [snapshot, done]


async def _buffer_opened(message_id: str) -> None:
    """Wait (boundedly) for a streaming reply's buffer to open. A repeated `send` finds the first
    copy's reply as soon as it is committed, but that copy opens the buffer only after preparing
    the request; followed before then, the reply would look abandoned and end as `interrupted`.
    A buffer still missing after the wait is followed as it is (its process died)."""
    buffer = stream_buffer()
    for _ in range(REPEAT_WAIT_POLLS):
        if await buffer.exists(message_id):
            return
        await asyncio.sleep(REPEAT_WAIT_INTERVAL)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user: User | None = None
        self.group: str | None = None
        self.session_key: str | None = None
        self.session_group: str | None = None
        self.followers: dict[str, asyncio.Task[None]] = {}

    # --- Connection ---------------------------------------------------------------------------
    async def connect(self) -> None:
        user = self.scope.get("user")
        signed_in = user is not None and user.is_authenticated
        if not signed_in or not user.is_active:
            # Accepted first: a close code reaches the browser only on an open socket.
            await self.accept()
            await self.close(code=CLOSE_DISABLED if signed_in else CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.group = user_group(user.pk)
        # In its groups before it is accepted: a tab that is open hears every notice from then on.
        await presence_ensure(self.channel_layer)
        await self.channel_layer.group_add(self.group, self.channel_name)
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        if self.session_key:
            # Closed with the session: sign-out, a password change, a flush (chat/receivers.py).
            self.session_group = session_group(self.session_key)
            await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # This socket's followers only: the generations they follow keep running and are saved.
        for task in list(self.followers.values()):
            task.cancel()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.session_group is not None:
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def user_disabled(self, event: dict[str, Any]) -> None:
        """The account was disabled: stop reading frames and close (from the user's group)."""
        self.user = None
        await self.close(code=CLOSE_DISABLED)

    async def session_ended(self, event: dict[str, Any]) -> None:
        """The session ended (its group, or the user's after a password change): stop reading
        frames and close as signed out; the tab loads a page and reconnects on its new session.
        Once only: a sign-out announces itself twice (the row deleted, the user signed out)."""
        if self.user is None:
            return
        self.user = None
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def chat_event(self, event: dict[str, Any]) -> None:
        """A frame for every tab of this user (from the group), except the one that caused it."""
        if event.get("skip") != self.channel_name:
            await self.send_json(event["frame"])

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels first closes stale database connections of its own thread, in a thread hop,
        # for every message a socket gets: a tenth of a turn's CPU. This consumer touches the
        # database only through `sync_db` calls, each of which closes stale connections in the
        # thread it runs in, before and after (Channels' `database_sync_to_async`).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        # Every frame out is encoded the way the stream buffer stores them (orjson, compact).
        return frame_encode(content)

    # --- Frames in ----------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.user is None:
            return  # closing with 4401
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError:
            frame = None
        except RecursionError:
            # A frame of nested arrays or objects deeper than the parser's recursion allows
            # (a thousand levels; a real frame has three): refused, and the socket stays open.
            await self._error(None, "bad_frame", "The frame is nested too deeply.")
            return
        await self.receive_json(frame)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        try:
            frame = client_frame(content)
        except FrameRefused as refusal:
            await self._error(refusal.req, refusal.code, refusal.message)
            return
        req = frame.req
        try:
            await getattr(self, f"on_{frame.type}")(frame)
        except FrameError as refusal:
            await self._error(req, refusal.code, refusal.message)
        except TurnRefused as refusal:
            await self._error(req, refusal.code, refusal.message, retry_after=refusal.retry_after)
        except SessionEnded:
            await self.session_ended({})
        except Exception:
            logger.exception("chat socket: %s frame failed", frame.type)
            # With the reply's id a tab follows it again (as for `stream_unavailable`): a resume
            # that met Redis coming back must not leave the reply unfollowed.
            resumed = frame.message_id if isinstance(frame, ResumeFrame) else None
            await self._error(req, "internal", "Something went wrong; try again.", message_id=resumed)

    async def on_send(self, frame: SendFrame) -> None:
        if frame.parent_id is not None and frame.chat_id is None:
            raise _bad("`parent_id` needs the `chat_id` of its chat.")
        started = await turn_begin(
            self._in_session(turn_send),
            user=self.user,
            chat_id=frame.chat_id,
            parent_id=frame.parent_id,
            content=frame.content,
            model_id=frame.model,
            client_id=frame.client_id or None,  # "" is no client_id
            attachments=frame.attachments,
        )
        await self._started(frame.req, started)

    async def on_edit(self, frame: EditFrame) -> None:
        started = await turn_begin(
            self._in_session(turn_edit),
            user=self.user,
            message_id=frame.message_id,
            content=frame.content,
            model_id=frame.model,
            attachments=frame.attachments,
        )
        await self._started(frame.req, started)

    async def on_regenerate(self, frame: RegenerateFrame) -> None:
        started = await turn_begin(
            self._in_session(turn_regenerate), user=self.user, message_id=frame.message_id, model_id=frame.model
        )
        await self._started(frame.req, started)

    async def on_stop(self, frame: StopFrame) -> None:
        message = await self._owned_reply(frame.message_id)
        if message.status == Status.STREAMING:
            await generation_stop(frame.message_id)
        # The `done` frame (status `stopped`) goes to every socket following the reply.
        await self.send_json({"type": "ack", "req": frame.req, "message_id": frame.message_id})

    async def on_switch(self, frame: SwitchFrame) -> None:
        switched = await _switch(self.user, frame.message_id)
        if switched is None:
            raise _not_found()
        chat_id, leaf_id = switched
        notice = {"type": "switched", "chat_id": chat_id, "message_id": frame.message_id, "active_leaf_id": leaf_id}
        await self.send_json({**notice, "req": frame.req})
        await self._tell_other_tabs(notice)

    async def on_resume(self, frame: ResumeFrame) -> None:
        message_id = frame.message_id
        message = await self._owned_reply(message_id)
        if message.status != Status.STREAMING and not await stream_buffer().is_finished(message_id):
            # Saved, but its buffer never got its `done` (Redis was lost as the reply ended) or is
            # gone: the saved message answers, or the follower would wait on a buffer nothing writes.
            for saved in saved_frames(message):
                await self.send_json(saved)
            return
        await self._follow(message_id, frame.after_seq or 0)

    async def on_ping(self, frame: PingFrame) -> None:
        await self.send_json({"type": "pong", "req": frame.req})

    # --- Turns and following ------------------------------------------------------------------
    def _in_session(self, service: Callable[..., TurnStarted]) -> Callable[..., TurnStarted]:
        """`service`, run only while this socket's session still signs its user in. A turn calls
        and bills a model, so its frame is checked itself rather than trusting that the close
        sent when the session ended (`session_ended`) has arrived: one read by key, in the
        turn's own database call. Other frames rely on that close."""
        session_key, user_id = self.session_key, self.user.pk if self.user is not None else None

        def service_in_session(**fields: Any) -> TurnStarted:
            if user_id is None or not session_signed_in(session_key=session_key, user_id=user_id):
                raise SessionEnded
            return service(**fields)

        return service_in_session

    async def _started(self, req: Any, started: TurnStarted) -> None:
        """Acknowledge a begun turn (its generation running, its buffer open), follow the reply
        from its first frame, and tell the user's other tabs."""
        reply = started.assistant_message
        reply_id = str(reply.pk)
        user_message_id = str(started.user_message.pk) if started.user_message is not None else None
        chat_id = str(started.chat.pk)
        ids = {"chat_id": chat_id, "user_message_id": user_message_id, "assistant_message_id": reply_id}
        await self.send_json({"type": "ack", "req": req, **ids})
        if not started.created and reply.status == Status.STREAMING:
            await _buffer_opened(reply_id)
        await self._follow(reply_id, 0)
        if started.created:
            parent_id = str(reply.parent_id)
            notice = {"type": "generation", "chat_id": chat_id, "message_id": reply_id, "parent_id": parent_id}
            await self._tell_other_tabs({**notice, "user_message_id": user_message_id})

    async def _owned_reply(self, message_id: str) -> Message:
        message = await sync_db(_owned)(self.user, message_id)
        if message is None:
            raise _not_found()
        if message.role != Role.ASSISTANT:
            raise FrameError("bad_request", "Only replies stream.")
        return message

    async def _follow(self, message_id: str, after_seq: int) -> None:
        previous = self.followers.pop(message_id, None)
        if previous is not None:
            previous.cancel()
            await asyncio.wait([previous])  # its last frame is out before the new follower's first
        self.followers[message_id] = asyncio.create_task(self._forward(message_id, after_seq))

    async def _forward(self, message_id: str, after_seq: int) -> None:
        """Send the reply's frames after `after_seq` as the buffer numbered them, then live ones,
        through `done`; from the saved message once the buffer is gone."""
        seq = after_seq
        try:
            while True:
                try:
                    async for frame in follow_reply(stream_buffer(), message_id, seq):
                        await self._send_frame(frame)
                        seq = frame["seq"]
                    return
                except RedisTimeoutError:
                    # A blocking read outlived the client's socket timeout (a model silent for
                    # seconds, e.g. thinking): read on from the last frame sent.
                    continue
                except BufferExpired:
                    message = await sync_db(Message.objects.filter(pk=message_id).first)()
                    if message is None:
                        raise _not_found() from None
                    for frame in saved_frames(message):
                        await self.send_json(frame)
                    return
        except FrameError as refusal:
            await self._error(None, refusal.code, refusal.message, message_id=message_id)
        except Exception:
            logger.exception("chat socket: following %s failed", message_id)
            await self._error(None, "stream_unavailable", "The reply's stream broke; resume it.", message_id=message_id)
        finally:
            if self.followers.get(message_id) is asyncio.current_task():
                del self.followers[message_id]

    # --- Frames out ---------------------------------------------------------------------------
    async def _send_frame(self, frame: Frame) -> None:
        """A reply's frame: its text as encoded once for every follower, when it has one, sent
        straight to the server when the stack kept its `send` (`chat.routing.RawSendKept`)."""
        text = getattr(frame, "text", None)
        if text is None:
            await self.send_json(frame)
        elif (raw_send := self.scope.get(RAW_SEND)) is not None:
            await raw_send({"type": "websocket.send", "text": text})
        else:
            await self.send(text_data=text)

    async def _tell_other_tabs(self, frame: Frame) -> None:
        if not await others_listening(self.channel_layer, self.group, self.channel_name):
            return
        event = {"type": "chat.event", "frame": frame, "skip": self.channel_name}
        await self.channel_layer.group_send(self.group, event)

    async def _error(self, req: Any, code: str, message: str, **extra: Any) -> None:
        frame = {"type": "error", "req": req, "code": code, "message": message}
        frame.update({key: value for key, value in extra.items() if value is not None})
        await self.send_json(frame)
