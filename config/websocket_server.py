"""daphne's WebSocket server, as Arbor needs it: a frame past the size limit closes with 1009.

daphne refuses a message over its limit (1 MiB, `--websocket_max_message_size`) through autobahn,
which by default fails a connection by dropping the TCP connection (`failByDrop`), so the client
sees 1006 and cannot tell a refused frame from a network fault: it reconnects and sends the same
frame again. With `failByDrop` off autobahn closes with the WebSocket closing handshake instead:
code 1009 (message too big) and a reason naming the limit. daphne offers no option for it, so the
factory daphne builds is set up here; `config.asgi` calls this when daphne imports it, which is
before daphne builds its factory.
"""

from __future__ import annotations

from typing import Any

_APPLIED = "_arbor_closes_cleanly"


def websocket_failures_close_cleanly() -> None:
    """Every WebSocket factory daphne builds from now on closes failed connections with a code."""
    from daphne.ws_protocol import WebSocketFactory

    if getattr(WebSocketFactory, _APPLIED, False):
        return
    built = WebSocketFactory.__init__

    def init(self: WebSocketFactory, *args: Any, **kwargs: Any) -> None:
        built(self, *args, **kwargs)
        # daphne's own setProtocolOptions call afterwards names other options: this one stays.
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = init  # type: ignore[method-assign]
    setattr(WebSocketFactory, _APPLIED, True)
