"""`access_token()` without the event loop when a fresh token is in memory.

The generated `AuthClient.access_token` is a coroutine over a Rust future: even when the
token is answered at once, its completion goes through `call_soon_threadsafe` and a turn
of the event loop (tens of microseconds). This wraps it: a fresh token in memory is
returned by one synchronous call (`fresh_access_token`, no I/O, never waits), and only a
refresh, or an error to report, takes the Rust future.
"""

from ._native.holdfast import AuthClient

_refreshing_access_token = AuthClient.access_token


async def access_token(self):
    """A valid access token: from memory while fresh, otherwise after a refresh."""
    token = self.fresh_access_token()
    if token is not None:
        return token
    return await _refreshing_access_token(self)


access_token.__doc__ = _refreshing_access_token.__doc__ or access_token.__doc__


def install():
    AuthClient.access_token = access_token
