"""Bulk execution of recorded steps (MXNet's ``mx.engine``).

MXNet's engine runs ops asynchronously: an array is a future until it is read.
hybrid uses the same freedom to run a whole recorded training step (forward,
loss, backward, optimizer update) as one compiled program: see
:mod:`hybrid.engine.capture`. ``set_bulk_size(0)`` (or ``bulk(0)``, or the
environment variable ``MXNET_EXEC_BULK_EXEC_TRAIN=0``) runs every op on its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .capture import STEPS, bulk_size, flush, set_bulk_size

if os.environ.get("MXNET_EXEC_BULK_EXEC_TRAIN", "1").strip() == "0":
    set_bulk_size(0)


@contextlib.contextmanager
def bulk(size: int) -> Iterator[None]:
    """Run the block with bulk size ``size`` (0: op by op), restoring it afterwards."""
    prev = set_bulk_size(size)
    try:
        yield
    finally:
        set_bulk_size(prev)


def executions() -> int:
    """How many captured programs have run in this process (a counter for benchmarks)."""
    from . import capture

    return capture.EXECUTIONS[0]


__all__ = ["STEPS", "bulk", "bulk_size", "executions", "flush", "set_bulk_size"]
