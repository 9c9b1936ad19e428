"""Reductions with MXNet's ``axis``/``keepdims``/``exclude`` and legacy shapes.

* ``axis=None`` reduces everything; the result then has shape ``(1,)``, not
  ``()`` (MXNet 1.x has no zero-dim arrays).
* ``exclude=True`` reduces over every axis *except* the given ones.
* ``argmax``/``argmin``/``argmax_channel`` return indices in the *input* dtype (float32
  for float32 data; MXNet's ``ElemwiseType<1, 1>``), not integers.
* ``norm`` supports ``ord`` 1 and 2.
* ``max``/``min`` send the *whole* head gradient to every element equal to the
  result (MXNet's ``ReduceAxesBackwardUseInOut<eq>``), where jax would split it
  among ties.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from ..attrs import AXIS, BOOL, DTYPE, INT, OPT_INT, OPT_SHAPE, Attr
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


def _chooser(fn):
    """``fn`` (jnp.max / jnp.min) with MXNet's gradient: each tie gets the full gradient."""

    @functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
    def reduce(x, axis, keepdims):
        return fn(x, axis=axis, keepdims=keepdims)

    @reduce.defjvp
    def reduce_jvp(axis, keepdims, primals, tangents):
        (x,), (t,) = primals, tangents
        out = fn(x, axis=axis, keepdims=True)
        t_out = jnp.sum(jnp.where(x == out, t, jnp.zeros_like(t)), axis=axis, keepdims=True)
        if not keepdims:
            out, t_out = jnp.squeeze(out, axis), jnp.squeeze(t_out, axis)
        return out, t_out

    def call(x, axis, keepdims):
        if not jnp.issubdtype(x.dtype, jnp.inexact) or not axis:
            return fn(x, axis=axis, keepdims=keepdims)
        return reduce(x, axis, keepdims)

    return call


_REDUCERS = {
    "sum": (jnp.sum, ("sum_axis",)),
    "mean": (_mean, ()),
    "prod": (jnp.prod, ()),
    "max": (_chooser(jnp.max), ("max_axis",)),
    "min": (_chooser(jnp.min), ("min_axis",)),
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
    attrs={
        "ord": Attr(INT, 2),
        "axis": Attr(AXIS, None),
        "out_dtype": Attr(DTYPE, "None"),
        "keepdims": Attr(BOOL, False),
    },
)
def norm(data, ord, axis, out_dtype, keepdims):
    """L1 or L2 norm over ``axis`` (all axes -> shape (1,)); ``out_dtype`` casts the result.

    The L2 norm is ``m * sqrt(sum((x / m)^2))`` with ``m = max|x|`` (MXNet's
    scaled ``nrm2`` reducer), so it overflows only when the norm itself does
    (float32 values of 1e30 give 1.41e30, not inf), and float16 input is
    reduced in float32 and cast back. Integer input gives the exactly rounded
    norm in its dtype (MXNet's integer scaling truncates: ``norm([3, 4])`` is 4
    there).
    """
    axes = normalize_axes("norm", axis, data.ndim)
    if out_dtype not in (None, "None"):
        data = data.astype(out_dtype)
    if ord == 1:
        out = jnp.sum(jnp.abs(data), axis=axes, keepdims=keepdims)
    elif ord == 2:
        out = _l2_norm(data, axes, keepdims)
    else:
        raise OpError(f"operator norm: ord={ord} is not supported (MXNet supports 1 and 2)")
    return _finish(out, keepdims)


def _l2_norm(data, axes, keepdims):
    cdt = jnp.promote_types(data.dtype, jnp.float32)
    a = jnp.abs(data.astype(cdt))
    if a.size == 0:
        return jnp.zeros(jnp.sum(a, axis=axes, keepdims=keepdims).shape, data.dtype)
    m = lax.stop_gradient(jnp.max(a, axis=axes, keepdims=True))
    scale = jnp.where((m > 0) & jnp.isfinite(m), m, jnp.ones_like(m))
    out = jnp.sqrt(jnp.sum(jnp.square(a / scale), axis=axes, keepdims=True)) * scale
    out = jnp.where(jnp.isinf(m), m, out)  # an infinite entry: inf, not inf/inf = nan
    if not keepdims:
        out = jnp.squeeze(out, axis=axes)
    if jnp.issubdtype(data.dtype, jnp.integer):
        out = jnp.round(out)
    return out.astype(data.dtype)


@register(
    "moments",
    attrs={"axes": Attr(OPT_SHAPE, None), "keepdims": Attr(BOOL, False)},
    num_outputs=2,
)
def moments(data, axes, keepdims):
    """``(mean, variance)`` over ``axes`` (all axes if None); the variance is the biased
    one (divided by the count). Full reductions have shape (1,)."""
    ax = normalize_axes("moments", axes, data.ndim)
    mean = jnp.mean(data, axis=ax, keepdims=True)
    var = jnp.mean(jnp.square(data - mean), axis=ax, keepdims=keepdims)
    if not keepdims:
        mean = jnp.squeeze(mean, ax)
    return _finish(mean, keepdims), _finish(var, keepdims)


def _arg_reduce(name, fn):
    def arg(data, axis, keepdims):
        if axis is None:
            out = fn(data.reshape(-1)).astype(data.dtype)
            return out.reshape((1,) * data.ndim if keepdims else (1,))
        ax = normalize_axes(name, axis, data.ndim)[0]
        out = fn(data, axis=ax, keepdims=keepdims).astype(data.dtype)
        return lax.stop_gradient(_finish(out, keepdims))

    return arg


register("argmax", attrs={"axis": Attr(OPT_INT, None), "keepdims": Attr(BOOL, False)},
         differentiable=False)(_arg_reduce("argmax", jnp.argmax))
register("argmin", attrs={"axis": Attr(OPT_INT, None), "keepdims": Attr(BOOL, False)},
         differentiable=False)(_arg_reduce("argmin", jnp.argmin))


@register("argmax_channel", differentiable=False)
def argmax_channel(data):
    """Argmax over the last axis, indices in the input dtype."""
    return jnp.argmax(data, axis=-1).astype(data.dtype)
