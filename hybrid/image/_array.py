"""Array plumbing shared by ``hybrid.image``, ``hybrid.recordio`` and ``gluon.data``.

This module never imports JAX.  DataLoader worker processes import it (they must
stay free of JAX, which does not survive ``fork`` and is slow to start), so every
function here works on numpy arrays and only touches ``hybrid.ndarray`` when an
NDArray is actually involved, i.e. in the main process.

The convention used throughout the data pipeline:

* a function given a numpy array returns a numpy array;
* a function given an NDArray returns an NDArray (same context; the math runs in
  numpy and the result is converted back, so both paths share one definition);
* functions that create arrays from nothing (``imread``, ``imdecode``, dataset
  ``__getitem__``) return NDArrays in the main process and numpy arrays inside a
  DataLoader worker (see :func:`in_worker`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_IN_WORKER = False


def in_worker() -> bool:
    """True inside a DataLoader worker process (where NDArrays are not available)."""
    return _IN_WORKER


def set_in_worker(flag: bool = True) -> None:
    """Mark this process as a DataLoader worker (called by the worker bootstrap)."""
    global _IN_WORKER
    _IN_WORKER = bool(flag)


def ndarray_class() -> type | None:
    """The ``hybrid.ndarray.NDArray`` class if it was imported, else None.

    Looking it up in ``sys.modules`` instead of importing keeps this module (and
    the workers) free of JAX: if ``hybrid.ndarray`` was never imported, no NDArray
    can exist in this process.
    """
    mod = sys.modules.get("hybrid.ndarray")
    cls = getattr(mod, "NDArray", None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def is_ndarray(x: Any) -> bool:
    """Whether ``x`` is a ``hybrid`` NDArray."""
    cls = ndarray_class()
    return cls is not None and isinstance(x, cls)


def is_jax_array(x: Any) -> bool:
    """Whether ``x`` is a raw ``jax.Array`` (checked without importing JAX)."""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(x, getattr(jax, "Array", ()))


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a numpy array (NDArray -> ``asnumpy()``; anything else -> ``np.asarray``)."""
    if isinstance(x, np.ndarray):
        return x
    if is_ndarray(x):
        return x.asnumpy()
    return np.asarray(x)


def _nd_module():
    import hybrid.ndarray as nd  # noqa: PLC0415 - lazy on purpose (JAX)

    return nd


def new_ndarray(data: np.ndarray, ctx: Any = None, dtype: Any = None):
    """An NDArray holding ``data``; the numpy dtype is kept unless ``dtype`` is given."""
    nd = _nd_module()
    data = np.asarray(data)
    return nd.array(data, ctx=ctx, dtype=data.dtype if dtype is None else dtype)


def like(out: np.ndarray, ref: Any):
    """Return ``out`` in the array type of ``ref``: NDArray (same context) or numpy."""
    if is_ndarray(ref):
        return new_ndarray(out, ctx=getattr(ref, "context", None))
    return out


def fresh(out: np.ndarray):
    """A newly created array: an NDArray in the main process, numpy in a worker.

    Used by readers (``imdecode``, datasets) that have no input array whose type
    could decide.  In the main process it falls back to numpy if the NDArray core
    cannot be imported.
    """
    if _IN_WORKER:
        return out
    try:
        return new_ndarray(out)
    except ImportError:
        return out


def mxnet_error(msg: str) -> Exception:
    """``hybrid.base.MXNetError(msg)`` if the core provides it, else ``RuntimeError``."""
    mod = sys.modules.get("hybrid.base")
    cls = getattr(mod, "MXNetError", None) if mod is not None else None
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(msg)
    return RuntimeError(msg)
