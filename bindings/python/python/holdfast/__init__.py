"""Holdfast for Python: offline-first auth, bindings to the Rust client core.

Everything in the generated module (`holdfast._native.holdfast`) is re-exported here. This file adds
one thing the generated code lacks: a clean exit (see `_exit`).
"""

from ._native.holdfast import *  # noqa: F401,F403
from . import _exit

_exit.install()
