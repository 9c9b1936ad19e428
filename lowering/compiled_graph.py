"""A lowered graph, compiled per call signature through the compile-cache service.

:class:`CompiledGraph` owns one lowered function and compiles it with
``jax.jit`` per key: the input shapes and dtypes, the training flag, the
device and (for recorded calls) which arguments are differentiated. Parameter
shapes reach the program through jax's own tracing, and a retrace they cause
still counts. :attr:`CompiledGraph.traces` counts this graph's compiles; the
service (:mod:`lowering.compile_cache`) bounds the programs kept and warns when
one block keeps recompiling.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax

from .compile_cache import CompileCache, avals, key
from .graph import Entry
from .lower import lower, lower_aux_commit

GRAPHS = CompileCache("block")
"""Compiled programs of every hybridized graph."""

_serial = itertools.count()


class CompiledGraph:
    """``heads`` lowered over named inputs, parameters and auxiliary states.

    Arguments:
        heads: the graph's outputs.
        input_names, param_names, aux_names: the variables, in call order.
        name: the owner named in compile statistics and warnings ("block dense0").
    """

    def __init__(self, heads: Sequence[Entry], input_names: Sequence[str],
                 param_names: Sequence[str], aux_names: Sequence[str], name: str = "graph"):
        self.heads = list(heads)
        self.input_names = list(input_names)
        self.param_names = list(param_names)
        self.aux_names = list(aux_names)
        self.name = name
        self.traces = 0
        self.input_specs: list[tuple] = []
        self._serial = next(_serial)
        self._fn = lower(self.heads, self.input_names)
        self._commit = lower_aux_commit(self.heads)
        self._abstract: dict = {}

    @property
    def serial(self) -> int:
        """A number identifying this graph (and its lowered function) in cache keys."""
        return self._serial

    def pure(self, params: Sequence, aux: Sequence, inputs: Sequence, rng: Any,
             training: bool):
        """The lowered function itself, ``(outputs, batch_stats)``, for tracing inside a
        larger program (the engine's captured steps); each such trace counts as a
        compile of this graph."""
        self.traces += 1
        return self._run(params, aux, inputs, rng, training)

    def pure_commit(self, aux: Sequence, batch_stats: dict) -> tuple:
        """New values of every aux state after one call's ``batch_stats`` (traceable)."""
        changed = self._commit(dict(zip(self.aux_names, aux)), batch_stats)
        return tuple(changed.get(n, a) for n, a in zip(self.aux_names, aux))

    def abstract_call(self, param_avals: Sequence[tuple], aux_avals: Sequence[tuple],
                      input_avals: Sequence[tuple], rng: Any, training: bool) -> tuple:
        """``(output avals, whether the call has batch statistics)`` without running it,
        from ``(shape, dtype)`` pairs; cached per input signature."""
        k = (training, tuple(param_avals), tuple(aux_avals), tuple(input_avals))
        found = self._abstract.get(k)
        if found is None:
            def spec(pairs):
                return tuple(jax.ShapeDtypeStruct(s, d) for s, d in pairs)

            outs, stats = jax.eval_shape(
                lambda p, a, x, r: self._run(p, a, x, r, training),
                spec(param_avals), spec(aux_avals), spec(input_avals), rng)
            found = self._abstract[k] = (tuple(outs), bool(stats))
        return found

    def _counted(self, fn):
        def run(*args):
            self.traces += 1
            return fn(*args)
        return run

    def _run(self, params, aux, inputs, key_, training):
        return self._fn(dict(zip(self.param_names, params)), dict(zip(self.aux_names, aux)),
                        tuple(inputs), key_, training)

    def forward(self, params: Sequence, aux: Sequence, inputs: Sequence, rng: Any,
                training: bool, device_key: Any = None):
        """``(outputs, batch_stats)`` of one compiled call (see :mod:`lowering.lower`)."""
        spec = avals(inputs)
        k = key(graph=self._serial, mode="forward", training=training, device=device_key,
                inputs=spec)
        fn = GRAPHS.get(self.name, k)
        if fn is None:
            def run(params, aux, inputs, rng):
                return self._run(params, aux, inputs, rng, training)

            fn = GRAPHS.jit(self.name, k, self._counted(run))
            self.input_specs.append(spec)
        return fn(tuple(params), tuple(aux), tuple(inputs), rng)

    def forward_vjp(self, params: Sequence, aux: Sequence, inputs: Sequence, rng: Any,
                    training: bool, param_mask: tuple[bool, ...], input_mask: tuple[bool, ...],
                    device_key: Any = None):
        """``(outputs, batch_stats, vjp)``: one compiled call that also returns the VJP.

        ``vjp(output_cotangents)`` gives the cotangents of the masked parameters
        followed by the masked inputs, in order.
        """
        spec = avals(inputs)
        k = key(graph=self._serial, mode="vjp", training=training, device=device_key,
                params=param_mask, differentiated=input_mask, inputs=spec)
        fn = GRAPHS.get(self.name, k)
        if fn is None:
            def run(params, aux, inputs, rng):
                diff = [p for p, m in zip(params, param_mask) if m] + \
                       [x for x, m in zip(inputs, input_mask) if m]

                def f(*d):
                    it = iter(d)
                    ps = [next(it) if m else p for p, m in zip(params, param_mask)]
                    xs = [next(it) if m else x for x, m in zip(inputs, input_mask)]
                    return self._run(ps, aux, xs, rng, training)

                outs, vjp, stats = jax.vjp(f, *diff, has_aux=True)
                return outs, stats, vjp

            fn = GRAPHS.jit(self.name, k, self._counted(run))
            self.input_specs.append(spec)
        return fn(tuple(params), tuple(aux), tuple(inputs), rng)

    def commit_aux(self, aux: Sequence, batch_stats: dict) -> tuple:
        """New values of every aux state (in ``aux_names`` order) after committing
        ``batch_stats`` of one call, in backward order."""
        k = key(graph=self._serial, mode="commit",
                stats=tuple(sorted(batch_stats)), aux=avals(aux))
        owner = self.name + " (aux update)"
        fn = GRAPHS.get(owner, k)
        if fn is None:
            fn = GRAPHS.jit(owner, k, self.pure_commit)
        return fn(tuple(aux), batch_stats)

    def clear(self) -> None:
        """Drop every compiled program of this graph (the trace counter keeps counting)."""
        GRAPHS.drop(self.name)
