"""The server-sent events decoder the adapters read raw vendor streams with."""

from __future__ import annotations

import itertools

import pytest

from providers.adapters.sse import ServerSentEvent, SSEDecoder


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    """Every event of a stream that arrives in `chunks`, the stream's end included."""
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.end()


def in_pieces(stream: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    bounds = [0, *cuts, len(stream)]
    return [stream[start:end] for start, end in itertools.pairwise(bounds)]


def test_one_data_event_per_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\n') == [ServerSentEvent(None, b'{"a": 1}')]
    assert decoder.feed(b"data: [DONE]\n\n") == [ServerSentEvent(None, b"[DONE]")]


def test_several_events_in_one_read_come_out_in_order() -> None:
    assert decode(b"data: 1\n\ndata: 2\n\ndata: 3\n\n") == [
        ServerSentEvent(None, b"1"),
        ServerSentEvent(None, b"2"),
        ServerSentEvent(None, b"3"),
    ]


STREAM = b'event: message_start\ndata: {"x": "\xc3\xa9"}\n\n: ping\n\ndata: a\ndata: b\n\ndata: [DONE]\n\n'
EXPECTED = [
    ServerSentEvent("message_start", b'{"x": "\xc3\xa9"}'),
    ServerSentEvent(None, b"a\nb"),
    ServerSentEvent(None, b"[DONE]"),
]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_an_event_split_across_reads_anywhere_is_the_same_event(cut: int) -> None:
    assert decode(*in_pieces(STREAM, (cut,))) == EXPECTED


def test_a_stream_read_one_byte_at_a_time_is_the_same_stream() -> None:
    assert decode(*(STREAM[index : index + 1] for index in range(len(STREAM)))) == EXPECTED


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_reads_the_same(line_end: bytes) -> None:
    stream = STREAM.replace(b"\n", line_end)
    assert decode(stream) == EXPECTED
    for cut in range(1, len(stream)):
        assert decode(*in_pieces(stream, (cut,))) == EXPECTED, cut


def test_a_crlf_split_between_reads_is_one_line_end_not_two() -> None:
    # Read as two line ends, the CR would end the event early and split "a\nb" in two events.
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [ServerSentEvent(None, b"a\nb")]


def test_a_final_blank_line_ended_by_a_lone_cr_still_dispatches() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: last\r\r") == []  # the second CR may yet be half of a CRLF
    assert decoder.end() == [ServerSentEvent(None, b"last")]


def test_data_lines_join_with_lf_and_lose_one_leading_space() -> None:
    assert decode(b"data:{\ndata:  1}\ndata\ndata: \n\n") == [ServerSentEvent(None, b"{\n 1}\n\n")]


def test_comments_ids_retries_and_unknown_fields_are_skipped() -> None:
    stream = b": hello\nid: 7\nretry: 100\nfoo: bar\nnocolon\ndata: x\n\n"
    assert decode(stream) == [ServerSentEvent(None, b"x")]


def test_an_event_name_belongs_to_its_event_only() -> None:
    assert decode(b"event: ping\ndata: {}\n\ndata: {}\n\n") == [
        ServerSentEvent("ping", b"{}"),
        ServerSentEvent(None, b"{}"),
    ]


def test_a_blank_line_with_no_data_dispatches_nothing_and_forgets_the_name() -> None:
    assert decode(b"event: ping\n\n\n\ndata: x\n\n") == [ServerSentEvent(None, b"x")]


@pytest.mark.parametrize("chunks", [(b"\xef\xbb\xbfdata: x\n\n",), (b"\xef", b"\xbb", b"\xbfdata: x\n\n")])
def test_a_leading_byte_order_mark_is_dropped(chunks: tuple[bytes, ...]) -> None:
    assert decode(*chunks) == [ServerSentEvent(None, b"x")]


def test_a_byte_order_mark_later_in_the_stream_is_data() -> None:
    assert decode(b"data: x\n\n", b"data: \xef\xbb\xbfy\n\n") == [
        ServerSentEvent(None, b"x"),
        ServerSentEvent(None, b"\xef\xbb\xbfy"),
    ]


def test_an_event_the_stream_ends_in_is_dropped() -> None:
    assert decode(b"data: whole\n\ndata: half") == [ServerSentEvent(None, b"whole")]
    assert decode(b"data: whole\n\ndata: no blank line\n") == [ServerSentEvent(None, b"whole")]


def test_a_long_line_in_many_reads_is_joined_once_whole() -> None:
    payload = b"x" * 100_000
    stream = b"data: " + payload + b"\n\n"
    assert decode(*(stream[index : index + 1000] for index in range(0, len(stream), 1000))) == [
        ServerSentEvent(None, payload)
    ]


def test_empty_reads_change_nothing() -> None:
    assert decode(b"", b"data: x\n", b"", b"\n", b"") == [ServerSentEvent(None, b"x")]
