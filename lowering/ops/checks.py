"""Argument checks shared by the op definitions, worded after MXNet 1.9's ``CHECK``s.

Each helper raises :class:`~lowering.registry.OpError` naming the op and the
offending values. They run on attributes and static shapes, so an op's impl
calls them both when it runs eagerly and when a graph is traced or its shapes
are inferred.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..registry import OpError


def axis_index(op: str, axis: int, ndim: int, what: str = "axis") -> int:
    """``axis`` normalized to ``[0, ndim)``; refuses one outside ``[-ndim, ndim)``."""
    if not -ndim <= axis < ndim:
        raise OpError(f"operator {op}: {what} {axis} is out of range for {ndim}-D input "
                      f"(must be in [{-ndim}, {ndim - 1}])")
    return axis % ndim


def uniform_dtype(op: str, data: Any, **others: Any) -> None:
    """MXNet's "This layer requires uniform type": every array in ``others`` (None
    skipped) has ``data``'s dtype; nothing is promoted silently."""
    expected = np.dtype(data.dtype)
    for name, arr in others.items():
        if arr is not None and np.dtype(arr.dtype) != expected:
            raise OpError(f"operator {op}: this layer requires uniform type: expected "
                          f"'{expected.name}' (the data's dtype) but {name} is "
                          f"'{np.dtype(arr.dtype).name}'")


def non_negative(op: str, what: str, values: Sequence[int]) -> None:
    """Refuse a negative entry in ``values`` (``pad``)."""
    if any(v < 0 for v in values):
        raise OpError(f"operator {op}: {what} {tuple(values)} must not be negative")


def positive(op: str, what: str, values: Sequence[int]) -> None:
    """Refuse an entry of ``values`` below 1 (``stride``, ``dilate``, ``kernel``)."""
    if any(v < 1 for v in values):
        raise OpError(f"operator {op}: {what} {tuple(values)} must be positive")


def index_bounds(prefix: str, indices: Any, size: int, axis: int, allow_negative: bool,
                 error: type[Exception] = IndexError) -> None:
    """Refuse concrete ``indices`` outside ``[0, size)`` (``[-size, size)`` if
    ``allow_negative``), naming the first bad one as numpy does; ``prefix`` starts
    the message (the op's name)."""
    idx = np.asarray(indices)
    if idx.size == 0:
        return
    if np.issubdtype(idx.dtype, np.floating):
        idx = idx.astype(np.int64)  # MXNet truncates float indices toward zero
    low = -size if allow_negative else 0
    bad = (idx < low) | (idx >= size)
    if bad.any():
        value = int(idx[bad].flat[0])
        raise error(f"{prefix}index {value} is out of bounds for axis {axis} with size {size}")
