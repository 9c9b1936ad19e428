"""Errors and small shared definitions of the front end."""

from __future__ import annotations


class MXNetError(RuntimeError):
    """An operator or block failed; the message names the op and the shapes involved."""


class DeferredInitializationError(MXNetError):
    """A parameter's shape is not known yet: call the block on data first."""


_Null = None
"""Placeholder used by MXNet's generated signatures for 'argument not given'."""
