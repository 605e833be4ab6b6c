"""The client's events as an async iterator:

    async for event in client.events():
        ...

The subscription starts when `events()` is called (so nothing between that call and the
first `__anext__` is missed) and ends with `aclose()`, the end of an `async with` block,
or the iterator being garbage-collected. Events arrive on a Holdfast thread and are handed
to the event loop that called `events()`; the queue has no bound, so a slow consumer never
blocks Holdfast.
"""

import asyncio

from ._native.holdfast import AuthClient, AuthEventListener


class _ToLoop(AuthEventListener):
    def __init__(self, loop, queue):
        self._loop = loop
        self._queue = queue

    def on_event(self, event):
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more


class AuthEvents:
    """An async iterator of `AuthEvent`s; see `AuthClient.events`."""

    def __init__(self, client):
        self._queue = asyncio.Queue()
        self._subscription = client.subscribe(_ToLoop(asyncio.get_running_loop(), self._queue))

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._subscription is None:
            raise StopAsyncIteration
        return await self._queue.get()

    async def aclose(self):
        """Ends the subscription; iteration then stops."""
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.aclose()

    def __del__(self):
        if getattr(self, "_subscription", None) is not None:
            self._subscription.cancel()


def events(self):
    """Every event from now on, as an async iterator (call it inside a running event loop)."""
    return AuthEvents(self)


def install():
    AuthClient.events = events
