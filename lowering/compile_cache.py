"""A lowered graph plus its compile cache.

:class:`CompiledGraph` owns one lowered function and compiles it with
``jax.jit`` per cache key: the input shapes and dtypes, the training flag, the
device and (for recorded calls) which arguments are differentiated. Parameter
shapes are part of the key through jax's own tracing cache. Every actual trace
increments :attr:`CompiledGraph.traces`, so tests and users can see
recompilation; a warning is issued when one graph keeps recompiling.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import jax

from .graph import Entry
from .lower import lower

RETRACE_WARNING = 16
"""Warn once when one graph has been traced this many times."""


class CompiledGraph:
    """``heads`` lowered over named inputs, parameters and auxiliary states."""

    def __init__(self, heads: Sequence[Entry], input_names: Sequence[str],
                 param_names: Sequence[str], aux_names: Sequence[str], name: str = "graph"):
        self.heads = list(heads)
        self.input_names = list(input_names)
        self.param_names = list(param_names)
        self.aux_names = list(aux_names)
        self.name = name
        self.traces = 0
        self._warned = False
        self._fn = lower(self.heads, self.input_names)
        self._forward: dict[tuple, Any] = {}
        self._recorded: dict[tuple, Any] = {}

    def _traced(self) -> None:
        self.traces += 1
        if self.traces >= RETRACE_WARNING and not self._warned:
            self._warned = True
            warnings.warn(
                f"{self.name} has been compiled {self.traces} times; its input shapes, dtypes "
                "or parameter shapes keep changing (each new combination compiles again)",
                stacklevel=4,
            )

    def _run(self, params, aux, inputs, key, training):
        outs, new_aux = self._fn(dict(zip(self.param_names, params)),
                                 dict(zip(self.aux_names, aux)), tuple(inputs), key, training)
        return outs, tuple(new_aux.get(n, a) for n, a in zip(self.aux_names, aux))

    def forward(self, params: Sequence, aux: Sequence, inputs: Sequence, key: Any,
                training: bool, device_key: Any = None):
        """``(outputs, new_aux)`` of one compiled call."""
        cache_key = (training, device_key, tuple((x.shape, x.dtype) for x in inputs))
        fn = self._forward.get(cache_key)
        if fn is None:
            def run(params, aux, inputs, key):
                self._traced()
                return self._run(params, aux, inputs, key, training)

            fn = self._forward[cache_key] = jax.jit(run)
        return fn(tuple(params), tuple(aux), tuple(inputs), key)

    def forward_vjp(self, params: Sequence, aux: Sequence, inputs: Sequence, key: Any,
                    training: bool, param_mask: tuple[bool, ...], input_mask: tuple[bool, ...],
                    device_key: Any = None):
        """``(outputs, new_aux, vjp)``: one compiled call that also returns the VJP.

        ``vjp(output_cotangents)`` gives the cotangents of the masked parameters
        followed by the masked inputs, in order.
        """
        cache_key = (training, device_key, param_mask, input_mask,
                     tuple((x.shape, x.dtype) for x in inputs))
        fn = self._recorded.get(cache_key)
        if fn is None:
            def run(params, aux, inputs, key):
                self._traced()
                diff = [p for p, m in zip(params, param_mask) if m] + \
                       [x for x, m in zip(inputs, input_mask) if m]

                def f(*d):
                    it = iter(d)
                    ps = [next(it) if m else p for p, m in zip(params, param_mask)]
                    xs = [next(it) if m else x for x, m in zip(inputs, input_mask)]
                    return self._run(ps, aux, xs, key, training)

                outs, vjp, new_aux = jax.vjp(f, *diff, has_aux=True)
                return outs, new_aux, vjp

            fn = self._recorded[cache_key] = jax.jit(run)
        return fn(tuple(params), tuple(aux), tuple(inputs), key)

    def clear(self) -> None:
        """Drop every compiled entry (the trace counter keeps counting)."""
        self._forward.clear()
        self._recorded.clear()
