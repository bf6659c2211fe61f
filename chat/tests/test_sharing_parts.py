"""What the share page carries of a reply's parts (chat.sharing.shared_parts): enough to draw it
as the chat does, and nothing the page does not show."""

from __future__ import annotations

import json

from chat.sharing import shared_parts

DOCUMENT = "5b0c2a9e-3f7e-4a57-9d7c-0d5a4f1f2b11"


def test_a_reply_keeps_its_text_reasoning_tool_names_and_document_cards_only() -> None:
    content = [
        {"type": "reasoning", "text": "Thinking."},
        {"type": "tool_call", "id": "call_1", "name": "create_document", "arguments": '{"secret": "arguments"}'},
        {
            "type": "tool_result",
            "tool_call_id": "call_1",
            "name": "create_document",
            "text": "raw result",
            "error": False,
            "data": {"document_id": DOCUMENT, "title": "Orbits", "kind": "text", "version": 1, "owner": "x"},
        },
        {"type": "tool_result", "tool_call_id": "call_2", "name": "search", "error": True, "data": {}},
        {"type": "image", "upload_id": "9f1c", "media_type": "image/png"},
        {"type": "text", "text": "Done."},
        "not a part",
    ]
    documents: dict[str, str] = {}
    shown = shared_parts(json.dumps(content), documents)  # as a raw query returns jsonb: text
    assert shown == [
        {"type": "reasoning", "text": "Thinking."},
        {"type": "tool_call", "name": "create_document"},
        {
            "type": "tool_result",
            "name": "create_document",
            "data": {"document_id": "d1", "title": "Orbits", "kind": "text", "version": 1},
        },
        {"type": "text", "text": "Done."},
    ]
    assert DOCUMENT not in json.dumps(shown)
    # The same document in a later reply keeps its page-local id.
    again = shared_parts(content, documents)
    assert again[2]["data"]["document_id"] == "d1"
