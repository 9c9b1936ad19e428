"""``mx.nd.random``: eager random draws from the global key (``mx.random.seed``)."""

from __future__ import annotations

import numpy as np

from lowering import registry

from ..context import current_context
from ..op_functions import make_function


def _draw(op_name: str, shape, dtype, ctx, **attrs):
    fn = make_function(registry.get(op_name), op_name, symbolic=False)
    shape = (shape,) if isinstance(shape, int) else tuple(shape or (1,))
    return fn(shape=shape, dtype=np.dtype(dtype or np.float32).name,
              ctx=ctx or current_context(), **attrs)


def uniform(low: float = 0.0, high: float = 1.0, shape=(1,), dtype=None, ctx=None, out=None,
            **kwargs):
    """Uniform draws on ``[low, high)``."""
    result = _draw("_random_uniform", shape, dtype, ctx, low=float(low), high=float(high))
    if out is not None:
        out[:] = result
        return out
    return result


def normal(loc: float = 0.0, scale: float = 1.0, shape=(1,), dtype=None, ctx=None, out=None,
           **kwargs):
    """Gaussian draws with mean ``loc`` and standard deviation ``scale``."""
    result = _draw("_random_normal", shape, dtype, ctx, loc=float(loc), scale=float(scale))
    if out is not None:
        out[:] = result
        return out
    return result


def shuffle(data):
    """A random permutation of ``data`` along axis 0."""
    return make_function(registry.get("_shuffle"), "shuffle", symbolic=False)(data)
