"""``mx.nd``: NDArray, creation functions, and every registry op as a function."""

from __future__ import annotations

import jax
import numpy as np

from lowering import registry as _registry
from lowering import x64 as _x64

from .. import engine as _engine
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


@_x64.scoped
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
    """Block until all pending computations finish (a captured step runs first)."""
    _engine.flush()
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


def _binary_function(name: str, array_op: str, scalar_op: str, rscalar_op: str, py_op):
    """MXNet's ``nd.add``-style helpers: arrays broadcast, scalars on either side."""

    def function(lhs, rhs):
        lhs_nd, rhs_nd = isinstance(lhs, NDArray), isinstance(rhs, NDArray)
        if lhs_nd and rhs_nd:
            return _NAMESPACE[array_op](lhs, rhs)
        if lhs_nd:
            return getattr(_internal, scalar_op)(lhs, scalar=rhs)
        if rhs_nd:
            return getattr(_internal, rscalar_op)(rhs, scalar=lhs)
        return py_op(lhs, rhs)

    function.__name__ = name
    function.__doc__ = f"``{name}(lhs, rhs)``: ``{array_op}`` for two arrays, else the scalar op."
    return function


def _init_binary_functions() -> None:
    import operator

    table = {
        "add": ("broadcast_add", "_plus_scalar", "_plus_scalar", operator.add),
        "subtract": ("broadcast_sub", "_minus_scalar", "_rminus_scalar", operator.sub),
        "multiply": ("broadcast_mul", "_mul_scalar", "_mul_scalar", operator.mul),
        "divide": ("broadcast_div", "_div_scalar", "_rdiv_scalar", operator.truediv),
        "true_divide": ("broadcast_div", "_div_scalar", "_rdiv_scalar", operator.truediv),
        "modulo": ("broadcast_mod", "_mod_scalar", "_rmod_scalar", operator.mod),
        "power": ("broadcast_power", "_power_scalar", "_rpower_scalar", operator.pow),
        "maximum": ("broadcast_maximum", "_maximum_scalar", "_maximum_scalar", max),
        "minimum": ("broadcast_minimum", "_minimum_scalar", "_minimum_scalar", min),
        "equal": ("broadcast_equal", "_equal_scalar", "_equal_scalar", operator.eq),
        "not_equal": ("broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar",
                      operator.ne),
        "greater": ("broadcast_greater", "_greater_scalar", "_lesser_scalar", operator.gt),
        "greater_equal": ("broadcast_greater_equal", "_greater_equal_scalar",
                          "_lesser_equal_scalar", operator.ge),
        "lesser": ("broadcast_lesser", "_lesser_scalar", "_greater_scalar", operator.lt),
        "lesser_equal": ("broadcast_lesser_equal", "_lesser_equal_scalar",
                         "_greater_equal_scalar", operator.le),
        "logical_and": ("broadcast_logical_and", "_logical_and_scalar", "_logical_and_scalar",
                        lambda a, b: float(bool(a) and bool(b))),
        "logical_or": ("broadcast_logical_or", "_logical_or_scalar", "_logical_or_scalar",
                       lambda a, b: float(bool(a) or bool(b))),
        "logical_xor": ("broadcast_logical_xor", "_logical_xor_scalar", "_logical_xor_scalar",
                        lambda a, b: float(bool(a) != bool(b))),
    }
    for name, (array_op, scalar_op, rscalar_op, py_op) in table.items():
        _NAMESPACE[name] = _binary_function(name, array_op, scalar_op, rscalar_op, py_op)


_init_binary_functions()


def onehot_encode(indices: NDArray, out: NDArray) -> NDArray:
    """One-hot rows of ``out``'s width written into ``out`` (legacy MXNet helper)."""
    out[:] = _NAMESPACE["one_hot"](indices, depth=out.shape[1], dtype=np.dtype(out.dtype).name)
    return out
