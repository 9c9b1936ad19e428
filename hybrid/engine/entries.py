"""The captured actions: an op call, a hybridized block call, a backward, an update.

Each entry's ``trace`` is the pure JAX form of what the eager path runs as its own
compiled call (the same functions: ``lowering.graph.call_op``, a compiled graph's
lowered function, ``jax.vjp``, the optimizer's ``fused_step``), so a captured
step computes what the eager steps compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from lowering.graph import call_op

from .capture import Entry, zeros_cotangent


def _key(get, rng_refs):
    if rng_refs is None:
        return None
    if len(rng_refs) == 1:
        return get(rng_refs[0])
    return jax.random.fold_in(get(rng_refs[0]), get(rng_refs[1]))


def _vjp_call(fn: Callable, args: Sequence, mask: tuple[bool, ...] | None):
    """``(outs, stats, vjp)`` of ``fn(*args) -> (outs, stats)``, differentiated in the
    masked arguments (no VJP without a mask)."""
    if mask is None:
        outs, stats = fn(*args)
        return outs, stats, None
    diff = [a for a, m in zip(args, mask) if m]

    def f(*d):
        it = iter(d)
        return fn(*[next(it) if m else a for a, m in zip(args, mask)])

    outs, vjp, stats = jax.vjp(f, *diff, has_aux=True)
    return outs, stats, vjp


class OpEntry(Entry):
    """An eager op call (``lowering.graph.call_op``), recorded when ``mask`` is set."""

    def __init__(self, index: int, op, attrs: dict, static: tuple, traced: tuple,
                 training: bool, mask, in_refs: Sequence[tuple], value_refs: Sequence[tuple],
                 rng_refs) -> None:
        self.index = index
        self.op = op
        self.attrs = attrs
        self.traced = traced
        self.training = training
        self.mask = mask
        self.in_refs = tuple(in_refs)
        self.value_refs = tuple(value_refs)
        self.rng_refs = rng_refs
        self.sig = ("op", op.name, static, traced, training, mask, self.in_refs,
                    self.value_refs, rng_refs)

    def full_attrs(self, get) -> dict:
        return {**self.attrs, **dict(zip(self.traced, (get(r) for r in self.value_refs)))}

    def trace(self, env: dict, get) -> None:
        full = self.full_attrs(get)
        rng = _key(get, self.rng_refs)
        outs, stats, vjp = _vjp_call(
            lambda *a: call_op(self.op, full, a, rng, self.training),
            [get(r) for r in self.in_refs], self.mask)
        e = self.index
        for j, o in enumerate(outs):
            env[(1, e, j)] = o
        env[("vjp", e)] = vjp
        env[("stats", e)] = stats
        env[("attrs", e)] = full

    def commit(self, env: dict, old: tuple) -> tuple:
        """New aux values from ``old`` and this call's batch statistics."""
        e = self.index
        return tuple(self.op.commit_aux(env[("attrs", e)], old, env[("stats", e)]))


class BlockEntry(Entry):
    """A hybridized block's call: its compiled graph's lowered function."""

    def __init__(self, index: int, graph, training: bool, param_mask, input_mask,
                 param_refs: Sequence[tuple], aux_refs: Sequence[tuple],
                 input_refs: Sequence[tuple], rng_refs) -> None:
        self.index = index
        self.graph = graph
        self.training = training
        self.mask = None if param_mask is None else tuple(param_mask) + tuple(input_mask)
        self.n_params = len(param_refs)
        self.param_refs = tuple(param_refs)
        self.aux_refs = tuple(aux_refs)
        self.input_refs = tuple(input_refs)
        self.rng_refs = rng_refs
        self.sig = ("block", graph.serial, training, self.mask, self.param_refs,
                    self.aux_refs, self.input_refs, rng_refs)

    def trace(self, env: dict, get) -> None:
        aux = [get(r) for r in self.aux_refs]
        rng = _key(get, self.rng_refs)
        n = self.n_params

        def run(*args):
            return self.graph.pure(args[:n], aux, args[n:], rng, self.training)

        outs, stats, vjp = _vjp_call(
            run, [get(r) for r in self.param_refs + self.input_refs], self.mask)
        e = self.index
        for j, o in enumerate(outs):
            env[(1, e, j)] = o
        env[("vjp", e)] = vjp
        env[("stats", e)] = stats

    def commit(self, env: dict, old: tuple) -> tuple:
        return tuple(self.graph.pure_commit(old, env[("stats", self.index)]))


class BackwardEntry(Entry):
    """``autograd.backward`` over captured nodes: cotangents through every VJP in
    MXNet's order, gradients written or added, aux statistics committed.

    Arguments:
        heads: per head ``(entry, output, (shape, dtype), head-gradient ref or None)``.
        order: per node, in backward order, ``(entry, out_avals, parent specs)``;
            a parent spec is ``("v", k)`` for variable ``k`` or ``(entry, output)``.
        variables: per variable ``(grad_req, grad dtype, old-gradient ref or None)``;
            ``grad_req`` None computes nothing for it (no gradient buffer).
        commits: per node with aux updates, in backward order, ``(entry, holder keys)``.
        holders: initial ref per holder key.
    """

    def __init__(self, index: int, entries: Sequence[Entry], heads, order, variables,
                 commits, holders) -> None:
        self.index = index
        self.entries = entries
        self.heads = tuple(heads)
        self.order = tuple(order)
        self.variables = tuple(variables)
        self.commits = tuple(commits)
        self.holders = tuple(holders)
        self.sig = ("backward", self.heads, self.order, self.variables, self.commits,
                    self.holders)

    def trace(self, env: dict, get) -> None:
        import jax.numpy as jnp

        grads: dict = {}
        leaf: list = [None] * len(self.variables)

        def add(spec, value):
            if spec[0] == "v":
                prev = leaf[spec[1]]
                leaf[spec[1]] = value if prev is None else prev + value
            else:
                prev = grads.get(spec)
                grads[spec] = value if prev is None else prev + value

        for e, j, (shape, dtype), hg in self.heads:
            add((e, j), jnp.ones(shape, dtype) if hg is None else get(hg).astype(dtype))
        for e, out_avals, parents in self.order:
            cts = tuple(grads.pop((e, i)) if (e, i) in grads
                        else zeros_cotangent(jax.ShapeDtypeStruct(shape, dtype))
                        for i, (shape, dtype) in enumerate(out_avals))
            for spec, ct in zip(parents, env[("vjp", e)](cts)):
                add(spec, ct)
        b = self.index
        for k, ((req, dtype, old), g) in enumerate(zip(self.variables, leaf)):
            if req is None or g is None:
                continue
            g = g.astype(dtype)
            env[(1, b, ("grad", k))] = get(old) + g if req == "add" else g
        current = {h: get(ref) for h, ref in enumerate(self.holders)}
        for e, keys in self.commits:
            new = self.entries[e].commit(env, tuple(current[h] for h in keys))
            for h, v in zip(keys, new):
                current[h] = v
        for h, v in current.items():
            env[(1, b, ("aux", h))] = v


class UpdateEntry(Entry):
    """``Trainer.step``'s update of every parameter: the optimizer's pure update."""

    def __init__(self, index: int, owner: Any, update: Callable, weight_refs, grad_refs,
                 state_refs, state_tree, hyper_refs) -> None:
        self.index = index
        self.update = update
        self.weight_refs = tuple(weight_refs)
        self.grad_refs = tuple(grad_refs)
        self.state_refs = tuple(state_refs)
        self.state_tree = state_tree
        self.hyper_refs = tuple(hyper_refs)
        self.sig = ("update", owner, self.weight_refs, self.grad_refs, self.state_refs,
                    state_tree, self.hyper_refs)

    def trace(self, env: dict, get) -> None:
        states = jax.tree_util.tree_unflatten(self.state_tree,
                                              [get(r) for r in self.state_refs])
        env[(1, self.index, "out")] = self.update(
            tuple(get(r) for r in self.weight_refs), tuple(get(r) for r in self.grad_refs),
            states, *(get(r) for r in self.hyper_refs))
