"""The chat socket's route, and the one wrapper it needs from the ASGI stack around it."""

from __future__ import annotations

from typing import Any

from django.urls import path

from chat.consumers import RAW_SEND, ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),
]


class RawSendKept:
    """Keeps the server's own `send` in the scope (`RAW_SEND`), for the chat socket's reply
    frames: Channels' session middleware wraps every send to save a changed session with an HTTP
    response, which a WebSocket frame never is, and that wrapper (a lazy session read per call)
    cost more than daphne's own handling of the frame. Wrap it outside the session middleware."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        return await self.app({**scope, RAW_SEND: send}, receive, send)
