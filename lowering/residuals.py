"""Which inputs of a program its VJP residuals are computed from.

MXNet's backward reads the input buffers of each recorded op when it runs, so an
input overwritten between ``record()`` and ``backward()`` changes MXNet's gradient
exactly when the op's backward reads it. hybrid's residuals hold the values seen
at record time instead; the front end uses this analysis to refuse such a write
precisely when the residuals depend on the overwritten input (``x * 2`` keeps
nothing of ``x``; ``x * x`` keeps ``x``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax.extend import core

from . import x64


@x64.scoped
def read_by_residuals(fn: Callable, args: Sequence[Any],
                      n_outputs: int) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """Which inputs and outputs of ``fn`` its residuals are computed from.

    Arguments:
        fn: a function of ``*args`` whose flattened outputs are the primal outputs
            followed by the residuals (``jax.vjp``'s closure flattens to them).
        args: example arguments (arrays or abstract values), a pytree per argument.
        n_outputs: how many leading output leaves are not residuals.

    Returns:
        ``(inputs, outputs)``: per leaf of ``args`` (``jax.tree_util`` order), whether a
        residual depends on it; per primal output leaf, whether it is itself a residual
        (``exp``'s backward keeps its output). An equation inside a nested program
        counts as reading all of its operands (conservative).
    """
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    deps: dict[Any, int] = {v: 1 << i for i, v in enumerate(jaxpr.invars)}

    def of(v: Any) -> int:
        return 0 if isinstance(v, core.Literal) else deps.get(v, 0)

    for eqn in jaxpr.eqns:
        d = 0
        for v in eqn.invars:
            d |= of(v)
        for v in eqn.outvars:
            deps[v] = d
    residuals = [v for v in jaxpr.outvars[n_outputs:] if not isinstance(v, core.Literal)]
    mask = 0
    for v in residuals:
        mask |= of(v)
    kept = set(residuals)
    inputs = tuple(bool(mask >> i & 1) for i in range(len(jaxpr.invars)))
    outputs = tuple(not isinstance(v, core.Literal) and v in kept
                    for v in jaxpr.outvars[:n_outputs])
    return inputs, outputs
