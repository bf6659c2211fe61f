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

from chat.generation import GenerationsWatched
from chat.routing import websocket_urlpatterns

# The first request of any kind starts the process's generation watchers (the orphan sweep too).
application = GenerationsWatched(
    ProtocolTypeRouter(
        {
            "http": django_asgi_application,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
