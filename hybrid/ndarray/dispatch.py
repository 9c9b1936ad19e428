"""Eager execution of registry ops on NDArrays, with recording for autograd.

Each (op, attributes, training flag) pair is compiled once with ``jax.jit``
(jax then caches per input shape), so a composite op costs one dispatch. When
autograd is recording and some input needs a gradient, the compiled call also
returns the op's VJP closure (its residuals are outputs of the same call) and a
:class:`~hybrid.autograd.TapeNode` is attached to the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lowering.graph import call_op
from lowering.registry import OpDef

from .. import autograd
from .. import random as _random
from ..base import MXNetError

_FORWARD: dict[tuple, Any] = {}
_RECORDED: dict[tuple, Any] = {}


def _attrs_key(attrs: dict[str, Any]) -> tuple:
    return tuple(sorted(attrs.items()))


def _forward_fn(op: OpDef, attrs: dict, akey: tuple, training: bool):
    cache_key = (op.name, akey, training)
    fn = _FORWARD.get(cache_key)
    if fn is None:

        def run(arrays, key):
            return call_op(op, attrs, arrays, key, training)

        fn = _FORWARD[cache_key] = jax.jit(run)
    return fn


def _recorded_fn(op: OpDef, attrs: dict, akey: tuple, training: bool, mask: tuple[bool, ...]):
    cache_key = (op.name, akey, training, mask)
    fn = _RECORDED.get(cache_key)
    if fn is None:

        def run(diff, fixed, key):
            def f(*d):
                it_d, it_f = iter(d), iter(fixed)
                arrays = [next(it_d) if m else next(it_f) for m in mask]
                outs, new_aux = call_op(op, attrs, arrays, key, training)
                return outs, new_aux

            outs, vjp, new_aux = jax.vjp(f, *diff, has_aux=True)
            return outs, new_aux, vjp

        fn = _RECORDED[cache_key] = jax.jit(run)
    return fn


def _describe(inputs: Sequence[Any]) -> str:
    return ", ".join(f"{tuple(x.shape)} {x.dtype.name if hasattr(x.dtype, 'name') else x.dtype}"
                     for x in inputs)


def invoke(op: OpDef, inputs: Sequence[Any], attrs: dict[str, Any], ctx=None, out=None):
    """Run ``op`` now on NDArrays ``inputs``; returns an NDArray or a list of them.

    ``attrs`` are already parsed. Auxiliary-state inputs are updated in place
    (their handles get the new values). ``out`` receives the (single) result.
    """
    from .ndarray import NDArray

    training = autograd.is_training() if op.needs_training else False
    key = _random.next_key() if op.needs_rng else None
    arrays = [x._data for x in inputs]
    akey = _attrs_key(attrs)
    recording = (
        op.differentiable
        and autograd.is_recording()
        and any(x._entry is not None for x in inputs)
    )
    try:
        if recording:
            mask = tuple(
                x._entry is not None and jnp.issubdtype(x.dtype, jnp.inexact) for x in inputs
            )
            fn = _recorded_fn(op, attrs, akey, training, mask)
            diff = [a for a, m in zip(arrays, mask) if m]
            fixed = [a for a, m in zip(arrays, mask) if not m]
            outs, new_aux, vjp = fn(diff, fixed, key)
        else:
            outs, new_aux = _forward_fn(op, attrs, akey, training)(arrays, key)
    except MXNetError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with op and shapes
        raise MXNetError(f"operator {op.name} failed on inputs ({_describe(arrays)}): {err}") \
            from err

    if new_aux:
        names = op.input_names(attrs)
        aux_inputs = [x for n, x in zip(names, inputs) if n in op.aux]
        for holder, value in zip(aux_inputs, new_aux):
            holder._set_data(value)

    if ctx is None:
        ctx = inputs[0].context if inputs else None
    results = [NDArray(o, ctx=ctx) for o in outs]
    if recording:
        parents = [x._entry for x, m in zip(inputs, mask) if m]
        avals = [jax.ShapeDtypeStruct(o.shape, o.dtype) for o in outs]
        node = autograd.TapeNode(vjp, parents, avals, op.name)
        for i, r in enumerate(results):
            r._entry = (node, i)
    if op.mutate_inputs:
        by_name = dict(zip(op.input_names(attrs), inputs))
        for name, value in zip(op.mutate_inputs, results[1:]):
            by_name[name]._set_data(value._data)
        results = results[:1]
    if out is not None:
        if len(results) != 1:
            raise MXNetError(f"operator {op.name}: out= needs a single-output op")
        out._set_data(results[0]._data.astype(out.dtype))
        out._entry = results[0]._entry
        return out
    return results[0] if len(results) == 1 else results
