"""Chat writes. Tree operations live in `chat.services.tree`."""
