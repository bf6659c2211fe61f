"""Write: a generation's frames into its Redis stream, then to this process's followers."""

from __future__ import annotations

from typing import Any

from chat.fanout import Fanout
from chat.streambuffer import StreamBuffer, WireFrame, frame_encode


class FrameWriter:
    """Stores a generation's frames in its Redis stream, then hands each, numbered, to this
    process's followers. The coalescer calls it one frame at a time, in order."""

    def __init__(self, buffer: StreamBuffer, hub: Fanout, message_id: str) -> None:
        self.buffer, self.hub, self.message_id = buffer, hub, message_id

    async def __call__(self, frame: dict[str, Any]) -> int:
        # Encoded once: the same text is stored and sent to every follower here.
        payload = frame_encode(frame)
        seq = await self.buffer.append_encoded(self.message_id, payload)
        self.hub.publish(self.message_id, WireFrame(payload, frame, self.message_id, seq))
        return seq
