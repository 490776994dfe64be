"""Turns a request's engine events into awaitables on the event loop.

The only place where engine results cross into asyncio. Asyncio objects are created
inside the running loop. Events arrive two ways: an engine thread of this process calls
the RequestListener methods (`on_*`), which hop onto the loop with call_soon_threadsafe;
an engine process's events are read on the loop itself and delivered directly
(`token` / `finish` / `fail`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from service.engine.requests import GenerationOutput, Request, TokenEvent
from service.engine_process.backend import ModelEngine
from service.errors import ServiceError

StreamItem = TokenEvent | GenerationOutput


class LoopListener:
    """A RequestListener that forwards to a future and (when streaming) a queue."""

    def __init__(self, stream: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self.result: asyncio.Future[GenerationOutput] = self._loop.create_future()
        self.events: asyncio.Queue[StreamItem | ServiceError] | None = (
            asyncio.Queue() if stream else None
        )

    @property
    def stream(self) -> bool:
        return self.events is not None

    # --- on the event loop ---------------------------------------------------------------
    def token(self, event: TokenEvent) -> None:
        if self.events is not None:
            self.events.put_nowait(event)

    def finish(self, value: GenerationOutput | ServiceError) -> None:
        """The final result or error (only the first one counts)."""
        if self.result.done():
            return
        if self.events is not None:
            self.events.put_nowait(value)
        if isinstance(value, ServiceError):
            self.result.set_exception(value)
        else:
            self.result.set_result(value)

    # --- RequestListener, from an engine thread --------------------------------------------
    def on_token(self, event: TokenEvent) -> None:
        if self.events is not None:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)

    def on_finish(self, output: GenerationOutput) -> None:
        self._loop.call_soon_threadsafe(self.finish, output)

    def on_error(self, error: ServiceError) -> None:
        self._loop.call_soon_threadsafe(self.finish, error)


def _release(engine: ModelEngine, listener: LoopListener, request: Request) -> None:
    """The caller is done: cancel unfinished work and mark any stored error as retrieved."""
    if not listener.result.done():
        engine.cancel(request)
        listener.result.cancel()
    elif not listener.result.cancelled():
        listener.result.exception()


def new_listener(stream: bool = False) -> LoopListener:
    return LoopListener(stream)


async def run_request(engine: ModelEngine, request: Request) -> GenerationOutput:
    """Submit and await the final output; cancelling the caller cancels the request."""
    listener = request.listener
    assert isinstance(listener, LoopListener)
    engine.submit(request)
    try:
        return await asyncio.shield(listener.result)
    finally:
        _release(engine, listener, request)


async def stream_request(engine: ModelEngine, request: Request) -> AsyncIterator[StreamItem]:
    """Submit and yield token events, then the final output; errors are raised."""
    listener = request.listener
    assert isinstance(listener, LoopListener) and listener.events is not None
    engine.submit(request)
    try:
        while True:
            item = await listener.events.get()
            if isinstance(item, ServiceError):
                raise item
            yield item
            if isinstance(item, GenerationOutput):
                return
    finally:
        _release(engine, listener, request)
