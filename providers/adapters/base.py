"""What every adapter shares: timeouts on the stream and the last-resort error mapping."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from providers.contract import ChatRequest, ChatResult, Endpoint, ErrorCode, Event, ProviderError, collect

logger = logging.getLogger(__name__)


class Adapter(ABC):
    """Subclasses implement `_stream` (vendor events → contract events, SDK errors →
    ProviderError) and `list_models`. `stream` adds what no vendor should have to: the
    first-token and idle timeouts, and a ProviderError for anything an adapter let through."""

    protocol: str

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @abstractmethod
    def _stream(self, request: ChatRequest) -> AsyncIterator[Event]: ...

    @abstractmethod
    async def list_models(self) -> list[str]:
        """The provider-side ids of the models this endpoint serves."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        events = self._stream(request)
        timeout = self.endpoint.timeouts.first_token
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise ProviderError(ErrorCode.TIMEOUT, provider=self.endpoint.provider) from None
                except ProviderError:
                    raise
                except Exception as error:  # noqa: BLE001 - the contract: adapters raise ProviderError only
                    # Only the type is logged: an SDK's message may quote the request.
                    logger.warning("%s adapter let %s through", self.protocol, type(error).__name__)
                    raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, provider=self.endpoint.provider) from None
                yield event
                timeout = self.endpoint.timeouts.idle
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    async def complete(self, request: ChatRequest) -> ChatResult:
        return await collect(self.stream(request))
