"""``mx.nd.save`` / ``mx.nd.load`` in MXNet's binary format (see lowering.serialization)."""

from __future__ import annotations

import os
from typing import Any

from lowering import serialization

from ..context import Context, current_context


def save(fname: str | os.PathLike, data: Any) -> None:
    """Save an NDArray, a list of them or a dict name -> NDArray (atomically)."""
    from .ndarray import NDArray

    if isinstance(data, NDArray):
        data = [data]
    serialization.save(fname, data)


def load(fname: str | os.PathLike, ctx: Context | None = None):
    """Load a file written by ``save`` (or by MXNet): a list or a dict of NDArrays."""
    from .ndarray import array

    loaded = serialization.load(fname)
    ctx = ctx or current_context()

    def convert(a):
        return None if a is None else array(a, ctx=ctx, dtype=a.dtype)

    if isinstance(loaded, dict):
        return {k: convert(v) for k, v in loaded.items()}
    return [convert(v) for v in loaded]
