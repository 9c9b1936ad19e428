"""Lowering: a graph becomes one pure jax function, compiled once per cache key.

``lower(heads, input_names)`` returns ``fn(params, aux, inputs, key, training)
-> (outputs, new_aux)``: ``params``/``aux`` are dicts name -> array, ``inputs``
a tuple in ``input_names`` order, ``key`` a PRNG key (each random node folds
in its own index, so draws differ between nodes and between calls), and
``training`` a Python bool. The walk over the nodes happens while jax traces
the function; the compiled program contains no Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from .graph import Entry, Node, call_node, topo_order


class LoweringError(ValueError):
    """The graph cannot be turned into a function (missing variable values, ...)."""


def lower(heads: Sequence[Entry], input_names: Sequence[str]) -> Callable[..., Any]:
    """The pure function computing ``heads``; see the module docstring."""
    order = topo_order(heads)
    input_index = {name: i for i, name in enumerate(input_names)}
    rng_nodes = {n.uid: i for i, n in enumerate(n for n in order if n.op is not None
                                                 and n.op.needs_rng)}

    def fn(params: dict, aux: dict, inputs: tuple, key: Any, training: bool):
        values: dict[int, tuple] = {}
        new_aux: dict[str, Any] = {}
        for node in order:
            if node.is_variable:
                values[node.uid] = (_variable_value(node, params, aux, inputs, input_index),)
                continue
            args = [values[e.node.uid][e.index] for e in node.inputs]
            node_key = jax.random.fold_in(key, rng_nodes[node.uid]) if node.uid in rng_nodes \
                else None
            outs, updated = call_node(node, args, node_key, training)
            values[node.uid] = outs
            if updated:
                _collect_aux(node, updated, new_aux)
        outputs = tuple(values[h.node.uid][h.index] for h in heads)
        return outputs, new_aux

    return fn


def _variable_value(node: Node, params, aux, inputs, input_index):
    if node.name in input_index:
        return inputs[input_index[node.name]]
    if node.name in params:
        return params[node.name]
    if node.name in aux:
        return aux[node.name]
    raise LoweringError(f"no value given for variable {node.name!r}")


def _collect_aux(node: Node, updated: tuple, new_aux: dict) -> None:
    aux_inputs = [e for name, e in zip(node.input_names(), node.inputs) if name in node.op.aux]
    for entry, value in zip(aux_inputs, updated):
        if entry.node.is_variable:
            new_aux[entry.node.name] = value
