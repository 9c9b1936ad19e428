"""Reductions with MXNet's ``axis``/``keepdims``/``exclude`` and legacy shapes.

* ``axis=None`` reduces everything; the result then has shape ``(1,)``, not
  ``()`` (MXNet 1.x has no zero-dim arrays).
* ``exclude=True`` reduces over every axis *except* the given ones.
* ``argmax``/``argmin`` return float32 indices.
* ``norm`` supports ``ord`` 1 and 2.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ..attrs import AXIS, BOOL, INT, OPT_INT, Attr
from ..registry import OpError, register


def normalize_axes(op: str, axis, ndim: int, exclude: bool = False) -> tuple[int, ...]:
    """Axes to reduce as a sorted tuple of non-negative ints (MXNet's rules)."""
    if axis is None or axis == ():
        axes = tuple(range(ndim))
        return () if exclude else axes
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise OpError(f"operator {op}: axis {a} is out of range for an input of rank {ndim}")
        out.append(a % max(ndim, 1))
    if exclude:
        return tuple(i for i in range(ndim) if i not in out)
    return tuple(sorted(set(out)))


def _finish(result, keepdims):
    if result.ndim == 0 and not keepdims:
        return result.reshape((1,))
    return result


_REDUCE_ATTRS = {
    "axis": Attr(AXIS, None),
    "keepdims": Attr(BOOL, False),
    "exclude": Attr(BOOL, False),
}


def _mean(x, axis, keepdims):
    if jnp.issubdtype(x.dtype, jnp.integer):
        return (jnp.sum(x, axis=axis, keepdims=keepdims) // max(1, _count(x, axis))).astype(
            x.dtype
        )
    return jnp.mean(x, axis=axis, keepdims=keepdims)


def _count(x, axes):
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


_REDUCERS = {
    "sum": (jnp.sum, ("sum_axis",)),
    "mean": (_mean, ()),
    "prod": (jnp.prod, ()),
    "max": (jnp.max, ("max_axis",)),
    "min": (jnp.min, ("min_axis",)),
    "nansum": (jnp.nansum, ()),
    "nanprod": (jnp.nanprod, ()),
}


def _make_reducer(name, fn):
    def reduce(data, axis, keepdims, exclude):
        axes = normalize_axes(name, axis, data.ndim, exclude)
        if name in ("sum", "prod", "nansum", "nanprod") and jnp.issubdtype(data.dtype, jnp.integer):
            return _finish(fn(data, axis=axes, keepdims=keepdims).astype(data.dtype), keepdims)
        return _finish(fn(data, axis=axes, keepdims=keepdims), keepdims)

    return reduce


for _name, (_fn, _aliases) in _REDUCERS.items():
    register(_name, attrs=_REDUCE_ATTRS, aliases=_aliases)(_make_reducer(_name, _fn))


@register(
    "norm",
    attrs={"ord": Attr(INT, 2), "axis": Attr(AXIS, None), "keepdims": Attr(BOOL, False)},
)
def norm(data, ord, axis, keepdims):
    """L1 or L2 norm over ``axis`` (all axes -> shape (1,))."""
    axes = normalize_axes("norm", axis, data.ndim)
    if ord == 1:
        out = jnp.sum(jnp.abs(data), axis=axes, keepdims=keepdims)
    elif ord == 2:
        out = jnp.sqrt(jnp.sum(data * data, axis=axes, keepdims=keepdims))
    else:
        raise OpError(f"operator norm: ord={ord} is not supported (MXNet supports 1 and 2)")
    return _finish(out, keepdims)


def _arg_reduce(name, fn):
    def arg(data, axis, keepdims):
        if axis is None:
            out = fn(data.reshape(-1)).astype(jnp.float32)
            return out.reshape((1,) * data.ndim if keepdims else (1,))
        ax = normalize_axes(name, axis, data.ndim)[0]
        out = fn(data, axis=ax, keepdims=keepdims).astype(jnp.float32)
        return lax.stop_gradient(_finish(out, keepdims))

    return arg


register("argmax", attrs={"axis": Attr(OPT_INT, None), "keepdims": Attr(BOOL, False)},
         differentiable=False)(_arg_reduce("argmax", jnp.argmax))
register("argmin", attrs={"axis": Attr(OPT_INT, None), "keepdims": Attr(BOOL, False)},
         differentiable=False)(_arg_reduce("argmin", jnp.argmin))


@register("argmax_channel", differentiable=False)
def argmax_channel(data):
    """Argmax over the last axis, float32 indices."""
    return jnp.argmax(data, axis=-1).astype(jnp.float32)
