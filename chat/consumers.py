"""The chat WebSocket (`/ws/chat/`, protocol in docs/protocol.md).

Handshake and framing only so far: a socket without a signed-in user (guests count) is closed
with 4401; every frame gets an `error` frame back, echoing its `req`, until the chat core
implements the frame types.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

CLOSE_UNAUTHENTICATED = 4401


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            # Accept first: a close code reaches the browser only on an open socket.
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        try:
            frame = json.loads(text_data or "")
        except json.JSONDecodeError:
            await self._error(None, "bad_frame", "Frames are JSON objects.")
            return
        if not isinstance(frame, dict):
            await self._error(None, "bad_frame", "Frames are JSON objects.")
            return
        await self._error(frame.get("req"), "unknown_type", f"Unknown frame type {str(frame.get('type'))[:40]!r}.")

    async def _error(self, req: Any, code: str, message: str) -> None:
        await self.send_json({"type": "error", "req": req, "code": code, "message": message})
