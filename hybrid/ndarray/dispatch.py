"""Eager execution of registry ops on NDArrays, with recording for autograd.

Each op call is one compiled program, cached by the compile-cache service on
everything that changes the program: the op, its static attributes, the
training flag, the differentiated-input mask and the input shapes and dtypes.
Scalar operands (the ``NUMBER`` attributes of the ``*_scalar`` ops: ``x * 2.5``,
``x + i``) are passed as traced operands instead, so a loop over many scalar
values compiles once; an op whose implementation needs such a value as a
Python number is noticed on its first trace and keeps it static from then on.
Other numeric attributes stay static: an implementation may close over them in
a custom VJP, where a traced value would escape its trace.

When autograd is recording and some input needs a gradient, the compiled call
also returns the op's VJP closure (its residuals are outputs of the same call)
and a :class:`~hybrid.autograd.TapeNode` is attached to the outputs. An op with
auxiliary states (BatchNorm) updates them when backward passes through that
node, as MXNet does: neither an unrecorded forward nor a recorded one without
backward changes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lowering import x64
from lowering.attrs import NUMBER
from lowering.compile_cache import CompileCache, avals, key
from lowering.graph import call_op
from lowering.registry import OpDef
from lowering.residuals import read_by_residuals

from .. import autograd
from .. import random as _random
from ..base import MXNetError
from ..engine import capture, steps
from ..engine.entries import OpEntry
from .ndarray import NDArray

EAGER = CompileCache("eager op", maxsize=4096, warn_after=None)
"""Compiled programs of eager op calls (shapes vary legitimately: no retrace warning)."""

_TRACED_KINDS = (NUMBER,)
_dynamic_names: dict[str, tuple[str, ...]] = {}
_static_only: set[str] = set()


def _numeric_attrs(op: OpDef) -> tuple[str, ...]:
    names = _dynamic_names.get(op.name)
    if names is None:
        names = _dynamic_names[op.name] = tuple(
            n for n, a in op.attrs.items() if a.kind in _TRACED_KINDS)
    return names


def _split_attrs(op: OpDef, attrs: dict) -> tuple[tuple, tuple, tuple]:
    """``(static key items, traced names, traced values)`` of ``attrs``."""
    numeric = () if op.name in _static_only else _numeric_attrs(op)
    traced = tuple(n for n in numeric if isinstance(attrs.get(n), (int, float))
                   and not isinstance(attrs.get(n), bool))
    static = tuple(sorted((k, v) for k, v in attrs.items() if k not in traced))
    return static, traced, tuple(attrs[n] for n in traced)


def _forward_program(op: OpDef, attrs: dict, static: tuple, traced: tuple, training: bool,
                     arrays: Sequence):
    k = key(attrs=static, traced=traced, training=training, inputs=avals(arrays))

    def run(arrays, values, rng):
        full = {**attrs, **dict(zip(traced, values))}
        return call_op(op, full, arrays, rng, training)

    return EAGER.jit(op.name, k, run)


def _recorded_program(op: OpDef, attrs: dict, static: tuple, traced: tuple, training: bool,
                      mask: tuple[bool, ...], arrays: Sequence):
    run, k = _recorded_run(op, attrs, static, traced, training, mask, arrays)
    return EAGER.jit(op.name, k, run), run, k


def _recorded_run(op: OpDef, attrs: dict, static: tuple, traced: tuple, training: bool,
                  mask: tuple[bool, ...], arrays: Sequence):
    """``(run, key)``: the pure forward-and-VJP of one recorded call, and its cache key."""
    k = key(attrs=static, traced=traced, training=training, differentiated=mask,
            inputs=avals(arrays))

    def run(diff, fixed, values, rng):
        full = {**attrs, **dict(zip(traced, values))}

        def f(*d):
            it_d, it_f = iter(d), iter(fixed)
            args = [next(it_d) if m else next(it_f) for m in mask]
            return call_op(op, full, args, rng, training)

        outs, vjp, stats = jax.vjp(f, *diff, has_aux=True)
        return outs, stats, vjp

    return run, k


_READS: dict[tuple, tuple[bool, ...]] = {}
_READS_LIMIT = 4096


def _arrays_read(op: OpDef, k: Any, run: Any, args: tuple, mask: tuple[bool, ...],
                 n_out: int) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """Per input and per output of the op: whether its recorded VJP keeps it (or a
    function of it), analysed once per compiled program."""
    found = _READS.get((op.name, k))
    if found is None:
        diff, fixed = args[0], args[1]
        ins, outs = read_by_residuals(run, args, n_out)
        it_d, it_f = iter(ins[:len(diff)]), iter(ins[len(diff):len(diff) + len(fixed)])
        found = tuple(next(it_d) if m else next(it_f) for m in mask), outs
        if len(_READS) >= _READS_LIMIT:
            _READS.clear()
        _READS[(op.name, k)] = found
    return found


def _commit_program(op: OpDef, attrs: dict, static: tuple, traced: tuple, old: Sequence):
    k = key(attrs=static, traced=traced, aux=avals(old))

    def run(old, stats, values):
        return op.commit_aux({**attrs, **dict(zip(traced, values))}, old, stats)

    return EAGER.jit(op.name + " (aux update)", k, run)


def _describe(inputs: Sequence[Any]) -> str:
    return ", ".join(f"{tuple(x.shape)} {x.dtype.name if hasattr(x.dtype, 'name') else x.dtype}"
                     for x in inputs)


def _run(op: OpDef, attrs: dict, arrays: list, inputs: Sequence, recording: bool,
         training: bool, rng: Any):
    static, traced, values = _split_attrs(op, attrs)
    mask = None
    try:
        if recording:
            mask = tuple(x._entry is not None and jnp.issubdtype(x.dtype, jnp.inexact)
                         for x in inputs)
            fn, run, k = _recorded_program(op, attrs, static, traced, training, mask, arrays)
            diff = [a for a, m in zip(arrays, mask) if m]
            fixed = [a for a, m in zip(arrays, mask) if not m]
            outs, stats, vjp = fn(diff, fixed, values, rng)
            n_out = len(jax.tree_util.tree_leaves((outs, stats)))
            reads = _arrays_read(op, k, run, (diff, fixed, values, rng), mask, n_out)
        else:
            outs, stats = _forward_program(op, attrs, static, traced, training, arrays)(
                arrays, values, rng)
            vjp = reads = None
    except MXNetError:
        raise
    except Exception:  # noqa: BLE001 - retried with static numbers, which re-raises real errors
        if not traced:
            raise
        _static_only.add(op.name)
        return _run(op, attrs, arrays, inputs, recording, training, rng)
    return outs, stats, vjp, mask, reads, (static, traced, values)


@x64.scoped
def invoke(op: OpDef, inputs: Sequence[Any], attrs: dict[str, Any], ctx=None, out=None):
    """Run ``op`` now on NDArrays ``inputs``; returns an NDArray or a list of them.

    ``attrs`` are already parsed. ``out`` receives the (single) result.
    """
    if out is None and not op.mutate_inputs and autograd.is_recording():
        cap = capture.active()
        if cap is not None:
            captured = _capture(cap, op, inputs, attrs, ctx)
            if captured is not None:
                return captured
            cap.flush()  # not capturable: everything before it runs, then this op, eagerly
    training = autograd.is_training() if op.needs_training else False
    rng = _random.next_key() if op.needs_rng else None
    arrays = [x._data for x in inputs]
    recording = (
        op.differentiable
        and autograd.is_recording()
        and any(x._entry is not None for x in inputs)
    )
    try:
        outs, stats, vjp, mask, reads, split = _run(op, attrs, arrays, inputs, recording,
                                                     training, rng)
    except MXNetError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with op and shapes
        raise MXNetError(f"operator {op.name} failed on inputs ({_describe(arrays)}): {err}") \
            from err

    if ctx is None:
        ctx = inputs[0].context if inputs else None
    results = [NDArray(o, ctx=ctx) for o in outs]
    if recording:
        parents = [x._entry for x, m in zip(inputs, mask) if m]
        out_avals = [jax.ShapeDtypeStruct(o.shape, o.dtype) for o in outs]
        commit = None
        if stats is not None:
            holders = [inputs[i] for i in op.aux_inputs(attrs)]
            commit = _aux_commit(op, attrs, split, holders, stats)
        # An input the residuals were computed from: a later write makes backward refuse.
        # (Aux states are read by the commit, after their own updates: never watched.)
        aux = op.aux_inputs(attrs) if stats is not None else ()
        saved = [x for i, (x, r) in enumerate(zip(inputs, reads[0])) if r and i not in aux]
        saved += [r for r, kept in zip(results, reads[1]) if kept]
        node = autograd.TapeNode(vjp, parents, out_avals, op.name, commit, saved)
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
        if results[0]._saved_by and out._base is None:  # the node keeps this output
            out._saved_by = (out._saved_by or []) + results[0]._saved_by
        return out
    return results[0] if len(results) == 1 else results


_BINARY: dict[tuple, Any] = {}
_BINARY_LIMIT = 4096


def binary(op: OpDef, a: NDArray, b: NDArray) -> NDArray | None:
    """``op(a, b)`` for two NDArrays outside ``record()`` through the compiled program a
    previous call of the same shapes and dtypes used (found by those alone, without
    parsing attributes or building a key); None when no call has (the caller runs
    :func:`invoke`, then :func:`remember_binary`)."""
    da, db = a._data, b._data
    fn = _BINARY.get((op.name, da.shape, da.dtype, db.shape, db.dtype))
    if fn is None:
        return None
    try:
        outs, _ = fn([da, db], (), None)
    except Exception:  # noqa: BLE001 - e.g. arrays on two devices: invoke reports it
        return None
    return NDArray(outs[0], ctx=a.context)


def remember_binary(op: OpDef, a: NDArray, b: NDArray) -> None:
    """Let :func:`binary` find the program ``invoke`` just ran for ``op(a, b)`` (an op of
    two inputs, no random numbers, no traced attributes, one output)."""
    if op.needs_rng or op.needs_training or op.check_values is not None or op.mutate_inputs:
        return
    attrs = op.parse_attrs({})
    static, traced, _ = _split_attrs(op, attrs)
    if traced:
        return
    da, db = a._data, b._data
    fn = _forward_program(op, attrs, static, traced, False, [da, db])
    if len(_BINARY) >= _BINARY_LIMIT:
        _BINARY.clear()
    _BINARY[(op.name, da.shape, da.dtype, db.shape, db.dtype)] = fn


_SHAPES: dict[tuple, tuple] = {}
_SHAPES_LIMIT = 8192
_KEY_AVAL: list = []


def _abstract(op: OpDef, attrs: dict, static: tuple, traced: tuple, values: tuple,
              training: bool, mask, in_avals: tuple) -> tuple:
    """``(output avals, has batch statistics, arrays read by the residuals)`` of one
    call, without running it; cached per program key like the eager programs."""
    k = key(attrs=static, traced=traced, training=training, differentiated=mask,
            inputs=in_avals)
    found = _SHAPES.get((op.name, k))
    if found is not None:
        return found
    if not _KEY_AVAL:
        _KEY_AVAL.append(jax.eval_shape(lambda: jax.random.key(0)))
    rng = _KEY_AVAL[0] if op.needs_rng else None
    arrays = [jax.ShapeDtypeStruct(s, d) for s, d in in_avals]
    if mask is None:
        outs, stats = jax.eval_shape(
            lambda a, v, r: call_op(op, {**attrs, **dict(zip(traced, v))}, a, r, training),
            arrays, values, rng)
        reads = None
    else:
        run, rk = _recorded_run(op, attrs, static, traced, training, mask, arrays)
        diff = [a for a, m in zip(arrays, mask) if m]
        fixed = [a for a, m in zip(arrays, mask) if not m]
        outs, stats, _ = jax.eval_shape(run, diff, fixed, values, rng)
        n_out = len(jax.tree_util.tree_leaves((outs, stats)))
        reads = _arrays_read(op, rk, run, (diff, fixed, values, rng), mask, n_out)
    found = (tuple(jax.ShapeDtypeStruct(o.shape, o.dtype) for o in outs), stats is not None,
             reads)
    if len(_SHAPES) >= _SHAPES_LIMIT:
        _SHAPES.clear()
    _SHAPES[(op.name, k)] = found
    return found


def _capture(cap, op: OpDef, inputs: Sequence[Any], attrs: dict, ctx):
    """Append ``op`` to the capture ``cap``; its outputs (pending), or None when it
    cannot be captured (the caller runs it eagerly, which raises any error)."""
    refs = [cap.ref(x) for x in inputs]
    if any(r is None for r in refs):
        return None
    training = autograd.is_training() if op.needs_training else False
    recording = op.differentiable and any(x._entry is not None for x in inputs)
    in_avals = tuple((tuple(a.shape), a.dtype) for a in (x._aval() for x in inputs))
    mask = tuple(x._entry is not None and jnp.issubdtype(d, jnp.inexact)
                 for x, (_, d) in zip(inputs, in_avals)) if recording else None
    static, traced, values = _split_attrs(op, attrs)
    try:
        out_avals, has_stats, reads = _abstract(op, attrs, static, traced, values, training,
                                                mask, in_avals)
    except Exception:  # noqa: BLE001 - the eager call reports it with its own message
        return None
    if not out_avals:
        return None
    rng_refs = None
    if op.needs_rng:
        base, counter = _random.next_key_parts()
        rng_refs = (cap.leaf(base), cap.leaf(counter))
    e = len(cap.entries)
    entry = OpEntry(e, op, attrs, static, traced, training, mask, refs,
                    [cap.leaf(v) for v in values], rng_refs)
    cap.add(entry)
    if ctx is None:
        ctx = inputs[0].context if inputs else None
    record = None
    if recording:
        parents = [x._entry for x, m in zip(inputs, mask) if m]
        factory, holders, aux = None, None, ()
        if has_stats:
            aux = op.aux_inputs(attrs)
            holders = [inputs[i] for i in aux]
            split = (static, traced, values)

            def factory(stats, holders=holders, split=split):
                return _aux_commit(op, attrs, split, holders, stats)

        saved = [x for i, (x, r) in enumerate(zip(inputs, reads[0])) if r and i not in aux]
        record = (parents, op.name, saved, reads[1], holders, factory)
    results = steps.captured_outputs(cap, e, out_avals, ctx, NDArray._blank, record)
    return results[0] if len(results) == 1 else results


def _aux_commit(op: OpDef, attrs: dict, split: tuple, holders: list, stats: tuple):
    static, traced, values = split

    def commit() -> None:
        old = tuple(h._data for h in holders)
        new = _commit_program(op, attrs, static, traced, old)(old, stats, values)
        for h, v in zip(holders, new):
            h._set_data(v)

    return commit
