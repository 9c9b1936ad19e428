"""``mx.nd``: NDArray, creation functions, and every registry op as a function."""

from __future__ import annotations

import jax
import numpy as np

from lowering import registry as _registry

from ..context import Context, current_context
from ..op_functions import make_function as _make_function
from . import random  # noqa: F401
from .ndarray import NDArray, array
from .utils import load, save

_EXCLUDED = {"zeros", "ones", "full", "arange", "uniform", "normal", "shuffle"}


def _public(name: str) -> bool:
    return not name.startswith("_") or name in ("_copy",)


_NAMESPACE = globals()
for _name, _op in _registry.names().items():
    if _name in _EXCLUDED:
        continue
    _NAMESPACE.setdefault(_name, _make_function(_op, _name, symbolic=False))


class _Internal:
    """``nd._internal``: the underscore-named ops (``_plus_scalar``, ...)."""

    def __getattr__(self, name: str):
        try:
            op = _registry.get(name)
        except ValueError:
            raise AttributeError(name) from None
        fn = _make_function(op, name, symbolic=False)
        setattr(self, name, fn)
        return fn


_internal = _Internal()


class _Contrib(_Internal):
    """``nd.contrib``: ops registered as ``_contrib_<name>``."""

    def __getattr__(self, name: str):
        for candidate in (f"_contrib_{name}", name):
            try:
                op = _registry.get(candidate)
            except ValueError:
                continue
            fn = _make_function(op, name, symbolic=False)
            setattr(self, name, fn)
            return fn
        raise AttributeError(name)


class _Linalg(_Internal):
    """``nd.linalg``: ops registered as ``_linalg_<name>``."""

    def __getattr__(self, name: str):
        try:
            op = _registry.get(f"_linalg_{name}")
        except ValueError:
            raise AttributeError(name) from None
        fn = _make_function(op, name, symbolic=False)
        setattr(self, name, fn)
        return fn


contrib = _Contrib()
linalg = _Linalg()


def _shape(shape) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _filled(value, shape, ctx, dtype) -> NDArray:
    ctx = ctx or current_context()
    dt = np.dtype(dtype if dtype is not None else np.float32)
    with jax.default_device(ctx.jax_device):
        data = jax.numpy.full(_shape(shape), value, dtype=dt)
    return NDArray(data, ctx=ctx)


def zeros(shape, ctx: Context | None = None, dtype=None, **kwargs) -> NDArray:
    """An array of zeros (float32 unless ``dtype``)."""
    return _filled(0, shape, ctx, dtype)


def ones(shape, ctx: Context | None = None, dtype=None, **kwargs) -> NDArray:
    """An array of ones (float32 unless ``dtype``)."""
    return _filled(1, shape, ctx, dtype)


def full(shape, val, ctx: Context | None = None, dtype=None, **kwargs) -> NDArray:
    """An array filled with ``val``."""
    return _filled(val, shape, ctx, dtype)


def empty(shape, ctx: Context | None = None, dtype=None) -> NDArray:
    """An uninitialised array (zeros here)."""
    return _filled(0, shape, ctx, dtype)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=False, ctx=None,
           dtype=None) -> NDArray:
    """``[start, stop)`` by ``step``, each value repeated ``repeat`` times (float32 default)."""
    fn = _make_function(_registry.get("_arange"), "arange", symbolic=False)
    return fn(start=start, stop=stop, step=step, repeat=repeat,
              dtype=np.dtype(dtype or np.float32).name, ctx=ctx or current_context())


def waitall() -> None:
    """Block until all pending computations finish."""
    for arr in jax.live_arrays():
        arr.block_until_ready()


def concatenate(arrays, axis: int = 0, always_copy: bool = True) -> NDArray:
    """Join arrays along ``axis`` (default 0, unlike ``concat``)."""
    return _NAMESPACE["concat"](*arrays, dim=axis)


def moveaxis(tensor: NDArray, source: int, destination: int) -> NDArray:
    """Move one axis to a new position."""
    axes = list(range(tensor.ndim))
    axes.insert(destination % tensor.ndim, axes.pop(source % tensor.ndim))
    return _NAMESPACE["transpose"](tensor, axes=tuple(axes))


__all__ = ["NDArray", "array", "zeros", "ones", "full", "empty", "arange", "waitall", "save",
           "load", "concatenate", "moveaxis", "random", "contrib", "linalg"]
