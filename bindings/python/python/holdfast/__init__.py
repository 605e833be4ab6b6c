"""Holdfast for Python: offline-first auth, bindings to the Rust client core.

Everything in the generated module (`holdfast._native.holdfast`) is re-exported here. This file adds
what the generated code lacks: a clean exit (see `_exit`), errors that print as sentences
(`_errors`), events as an async iterator (`_events`), and an `access_token()` that answers a
fresh token without a trip through the event loop (`_tokens`).
"""

from ._native.holdfast import *  # noqa: F401,F403
from . import _errors, _events, _exit, _tokens
from ._events import AuthEvents  # noqa: F401

_exit.install()
_errors.install()
_events.install()
_tokens.install()
