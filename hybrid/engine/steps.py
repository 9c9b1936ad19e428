"""Capturing ``backward()`` and the Trainer's update into the thread's capture.

Each function returns False (capturing nothing) when the action cannot be captured
as a whole; the caller then flushes the capture and runs the action eagerly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .. import autograd
from .capture import ALWAYS, current
from .entries import BackwardEntry, UpdateEntry
from .pending import Pending, PendingVJP


def capture_backward(heads: Sequence[Any], head_grads: Sequence[Any],
                     retain_graph: bool) -> bool:
    """Append ``autograd.backward(heads, head_grads)`` to the open capture, if every
    node it runs through is captured there (and the graph is not retained)."""
    cap = current()
    if cap is None or retain_graph:
        return False
    entries = []
    for h in heads:
        entry = getattr(h, "_entry", None)
        if entry is None or not isinstance(entry[0], autograd.TapeNode):
            return False
        entries.append(entry)
    nodes = sorted(autograd._collect(entries), key=lambda n: n.seq, reverse=True)
    for n in nodes:
        vjp = n.vjp
        if vjp.__class__ is not PendingVJP or vjp.capture is not cap or n.written is not None:
            return False
    position = {id(n): n.vjp.entry for n in nodes}
    var_pos: dict[int, int] = {}
    variables: list = []

    def spec(parent, index):
        if isinstance(parent, autograd.Variable):
            if id(parent) not in var_pos:
                var_pos[id(parent)] = len(variables)
                variables.append(parent)
            return ("v", var_pos[id(parent)])
        return (position[id(parent)], index)

    head_specs = []
    for h, (node, index), hg in zip(heads, entries, head_grads):
        hg_ref = None
        if hg is not None:
            hg_ref = cap.ref(hg) if hasattr(hg, "_value") else cap.leaf(hg)
            if hg_ref is None:
                return False
        head_specs.append((position[id(node)], index,
                           (tuple(h.shape), np.dtype(h._aval().dtype)), hg_ref))
    order = []
    for n in nodes:
        avals = tuple((tuple(a.shape), np.dtype(a.dtype)) for a in n.out_avals)
        order.append((n.vjp.entry, avals, tuple(spec(p, i) for p, i in n.parents)))
    var_specs, grads, replaced = [], [], []
    for v in variables:
        arr = v.array
        g = arr._grad
        if g is None or arr._grad_req == "null":
            var_specs.append((None, None, None))
            grads.append(None)
            continue
        old = cap.ref(g) if arr._grad_req == "add" else None
        if arr._grad_req == "add":
            if old is None:
                return False
            replaced.append((old, g))
        elif g._base is None and g._value.__class__ is not Pending:
            # not an input of the program's computation: given to it only so that the
            # new gradient is written into its buffer
            donor = cap.ref(g)
            if donor is not None:
                replaced.append((donor, g))
        var_specs.append((arr._grad_req, np.dtype(g._aval().dtype), old))
        grads.append(g)
    holder_keys: dict[int, int] = {}
    holders: list = []
    holder_refs: list = []
    commits = []
    for n in nodes:
        aux_holders = cap.holders.get(n.vjp.entry)
        if not aux_holders:
            continue
        keys = []
        for h in aux_holders:
            if id(h) not in holder_keys:
                ref = cap.ref(h)
                if ref is None:
                    return False
                holder_keys[id(h)] = len(holders)
                holders.append(h)
                holder_refs.append(ref)
                replaced.append((ref, h))
            keys.append(holder_keys[id(h)])
        commits.append((n.vjp.entry, tuple(keys)))
    for ref, owner in replaced:
        cap.replaces(ref, owner)
    b = len(cap.entries)
    cap.add(BackwardEntry(b, cap.entries, head_specs, order, var_specs, commits, holder_refs))
    for n in nodes:  # freed, as an eager backward without retain_graph frees them
        n.vjp = None
        n.commit = None
    for k, (v, g) in enumerate(zip(variables, grads)):
        if g is not None:
            cap.pending(g, (1, b, ("grad", k)), g._aval())  # same shape and dtype as before
            v.array._fresh_grad = True
    for h, holder in enumerate(holders):
        cap.pending(holder, (1, b, ("aux", h)), holder._aval())
    cap.has_backward = True
    return True


def captured_outputs(cap, entry: int, out_avals: Sequence, ctx: Any, blank: Callable,
                     record: tuple | None) -> list:
    """The pending output arrays of captured ``entry`` (``blank(ctx)`` makes one), with
    a tape node when the call is recorded: ``record = (parents, name, saved inputs,
    kept-output flags, aux holders or None, commit factory or None)``."""
    results = []
    for j, aval in enumerate(out_avals):
        r = blank(ctx)
        cap.pending(r, (1, entry, j), aval)
        results.append(r)
    if record is not None:
        parents, name, saved, kept, holders, factory = record
        if holders:
            cap.holders[entry] = holders
        saved = list(saved) + [r for r, k in zip(results, kept) if k]
        node = autograd.TapeNode(None, parents, out_avals, name, None, saved)
        node.vjp = cap.node(node, entry, factory)
        for i, r in enumerate(results):
            r._entry = (node, i)
    if cap.full:
        cap.flush()
    return results


def pending_in_open_capture(array: Any) -> bool:
    """Whether ``array`` holds a value of the thread's open capture."""
    cap = current()
    value = array._value
    return cap is not None and value.__class__ is Pending and value.capture is cap


def capture_update(owner: Any, update: Callable, values: Sequence[Any], states: Sequence[Any],
                   hyper: Sequence[Any], assign: Callable[[Any], None]) -> bool:
    """Append the Trainer's update of ``values`` (NDArrays with pending gradients) and
    run the capture: ``assign((new_weights, new_states))`` receives the result."""
    cap = current()
    if cap is None:
        return False
    weight_refs = [cap.ref(v) for v in values]
    grad_refs = [cap.ref(v._grad) for v in values]
    if any(r is None for r in weight_refs + grad_refs):
        return False
    leaves, tree = jax.tree_util.tree_flatten(tuple(states))
    state_refs = [cap.leaf(x) for x in leaves]
    del leaves
    for v, r in zip(values, weight_refs):
        cap.replaces(r, v)
    for r in state_refs:
        cap.replaces(r, ALWAYS)
    e = len(cap.entries)
    cap.add(UpdateEntry(e, owner, update, weight_refs, grad_refs, state_refs, tree,
                        [cap.leaf(h) for h in hyper]))
    cap.result((1, e, "out"), assign)
    cap.flush()
    return True
