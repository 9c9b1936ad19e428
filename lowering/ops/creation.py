"""Ops with no array inputs: constant fills, ranges and random draws.

The random ops take a fresh PRNG ``key`` on every call (``needs_rng``); the
``ctx`` attribute MXNet writes on them is kept for JSON round trips and
otherwise ignored (placement belongs to the caller).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..attrs import BOOL, DTYPE, FLOAT, INT, OPT_FLOAT, SHAPE, STR, Attr
from ..registry import OpError, register

_FILL_ATTRS = {"shape": Attr(SHAPE, ()), "dtype": Attr(DTYPE, "float32"), "ctx": Attr(STR, "")}


def _shape(shape):
    # MXNet writes unknown dims as 0 in exported graphs; callers resolve them first.
    return tuple(shape)


@register("_zeros", inputs=(), attrs=_FILL_ATTRS, aliases=("zeros",), differentiable=False)
def zeros(shape, dtype, ctx):
    """An array of zeros."""
    return jnp.zeros(_shape(shape), dtype)


@register("_ones", inputs=(), attrs=_FILL_ATTRS, aliases=("ones",), differentiable=False)
def ones(shape, dtype, ctx):
    """An array of ones."""
    return jnp.ones(_shape(shape), dtype)


@register(
    "_full",
    inputs=(),
    attrs={**_FILL_ATTRS, "value": Attr(FLOAT)},
    aliases=("full",),
    differentiable=False,
)
def full(shape, dtype, ctx, value):
    """An array filled with ``value``."""
    return jnp.full(_shape(shape), value, dtype)


@register(
    "_arange",
    inputs=(),
    attrs={
        "start": Attr(FLOAT),
        "stop": Attr(OPT_FLOAT, None),
        "step": Attr(FLOAT, 1.0),
        "repeat": Attr(INT, 1),
        "infer_range": Attr(STR, "False"),
        "dtype": Attr(DTYPE, "float32"),
        "ctx": Attr(STR, ""),
    },
    aliases=("arange",),
    differentiable=False,
)
def arange(start, stop, step, repeat, infer_range, dtype, ctx):
    """``[start, stop)`` with ``step``, each value repeated ``repeat`` times (MXNet's arange)."""
    if stop is None:
        start, stop = 0.0, start
    values = jnp.arange(start, stop, step, dtype=jnp.float64 if _x64() else jnp.float32)
    if repeat != 1:
        values = jnp.repeat(values, repeat)
    return values.astype(dtype)


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)


@register(
    "_eye",
    inputs=(),
    attrs={
        "N": Attr(INT),
        "M": Attr(INT, 0),
        "k": Attr(INT, 0),
        "ctx": Attr(STR, ""),
        "dtype": Attr(DTYPE, "float32"),
    },
    aliases=("eye",),
    differentiable=False,
)
def eye(N, M, k, ctx, dtype):
    """``N x M`` matrix (``M=0`` means ``N``) with ones on diagonal ``k`` (positive: above)."""
    return jnp.eye(N, M or N, k, dtype=dtype)


@register(
    "_linspace",
    inputs=(),
    attrs={
        "start": Attr(FLOAT),
        "stop": Attr(FLOAT),
        "num": Attr(INT),
        "endpoint": Attr(BOOL, True),
        "ctx": Attr(STR, ""),
        "dtype": Attr(DTYPE, "float32"),
    },
    aliases=("linspace",),
    differentiable=False,
)
def linspace(start, stop, num, endpoint, ctx, dtype):
    """``num`` evenly spaced values from ``start`` to ``stop`` (included if ``endpoint``)."""
    return jnp.linspace(start, stop, num, endpoint=endpoint,
                        dtype=jnp.float64 if _x64() else jnp.float32).astype(dtype)


_RANDOM_ATTRS = {"shape": Attr(SHAPE, ()), "dtype": Attr(DTYPE, "float32"), "ctx": Attr(STR, "")}


def _uniform_attrs(attrs):
    if not attrs["high"] >= attrs["low"]:
        raise OpError(f"operator _random_uniform: low must be less than or equal to high, got "
                      f"low={attrs['low']}, high={attrs['high']}")


def _normal_attrs(attrs):
    if not attrs["scale"] > 0:
        raise OpError(f"operator _random_normal: scale={attrs['scale']} must be positive "
                      "(the standard deviation; MXNet refuses 0 as well)")


@register(
    "_random_uniform",
    inputs=(),
    attrs={"low": Attr(FLOAT, 0.0), "high": Attr(FLOAT, 1.0), **_RANDOM_ATTRS},
    aliases=("random_uniform", "uniform"),
    needs_rng=True,
    differentiable=False,
    check_attrs=_uniform_attrs,
)
def random_uniform(low, high, shape, dtype, ctx, key):
    """Uniform draws on ``[low, high)``."""
    dt = "float32" if dtype in ("None", None) else dtype
    return jax.random.uniform(key, _shape(shape), jnp.dtype(dt), low, high)


@register(
    "_random_normal",
    inputs=(),
    attrs={"loc": Attr(FLOAT, 0.0), "scale": Attr(FLOAT, 1.0), **_RANDOM_ATTRS},
    aliases=("random_normal", "normal"),
    needs_rng=True,
    differentiable=False,
    check_attrs=_normal_attrs,
)
def random_normal(loc, scale, shape, dtype, ctx, key):
    """Gaussian draws with mean ``loc`` and standard deviation ``scale``."""
    dt = "float32" if dtype in ("None", None) else dtype
    return loc + scale * jax.random.normal(key, _shape(shape), jnp.dtype(dt))


@register(
    "_shuffle",
    aliases=("shuffle",),
    needs_rng=True,
    differentiable=False,
)
def shuffle(data, key):
    """A random permutation of ``data`` along axis 0."""
    return jax.random.permutation(key, data, axis=0)
