"""The value of an NDArray whose computation is captured but not yet run."""

from __future__ import annotations

from typing import Any

import jax


class Pending:
    """Stands in an NDArray's ``_value`` until its capture runs.

    ``ref`` names the value inside the capture; ``aval`` is its shape and dtype,
    known without running anything. Reading the data (``NDArray._data``) calls
    :meth:`force`, which runs the capture and returns the concrete array.
    """

    __slots__ = ("capture", "ref", "aval")

    def __init__(self, capture: Any, ref: tuple, aval: jax.ShapeDtypeStruct) -> None:
        self.capture = capture
        self.ref = ref
        self.aval = aval

    def force(self, owner: Any) -> jax.Array:
        """Run the capture (if it has not run) and return ``owner``'s concrete value."""
        self.capture.flush()
        value = owner._value
        if value is self:  # the capture failed before assigning: it re-raised already
            raise RuntimeError("a captured computation did not produce this array's value")
        return value


class PendingVJP:
    """Stands in ``TapeNode.vjp`` for a node recorded into a capture that has not run."""

    __slots__ = ("capture", "entry")

    def __init__(self, capture: Any, entry: int) -> None:
        self.capture = capture
        self.entry = entry
