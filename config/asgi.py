"""The ASGI entry point: HTTP to Django, WebSockets through an Origin check (scheme, host and
port: `config.origins`) and session auth. daphne imports this before it builds its WebSocket
factory, so the factory's options set here (`config.websocket_server`) apply to every socket."""

from __future__ import annotations

import os

from config.startup import exit_on_startup_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

with exit_on_startup_error():
    from django.core.asgi import get_asgi_application

    # Django must be set up before anything imports models (the routing below does).
    django_asgi_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter

from chat.generation import GenerationsWatched, generations_watch
from chat.routing import RawSendKept, websocket_urlpatterns
from config.origins import SameOriginValidator
from config.server_loop import when_the_server_loop_starts
from config.websocket_server import websocket_failures_close_cleanly

websocket_failures_close_cleanly()

# The process's generation watchers (stops, heartbeats, the orphan sweep) start with daphne's
# loop, so a restarted process sweeps before anyone reaches it; elsewhere with the first request.
when_the_server_loop_starts(generations_watch)
application = GenerationsWatched(
    ProtocolTypeRouter(
        {
            "http": django_asgi_application,
            "websocket": SameOriginValidator(RawSendKept(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
        }
    )
)
