"""A clean interpreter exit while Holdfast's threads are still talking to Python.

Holdfast runs its work on native threads, which call into Python in two ways: to resume an
awaiting coroutine (the UniFFI continuation callback, which calls
`loop.call_soon_threadsafe`) and to call the app's listeners, key providers and signers.
CPython ends any thread that asks for the interpreter lock once finalization has begun,
with `pthread_exit`, and that unwind through Rust frames aborts the process ("FATAL:
exception not rethrown"). It happens without any bug in the app: the continuation callback
wakes the event loop, the loop finishes `asyncio.run` and the interpreter starts to exit
while the callback thread is still inside `call_soon_threadsafe`'s socket write, waiting to
take the lock back.

So at exit, while the interpreter still works, this module
1. stops the library's calls into the app and waits for those in progress
   (`quiesce_for_exit`), and
2. waits until no continuation callback is inside Python any more (it counts them).
Both waits are bounded; a callback stuck in app code cannot hold the exit forever.
"""

import atexit
import threading
import time

from ._native import holdfast as _generated

# How long exit may wait for calls in progress, in seconds.
EXIT_WAIT_SECONDS = 2.0

_lock = threading.Lock()
_running = 0


def _counted(callback):
    """The generated continuation callback, counting the calls inside Python."""

    @_generated._UNIFFI_RUST_FUTURE_CONTINUATION_CALLBACK
    def continuation(future_handle, poll_code):
        global _running
        with _lock:
            _running += 1
        try:
            callback(future_handle, poll_code)
        finally:
            with _lock:
                _running -= 1

    return continuation


def _running_callbacks():
    with _lock:
        return _running


def _at_exit():
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    # A native call: ctypes lets go of the interpreter lock meanwhile, so the calls it
    # waits for can finish.
    _generated.quiesce_for_exit(int(EXIT_WAIT_SECONDS * 1000))
    while _running_callbacks() and time.monotonic() < deadline:
        time.sleep(0.001)


def install():
    """Counts continuation callbacks and registers the exit hook (once per process)."""
    if getattr(_generated, "_holdfast_exit_installed", False):
        return
    # `_uniffi_rust_call_async` looks this global up on every call, so replacing it here
    # covers every async method. The generated object stays reachable through the closure,
    # and the new one through the module, so ctypes keeps both alive.
    _generated._uniffi_continuation_callback = _counted(_generated._uniffi_continuation_callback)
    _generated._holdfast_exit_installed = True
    atexit.register(_at_exit)
