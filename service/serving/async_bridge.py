"""Turns the engine thread's listener callbacks into awaitables on the event loop.

The only place where engine results cross into asyncio. Asyncio objects are created
inside the running loop; the engine thread reaches them through call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from service.engine.core import EngineCore
from service.engine.requests import GenerationOutput, Request, TokenEvent
from service.errors import ServiceError

StreamItem = TokenEvent | GenerationOutput


class _LoopListener:
    """A RequestListener that forwards to a future and (when streaming) a queue."""

    def __init__(self, stream: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self.result: asyncio.Future[GenerationOutput] = self._loop.create_future()
        self.events: asyncio.Queue[StreamItem | ServiceError] | None = (
            asyncio.Queue() if stream else None
        )

    def _resolve(self, value: GenerationOutput | ServiceError) -> None:
        if self.events is not None:
            self.events.put_nowait(value)
        if self.result.done():
            return
        if isinstance(value, ServiceError):
            self.result.set_exception(value)
        else:
            self.result.set_result(value)

    def on_token(self, event: TokenEvent) -> None:
        if self.events is not None:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)

    def on_finish(self, output: GenerationOutput) -> None:
        self._loop.call_soon_threadsafe(self._resolve, output)

    def on_error(self, error: ServiceError) -> None:
        self._loop.call_soon_threadsafe(self._resolve, error)


def _release(listener: _LoopListener, request: Request) -> None:
    """The caller is done: cancel unfinished work and mark any stored error as retrieved."""
    if not listener.result.done():
        request.cancel()
        listener.result.cancel()
    elif not listener.result.cancelled():
        listener.result.exception()


def new_listener(stream: bool = False) -> _LoopListener:
    return _LoopListener(stream)


async def run_request(core: EngineCore, request: Request) -> GenerationOutput:
    """Submit and await the final output; cancelling the caller cancels the request."""
    listener = request.listener
    assert isinstance(listener, _LoopListener)
    core.submit(request)
    try:
        return await asyncio.shield(listener.result)
    finally:
        _release(listener, request)


async def stream_request(core: EngineCore, request: Request) -> AsyncIterator[StreamItem]:
    """Submit and yield token events, then the final output; errors are raised."""
    listener = request.listener
    assert isinstance(listener, _LoopListener) and listener.events is not None
    core.submit(request)
    try:
        while True:
            item = await listener.events.get()
            if isinstance(item, ServiceError):
                raise item
            yield item
            if isinstance(item, GenerationOutput):
                return
    finally:
        _release(listener, request)
