"""Begin: what a socket's `send`, `edit` or `regenerate` calls, the one service between a frame
and a running generation: the turn saved, the reply's request prepared, the generation started."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat.generation.pool import sync_db
from chat.generation.prepare import Prepared, generation_prepare_for
from chat.generation.run import generation_start
from chat.services.turns import TurnStarted
from providers.catalogcache import CatalogVersion, catalog_version_known, catalog_version_read


async def turn_begin(service: Callable[..., TurnStarted], **fields: Any) -> TurnStarted:
    """Run a turn service (`turn_send`, `turn_edit`, `turn_regenerate`) with `fields` and start
    the new reply's generation; a repeated send starts nothing. The buffer is open when this
    returns, so whoever learns the reply's id can follow it at once."""
    started, prepared = await _saved_and_prepared(service, await catalog_version_read(), **fields)
    if started.created:
        await generation_start(str(started.assistant_message.pk), route=started.route, prepared=prepared)
    return started


@sync_db
def _saved_and_prepared(
    service: Callable[..., TurnStarted], catalog_version: CatalogVersion, **fields: Any
) -> tuple[TurnStarted, Prepared | None]:
    """The turn, and for a new reply its generation's request, in one thread call: under load the
    reply then waits once for the database, not twice (behind every turn queued meanwhile). A
    failure to prepare is left to the generation, which prepares again and saves the reply with
    the error. `catalog_version` was read on the loop just before (`catalog_version_read`)."""
    with catalog_version_known(catalog_version):
        return _turn_and_request(service, **fields)


def _turn_and_request(service: Callable[..., TurnStarted], **fields: Any) -> tuple[TurnStarted, Prepared | None]:
    started = service(**fields)
    if not started.created:
        return started, None
    reply = started.assistant_message
    try:
        prepared = generation_prepare_for(
            reply=reply, chat=started.chat, user=fields["user"], parent=reply.parent, route=started.route
        )
    except Exception:  # noqa: BLE001 - reported by the generation itself
        return started, None
    return started, prepared
