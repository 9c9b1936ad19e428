"""The loop run by a DataLoader worker process (numpy only; see ``_workers.py``)."""

from __future__ import annotations

import os
import pickle
import random
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ...image._array import set_in_worker
from ._batching import fetch_batch
from ._workers import ResultPickler, write_raw


def error_info(exc: BaseException) -> tuple:
    """(type name, message, traceback text, pickled exception or None)."""
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
    except Exception:  # noqa: BLE001 - not every exception round-trips
        blob = None
    return (type(exc).__name__, str(exc), traceback.format_exc(), blob)


class _Sink:
    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, b) -> int:
        mv = memoryview(b)
        self.parts.append(mv.tobytes())
        return mv.nbytes


def _dump(obj: Any) -> tuple[bytes, list]:
    bufs: list = []
    sink = _Sink()
    ResultPickler(sink, protocol=5, buffer_callback=bufs.append).dump(obj)
    return b"".join(sink.parts), [b.raw() for b in bufs]


def run(task: Connection, res: Connection, init: dict) -> None:
    """Serve ``(tag, indices)`` tasks until the task pipe closes."""
    set_in_worker(True)
    seed = int(init["seed"])
    np.random.seed(seed)
    random.seed(seed)
    try:
        blob = task.recv_bytes()
    except (EOFError, OSError):
        return
    try:
        dataset, batchify = pickle.loads(blob)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        res.send_bytes(pickle.dumps(("err", error_info(exc))))
        return
    del blob
    res.send_bytes(pickle.dumps(("ready", os.getpid())))
    while True:
        try:
            msg = task.recv_bytes()
        except (EOFError, OSError):
            return
        tag, indices = pickle.loads(msg)
        try:
            if batchify is None:
                batch = fetch_batch(dataset, indices)
            else:
                batch = batchify([dataset[i] for i in indices])
            data, bufs = _dump(batch)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - re-raised in the main process
            data, bufs = _dump(error_info(exc))
            status = "err"
        try:
            res.send_bytes(pickle.dumps((tag, status, [b.nbytes for b in bufs])))
            res.send_bytes(data)
            for b in bufs:
                write_raw(res.fileno(), b)
        except OSError:
            return
