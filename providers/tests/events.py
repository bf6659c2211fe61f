"""Comparing adapters' events where a read may bring several of the vendor's: consecutive text
(or reasoning) deltas count as one, since an adapter passes on one delta per run in a read."""

from __future__ import annotations

from collections.abc import Iterable

from providers.contract import Event, ReasoningDelta, TextDelta


def deltas_joined(events: Iterable[Event]) -> list[Event]:
    joined: list[Event] = []
    for event in events:
        if isinstance(event, TextDelta | ReasoningDelta) and joined and type(joined[-1]) is type(event):
            joined[-1] = type(event)(joined[-1].text + event.text)  # type: ignore[union-attr]
        else:
            joined.append(event)
    return joined
