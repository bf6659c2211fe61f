"""A read that carries text and then an error: the text is taken before the error is raised."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from providers.adapters.anthropic import _Translation
from providers.adapters.openai import _StreamState
from providers.contract import ProviderError, TextDelta


def test_openai_text_before_an_error_in_the_same_read_is_kept() -> None:
    state = _StreamState(provider="openai")
    read = (
        b'data: {"choices":[{"index":0,"delta":{"content":"kept"}}]}\n\n'
        b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
    )
    taken = []
    with pytest.raises(ProviderError):
        for event in state.feed(read):
            taken.append(event)
    assert taken == [TextDelta("kept")]


def test_anthropic_text_before_an_error_in_the_same_read_is_kept() -> None:
    response = httpx2.Response(200, request=httpx2.Request("POST", "https://api.anthropic.com/v1/messages"))
    translation = _Translation(response)
    read = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"kept"}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    taken = []
    with pytest.raises(anthropic.APIStatusError):
        for event in translation.feed(read):
            taken.append(event)
    assert TextDelta("kept") in taken
