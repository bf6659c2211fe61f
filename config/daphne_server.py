"""daphne as the web processes run it (`python -m config.daphne_server`, daphne's own arguments),
with a request's body capped while it is read, and never parsed twice.

Where an upload's memory went, in daphne 4 on Twisted: Twisted spools the body to a temporary
file, then (unless told not to) reads all of a multipart body into memory and parses it into
`request.args`, which daphne never looks at; daphne then puts the whole body on the
application's queue at once, in 8 KB messages, before the application sees a header. So a 100 MB
upload was held several times over and refused only then, by the view: five at once took a
process from 257 MB to 1.8 GB, and the allocator kept 852 MB of it.

Here Twisted's form parsing is off (Django parses the body, streaming file parts to disk), and
the body is counted as it arrives. Once it is over `REQUEST_BODY_MAX_BYTES` (declared by
Content-Length, or counted in a chunked body) nothing more of it is kept and what was kept is
dropped; the application is never started, and the client gets 413 in the API's error envelope.
The rest of the body is still read (and thrown away): closing the connection mid-body would reset
it, and a client still sending would lose the 413. A process holds at most the cap per request.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import autobahn.util as autobahn_util
from daphne import http_protocol
from django.conf import settings

from config.eventloop import event_loop_policy_install
from config.tcpwrites import tcp_writes_at_once_install

if TYPE_CHECKING:
    from daphne.server import Server

logger = logging.getLogger(__name__)


def refusal_body(limit: int) -> bytes:
    size = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
    message = f"A request body may be at most {size}."
    return json.dumps({"error": {"code": "too_large", "message": message}}).encode()


class CappedWebRequest(http_protocol.WebRequest):
    """daphne's request, keeping at most `factory.body_limit` bytes of a body."""

    body_bytes = 0  # bytes of the body received (kept or not)
    too_large = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Twisted's own parse of a form body: a whole copy or more of it, for nothing.
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    @property
    def body_limit(self) -> int:
        return self.channel.factory.body_limit

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.body_limit:
            self.too_large = True
            length = 0  # Twisted then keeps the body in an empty in-memory file, never written
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self.body_bytes += len(data)
        if not self.too_large and self.body_bytes > self.body_limit:
            self.too_large = True
            self.content.seek(0)
            self.content.truncate()
        if not self.too_large:
            super().handleContentChunk(data)

    def process(self) -> Any:
        if not self.too_large:
            return super().process()
        logger.warning(
            "Refused a request body over %d bytes (413): %s %s",
            self.body_limit,
            self.method.decode("ascii", "replace"),
            self.path.decode("ascii", "replace"),
        )
        body = refusal_body(self.body_limit)
        headers = [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode()),
            (b"Cache-Control", b"no-store"),
        ]
        self.handle_reply({"type": "http.response.start", "status": 413, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": body})
        return None


class CappedHTTPFactory(http_protocol.HTTPFactory):
    def __init__(self, server: Server, body_limit: int | None = None) -> None:
        super().__init__(server)
        # Read when daphne builds the factory, after it imported the application (settings set).
        self.body_limit = settings.REQUEST_BODY_MAX_BYTES if body_limit is None else body_limit

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CappedWebRequest
        return protocol


def main() -> None:
    # The loop is chosen before daphne's server module is imported: importing it makes the loop.
    event_loop_policy_install()
    from daphne import server as daphne_server
    from daphne.cli import CommandLineInterface

    # daphne's Server builds its HTTP factory by this module-level name; its command line is
    # otherwise used as it is.
    daphne_server.HTTPFactory = CappedHTTPFactory
    tcp_writes_at_once_install()
    # autobahn colours the arguments of a debug log line with click on every frame it sends,
    # whether or not the line is logged: a few percent of a streamed token's CPU. Uncoloured.
    autobahn_util._HAS_CLICK = False
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
