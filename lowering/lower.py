"""Lowering: a graph becomes one pure jax function, compiled once per cache key.

``lower(heads, input_names)`` returns ``fn(params, aux, inputs, key, training)
-> (outputs, batch_stats)``: ``params``/``aux`` are dicts name -> array, ``inputs``
a tuple in ``input_names`` order, ``key`` a PRNG key (each random node folds
in its own index, so draws differ between nodes and between calls), and
``training`` a Python bool. ``batch_stats`` maps the position of each node that
updates aux states (BatchNorm in training) to its batch statistics. The walk
over the nodes happens while jax traces the function; the compiled program
contains no Python.

``lower_aux_commit(heads)`` returns ``commit(aux, batch_stats) -> new_aux``: the
aux updates of those nodes applied in backward order (reverse topological
order), each reading the value left by the previous one, as MXNet's backward
does when one BatchNorm is applied several times in a graph.
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
        batch_stats: dict[int, tuple] = {}
        for pos, node in enumerate(order):
            if node.is_variable:
                values[node.uid] = (_variable_value(node, params, aux, inputs, input_index),)
                continue
            args = [values[e.node.uid][e.index] for e in node.inputs]
            node_key = jax.random.fold_in(key, rng_nodes[node.uid]) if node.uid in rng_nodes \
                else None
            outs, stats = call_node(node, args, node_key, training)
            values[node.uid] = outs
            if stats is not None:
                batch_stats[pos] = stats
        outputs = tuple(values[h.node.uid][h.index] for h in heads)
        return outputs, batch_stats

    return fn


def lower_aux_commit(heads: Sequence[Entry]) -> Callable[[dict, dict], dict]:
    """``commit(aux, batch_stats) -> new_aux`` for ``heads``; see the module docstring.

    ``aux`` maps aux variable names to their current values; the result holds
    the names that changed.
    """
    order = topo_order(heads)

    def commit(aux: dict, batch_stats: dict) -> dict:
        current = dict(aux)
        changed: dict[str, Any] = {}
        for pos in sorted(batch_stats, reverse=True):
            node = order[pos]
            entries = [node.inputs[i] for i in node.op.aux_inputs(node.attrs)]
            if not all(e.node.is_variable for e in entries):
                continue
            names = [e.node.name for e in entries]
            new = node.op.commit_aux(node.attrs, tuple(current[n] for n in names),
                                     batch_stats[pos])
            for n, v in zip(names, new):
                current[n] = changed[n] = v
        return changed

    return commit


def _variable_value(node: Node, params, aux, inputs, input_index):
    if node.name in input_index:
        return inputs[input_index[node.name]]
    if node.name in params:
        return params[node.name]
    if node.name in aux:
        return aux[node.name]
    raise LoweringError(f"no value given for variable {node.name!r}")

