"""Limits on every reply, whatever its provider does: output tokens, characters and wall time.

A vendor (or an OpenAI-compatible server, or a local model in a loop) may ignore the max_tokens
it was sent and stream forever; a reply must end anyway, with a clear status and its text kept:
- output tokens: every model call asks for at most what the reply has left of the model's max
  output (`tokens_left`), so the calls of a tool loop share one allowance;
- characters: past `REPLY_MAX_CHARS` of output (text, reasoning, tool arguments), or past
  `MAX_CHARS_PER_TOKEN` per token of the model's max output (a vendor that ignores max_tokens:
  tokens cannot be counted as they stream, characters can), the stream is cut, and the reply is
  `complete` with finish reason `length`, as if the model had hit its max_tokens (which is what
  an over-long stream is: a length limit reached);
- wall time: past `REPLY_MAX_SECONDS` the reply is cut and saved as an error, `timeout`, with a
  message that says so (the model did not finish; no length limit was reached).
"""

from __future__ import annotations

import dataclasses

from django.conf import settings

from providers.contract import ErrorCode, Event, ProviderError, ReasoningDelta, TextDelta, ToolCallDelta

REPLY_TOO_SLOW = "The reply took longer than its {seconds:g}-second limit and was cut off."
# More characters than any tokenizer writes per token on average (about 4 in English prose, fewer
# in code and most other languages): a stream past this many per token of the model's max output
# has outrun the max_tokens it was sent.
MAX_CHARS_PER_TOKEN = 10


def reply_too_slow(seconds: float) -> ProviderError:
    return ProviderError(ErrorCode.TIMEOUT, REPLY_TOO_SLOW.format(seconds=seconds))


def tokens_left(max_output_tokens: int | None, used: int) -> int | None:
    """What the next model call may write: the model's max output less what the reply's earlier
    calls wrote (None: the model states no max, nothing to send)."""
    if max_output_tokens is None:
        return None
    return max_output_tokens - used


class CharBudget:
    """The characters a reply may still write. `take` passes each event through, the last one
    cut to what is left; once an event had to be cut the budget is `spent` and the stream must
    end. One type check and one `len` per event: this runs for every token."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.spent = False

    @classmethod
    def for_reply(cls, max_output_tokens: int | None) -> CharBudget:
        """The budget of a reply to a model with this max output (None: the setting alone)."""
        limit = settings.REPLY_MAX_CHARS
        if max_output_tokens is not None:
            limit = min(limit, max_output_tokens * MAX_CHARS_PER_TOKEN)
        return cls(limit)

    def take(self, event: Event) -> Event | None:
        """`event` as far as the budget allows, or None when nothing of it fits."""
        kind = type(event)
        if kind is TextDelta or kind is ReasoningDelta:
            name = "text"
        elif kind is ToolCallDelta:
            name = "arguments"
        else:
            return event  # starts, ends, usage, finish: no characters
        written: str = getattr(event, name)
        if len(written) <= self.left:
            self.left -= len(written)
            return event
        self.spent = True
        kept = written[: self.left]
        self.left = 0
        return dataclasses.replace(event, **{name: kept}) if kept else None  # type: ignore[arg-type]
