"""Adapters by wire protocol, loaded lazily: a new protocol is a new module and one line here."""

from __future__ import annotations

from django.utils.module_loading import import_string

from providers.adapters.base import Adapter
from providers.contract import Endpoint

ADAPTERS: dict[str, str] = {
    "openai": "providers.adapters.openai.OpenAIAdapter",
    "anthropic": "providers.adapters.anthropic.AnthropicAdapter",
    "google": "providers.adapters.google.GoogleAdapter",
    "demo": "providers.adapters.demo.DemoAdapter",
}


def adapter_for(protocol: str, endpoint: Endpoint) -> Adapter:
    try:
        path = ADAPTERS[protocol]
    except KeyError:
        raise LookupError(f"no adapter for the protocol {protocol!r}") from None
    adapter_class: type[Adapter] = import_string(path)
    return adapter_class(endpoint)
