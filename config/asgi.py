"""The ASGI entry point: HTTP to Django, WebSockets through session auth and an Origin check."""

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
from channels.security.websocket import AllowedHostsOriginValidator

from chat.generation import GenerationsWatched, generations_watch
from chat.routing import websocket_urlpatterns
from config.server_loop import when_the_server_loop_starts

# The process's generation watchers (stops, heartbeats, the orphan sweep) start with daphne's
# loop, so a restarted process sweeps before anyone reaches it; elsewhere with the first request.
when_the_server_loop_starts(generations_watch)
application = GenerationsWatched(
    ProtocolTypeRouter(
        {
            "http": django_asgi_application,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
