"""Keep share tokens out of the logs.

A share link's token is its only credential (`/share/<token>`): whoever reads it in a log can open
the chat and fork it. Two places write request paths:

- Python logging (`django.request`'s "Not Found: /share/…", the development server's one line per
  request): `ShareTokenFilter` on the console handler (config.settings LOGGING) rewrites every
  record it emits, whichever logger made it.
- daphne's access log, which the `daphne` command writes straight to its stream, not through
  logging: `install_access_log_redaction` (called from `ArborConfig.ready`, which daphne reaches
  while loading `config.asgi`, before it builds its server) makes the command use
  `RedactingAccessLog`, the same NCSA lines with the token replaced.

A proxy in front of Arbor logs its own lines: see docs/operations.md, "Logs and backups".
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from daphne.access import AccessLogGenerator

REDACTED = "[redacted]"
# The token is whatever follows /share/ up to the next path, query, fragment or space; the
# query string is redacted too, in case a client appends the token there.
_SHARE_PATH = re.compile(r"(/share/)[^/?#\s\"']+")


def redact_share_tokens(text: str) -> str:
    """`text` with every share token replaced by REDACTED."""
    if "/share/" not in text:  # the common case: no regular expression run
        return text
    return _SHARE_PATH.sub(rf"\g<1>{REDACTED}", text)


class ShareTokenFilter(logging.Filter):
    """Rewrites a record whose message names a share path; never drops a record.

    The message is formatted here (args merged) so a token passed as an argument is caught, then
    stored back with no args. A handler's filter sees records propagated from every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_share_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingAccessLog(AccessLogGenerator):
    """daphne's access log with share tokens redacted from the request line."""

    def write_entry(self, host: str, date: datetime, request: str, *rest: Any, **named: Any) -> None:
        super().write_entry(host, date, redact_share_tokens(request), *rest, **named)


def install_access_log_redaction() -> None:
    """Make the `daphne` command log through RedactingAccessLog.

    daphne offers no setting for its access logger: its command builds `AccessLogGenerator` by
    that name from `daphne.cli`'s globals when it starts the server, after loading the ASGI
    application, so replacing the name there is the one hook. Idempotent."""
    import daphne.cli

    daphne.cli.AccessLogGenerator = RedactingAccessLog  # type: ignore[misc]
