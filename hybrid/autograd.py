"""Tape-based automatic differentiation with MXNet's ``autograd`` API.

Inside ``with autograd.record():`` every op applied to an array that needs a
gradient (one with ``attach_grad()``, or computed from one) is recorded as a
:class:`TapeNode` that holds the op's VJP residuals, computed by the same
compiled call as the forward. ``backward()`` walks the recorded graph in reverse
through compiled VJP calls (no forward is recomputed) and writes or adds into
each variable's ``.grad`` according to its ``grad_req``.

A whole hybridized block call is one node, so its backward is one compiled call.

Writes between recording and backward: MXNet's backward reads the buffers as they
are then, hybrid's residuals hold the values recorded. A node therefore watches
the arrays its residuals were computed from (``lowering.residuals``); writing one
of them marks the node, and ``backward`` through a marked node raises rather than
return a gradient MXNet would not. A plain (no-grad) input of a recorded op counts
as part of the graph until that graph is freed, so writing it inside ``record()``
raises as it does in MXNet.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lowering import x64
from lowering.compile_cache import CompileCache, key

from .engine import capture as _capture
from .engine.pending import PendingVJP

_state = threading.local()


def _flags() -> list[bool]:
    if not hasattr(_state, "flags"):
        _state.flags = [False, False]  # recording, training
    return _state.flags


def is_recording() -> bool:
    """Whether ops are being recorded for differentiation."""
    return _flags()[0]


def is_training() -> bool:
    """Whether layers such as Dropout and BatchNorm run in training mode."""
    return _flags()[1]


def set_recording(is_recording: bool) -> bool:  # noqa: A002 - MXNet's name
    """Set recording on or off; returns the previous value."""
    flags = _flags()
    prev, flags[0] = flags[0], bool(is_recording)
    return prev


def set_training(train_mode: bool) -> bool:
    """Set training mode on or off; returns the previous value."""
    flags = _flags()
    prev, flags[1] = flags[1], bool(train_mode)
    return prev


class _Scope:
    def __init__(self, recording: bool | None, training: bool | None) -> None:
        self._recording = recording
        self._training = training
        self._saved: list[tuple[bool, bool]] = []

    def __enter__(self) -> _Scope:
        flags = _flags()
        if self._recording and not flags[0]:
            _capture.step_begins()
        self._saved.append((flags[0], flags[1]))
        if self._recording is not None:
            flags[0] = self._recording
        if self._training is not None:
            flags[1] = self._training
        return self

    def __exit__(self, *exc: Any) -> None:
        flags = _flags()
        flags[0], flags[1] = self._saved.pop()


def record(train_mode: bool = True) -> _Scope:
    """Record ops for ``backward`` (and switch to training mode unless ``train_mode=False``)."""
    return _Scope(True, train_mode)


def pause(train_mode: bool = False) -> _Scope:
    """Stop recording inside a ``record()`` scope (predict mode unless ``train_mode``)."""
    return _Scope(False, train_mode)


def train_mode() -> _Scope:
    """Training-mode behaviour of layers, without changing recording."""
    return _Scope(None, True)


def predict_mode() -> _Scope:
    """Inference-mode behaviour of layers, without changing recording."""
    return _Scope(None, False)


# ---------------------------------------------------------------------------
# the tape


class Variable:
    """The tape entry of an array marked with ``attach_grad``: where its gradient goes."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array


_node_seq = itertools.count()


class TapeNode:
    """One recorded call: its VJP closure (residuals inside), inputs and output avals.

    ``commit`` (optional) runs when backward passes through the node: it writes
    the call's new auxiliary states (BatchNorm's moving statistics), which MXNet
    updates in backward, not in forward.
    """

    __slots__ = ("vjp", "parents", "out_avals", "name", "commit", "seq", "written",
                 "__weakref__")

    def __init__(self, vjp: Any, parents: Sequence[tuple], out_avals: Sequence, name: str,
                 commit: Any = None, saved: Sequence = ()):
        self.vjp = vjp
        self.parents = list(parents)  # per differentiated input: (TapeNode | Variable, index)
        self.out_avals = list(out_avals)
        self.name = name
        self.commit = commit
        self.seq = next(_node_seq)  # creation order: backward runs in reverse of it, as MXNet's
        self.written: str | None = None  # what was written after recording, if anything
        if saved:
            _watch(self, saved)

    def note_written(self, what: str) -> None:
        """Called when an array this node saved is overwritten: backward will refuse it."""
        if self.vjp is not None and self.written is None:
            self.written = what


_PRUNE_AT = 8


def _watch(node: TapeNode, arrays: Sequence) -> None:
    """Register ``node`` on the arrays it read (their root buffers, for views).

    A later write to one of them marks the node (``note_written``), and a write to a
    plain array inside ``record()`` raises while the node can still be differentiated,
    as MXNet gives every input of a recorded op a graph entry.
    """
    ref = weakref.ref(node)
    for a in arrays:
        while a._base is not None:
            a = a._base
        watchers = a._saved_by
        if watchers is None:
            a._saved_by = [ref]
            continue
        size = len(watchers)
        if size >= _PRUNE_AT and not size & (size - 1):  # at powers of two: amortized O(1)
            watchers[:] = [w for w in watchers if (n := w()) is not None and n.vjp is not None]
        watchers.append(ref)


def live_watchers(array: Any, own: bool = False) -> list[TapeNode]:
    """The recorded nodes, not yet freed by a backward, that read ``array``'s buffer
    (with ``own``: that read this array itself, not a view's base)."""
    while array._base is not None and not own:
        array = array._base
    nodes = [w() for w in array._saved_by or ()]
    return [n for n in nodes if n is not None and n.vjp is not None]


def _call_vjp(vjp, cotangents):
    return vjp(cotangents)


_apply_vjp = x64.jit(_call_vjp)


def _zeros_like_aval(aval: jax.ShapeDtypeStruct):
    if jnp.issubdtype(aval.dtype, jnp.inexact):
        return jnp.zeros(aval.shape, aval.dtype)
    return np.zeros(aval.shape, jax.dtypes.float0)


def _collect(heads: Sequence[tuple]) -> list[TapeNode]:
    order: list[TapeNode] = []
    seen: set[int] = set()
    for head in heads:
        stack = [(head[0], False)]
        while stack:
            node, done = stack.pop()
            if not isinstance(node, TapeNode):
                continue
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for parent, _ in node.parents:
                if isinstance(parent, TapeNode) and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def _run_backward(heads, head_grads, retain_graph: bool) -> dict[int, tuple[Variable, Any]]:
    entries = []
    for i, h in enumerate(heads):
        entry = getattr(h, "_entry", None)
        if entry is None:
            raise ValueError(
                f"cannot differentiate head {i} (shape {h.shape}): it was not computed inside "
                "autograd.record() from arrays with attach_grad()"
            )
        entries.append(entry)
    grads: dict[tuple[int, int], Any] = {}
    leaves: dict[int, tuple[Variable, Any]] = {}

    def add(target, index, value):
        if isinstance(target, Variable):
            key = id(target)
            prev = leaves.get(key)
            leaves[key] = (target, value if prev is None else prev[1] + value)
            return
        key = (id(target), index)
        prev = grads.get(key)
        grads[key] = value if prev is None else prev + value

    for h, hg in zip(heads, head_grads):
        if hg is not None and tuple(hg.shape) != tuple(h.shape):
            raise ValueError(f"head gradient shape {tuple(hg.shape)} != head shape {h.shape}")
    nodes = sorted(_collect(entries), key=lambda n: n.seq, reverse=True)
    for node in nodes:
        if node.vjp.__class__ is PendingVJP:  # recorded into a capture: run it first
            node.vjp.capture.flush()
    for node in nodes:
        if node.vjp is None:
            raise RuntimeError(
                f"the graph through {node.name} was already freed by a backward pass; "
                "call backward(retain_graph=True) to differentiate it again"
            )
    for node in nodes:
        if node.written is not None:
            from .base import MXNetError

            raise MXNetError(
                f"backward through {node.name}: {node.written} that it saved for the gradient "
                "was written after autograd.record() (MXNet's backward would read the new "
                "contents, which it calls undefined behaviour); write before recording, or "
                "record the forward again after the write"
            )
    fused = _fused_backward(nodes, heads, entries, head_grads)
    if fused is not None:
        for node in nodes:
            _commit(node, retain_graph)
            if not retain_graph:
                node.vjp = None
        return fused

    for h, entry, hg in zip(heads, entries, head_grads):
        g = jnp.ones(h.shape, h.dtype) if hg is None else _raw(hg).astype(h.dtype)
        add(entry[0], entry[1], g)

    for node in nodes:
        cts = []
        for i, aval in enumerate(node.out_avals):
            g = grads.pop((id(node), i), None)
            cts.append(_zeros_like_aval(aval) if g is None else g)
        cts = tuple(cts)
        if isinstance(node.vjp, _PyVJP):
            in_cts = node.vjp(cts)
        else:
            in_cts = _apply_vjp(node.vjp, cts)
        _commit(node, retain_graph)
        if not retain_graph:
            node.vjp = None
        for (parent, index), ct in zip(node.parents, in_cts):
            add(parent, index, ct)
    return leaves


def _commit(node: TapeNode, retain_graph: bool) -> None:
    if node.commit is not None:
        node.commit()
        if not retain_graph:
            node.commit = None


# A backward pass whose tape has the same structure as an earlier one runs as ONE
# compiled call: every VJP of the tape, the cotangent bookkeeping and the head
# gradients, fused by XLA. A structure seen only once runs node by node, so
# programs whose graph changes every step never pay a compile per step.
_FUSED = CompileCache("fused backward", maxsize=256, warn_after=None)
_SEEN: dict[tuple, int] = {}
FUSE_AFTER = 2
_SEEN_LIMIT = 4096


def _one_device(nodes) -> bool:
    """Whether every residual of ``nodes`` is on one device (one program can run them)."""
    first = None
    for n in nodes:
        for leaf in jax.tree_util.tree_leaves(n.vjp):
            if isinstance(leaf, jax.Array):
                sharding = leaf.sharding
                if first is None:
                    first = sharding
                elif sharding is not first and sharding != first:
                    return False
    return True


def _fused_backward(nodes, heads, entries, head_grads):
    if any(isinstance(n.vjp, _PyVJP) for n in nodes):
        return None
    if not _one_device(nodes):  # several devices' graphs (split_and_load): node by node
        return None
    position = {id(n): k for k, n in enumerate(nodes)}
    leaf_pos: dict[int, int] = {}
    leaf_vars: list[Variable] = []

    def spec_of(target, index):
        if isinstance(target, Variable):
            if id(target) not in leaf_pos:
                leaf_pos[id(target)] = len(leaf_vars)
                leaf_vars.append(target)
            return (-1, leaf_pos[id(target)])
        return (position[id(target)], index)

    head_spec = tuple(spec_of(e[0], e[1]) for e in entries)
    parent_spec = tuple(tuple(spec_of(p, i) for p, i in n.parents) for n in nodes)
    out_avals = tuple(tuple((tuple(a.shape), np.dtype(a.dtype)) for a in n.out_avals)
                      for n in nodes)
    head_avals = tuple((tuple(h.shape), np.dtype(h._aval().dtype)) for h in heads)
    given = tuple(hg is not None for hg in head_grads)
    signature = (head_spec, parent_spec, out_avals, head_avals, given, len(leaf_vars))
    fused_key = key(tape=signature)
    fn = _FUSED.get("tape", fused_key)
    if fn is None:
        if len(_SEEN) >= _SEEN_LIMIT:  # a program whose graph never repeats
            _SEEN.clear()
        seen = _SEEN.get(signature, 0) + 1
        _SEEN[signature] = seen
        if seen < FUSE_AFTER:
            return None
        fn = _FUSED.jit("tape", fused_key, _make_fused(signature))
    hgs = tuple(_raw(hg).astype(dt) for hg, (_, dt) in zip(head_grads, head_avals)
                if hg is not None)
    leaf_grads = fn(tuple(n.vjp for n in nodes), hgs)
    return {id(v): (v, g) for v, g in zip(leaf_vars, leaf_grads)}


def _make_fused(signature):
    head_spec, parent_spec, out_avals, head_avals, given, n_leaves = signature

    def run(vjps, hgs):
        grads: dict[tuple[int, int], Any] = {}
        leaf = [None] * n_leaves

        def add(spec, value):
            if spec[0] < 0:
                prev = leaf[spec[1]]
                leaf[spec[1]] = value if prev is None else prev + value
            else:
                prev = grads.get(spec)
                grads[spec] = value if prev is None else prev + value

        it = iter(hgs)
        for spec, (shape, dtype), has in zip(head_spec, head_avals, given):
            add(spec, next(it) if has else jnp.ones(shape, dtype))
        for k, vjp in enumerate(vjps):
            cts = tuple(
                grads.pop((k, i)) if (k, i) in grads
                else _zeros_like_aval(jax.ShapeDtypeStruct(shape, dtype))
                for i, (shape, dtype) in enumerate(out_avals[k])
            )
            for spec, ct in zip(parent_spec[k], vjp(cts)):
                add(spec, ct)
        return tuple(leaf)

    return run


def _raw(x: Any):
    return x._data if hasattr(x, "_data") else jnp.asarray(x)


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


@x64.scoped
def backward(heads, head_grads=None, retain_graph: bool = False, train_mode: bool = True) -> None:
    """Compute gradients of ``heads`` and store them in the variables' ``.grad``.

    ``head_grads`` defaults to ones. ``grad_req='write'`` overwrites,
    ``'add'`` accumulates, ``'null'`` skips. The recorded graph is freed unless
    ``retain_graph``.
    """
    heads = _as_list(heads)
    hgs = _as_list(head_grads) or [None] * len(heads)
    if len(hgs) != len(heads):
        raise ValueError(f"{len(heads)} heads but {len(hgs)} head gradients")
    for h, hg in zip(heads, hgs):
        if hg is not None and tuple(hg.shape) != tuple(h.shape):
            raise ValueError(f"head gradient shape {tuple(hg.shape)} != head shape {h.shape}")
    if _steps.capture_backward(heads, hgs, retain_graph):
        return
    leaves = _run_backward(heads, hgs, retain_graph)
    for var, grad in leaves.values():
        var.array._accumulate_grad(grad)


@x64.scoped
def grad(heads, variables, head_grads=None, retain_graph: bool | None = None,
         create_graph: bool = False, train_mode: bool = True):
    """Gradients of ``heads`` with respect to ``variables``, returned (not stored).

    Returns a list, one gradient per variable (also for a single NDArray, as in
    MXNet 1.9); ``.grad`` buffers are left as they are. Each variable must have
    ``attach_grad()`` with a ``grad_req`` other than ``'null'`` and be reachable
    from the heads, else MXNetError, as in MXNet. Higher-order gradients
    (``create_graph=True``) are not supported.
    """
    from .base import MXNetError
    from .ndarray.ndarray import NDArray

    if create_graph:
        raise NotImplementedError("autograd.grad(create_graph=True) is not supported yet")
    heads = _as_list(heads)
    variables = _as_list(variables)
    if not variables:
        raise AssertionError("variables cannot be an empty list.")
    for i, v in enumerate(variables):  # MXNet counts variables from 1
        entry = getattr(v, "_entry", None)
        if entry is None or not isinstance(entry[0], Variable):
            raise MXNetError(
                f"autograd.grad: cannot differentiate with respect to the {i + 1}-th variable "
                f"(shape {tuple(v.shape)}) because it does not require gradient (it needs "
                "attach_grad() with grad_req 'write' or 'add')")
    hgs = _as_list(head_grads) or [None] * len(heads)
    leaves = _run_backward(heads, hgs, bool(retain_graph))
    out = []
    for i, v in enumerate(variables):
        found = leaves.get(id(v._entry[0]))
        if found is None:
            raise MXNetError(
                f"autograd.grad: cannot differentiate with respect to the {i + 1}-th variable "
                f"(shape {tuple(v.shape)}) because it is unreachable from the outputs")
        out.append(NDArray(found[1].astype(v._data.dtype), ctx=v.context))
    return out


def mark_variables(variables, gradients, grad_reqs: str | Sequence[str] = "write") -> None:
    """Mark arrays as variables whose gradients go into ``gradients``."""
    variables = _as_list(variables)
    gradients = _as_list(gradients)
    reqs = [grad_reqs] * len(variables) if isinstance(grad_reqs, str) else list(grad_reqs)
    for var, g, req in zip(variables, gradients, reqs):
        var._mark_variable(g, req)


def get_symbol(x):  # pragma: no cover - MXNet debugging helper
    """Not supported: the tape holds compiled VJPs, not a symbol graph."""
    raise NotImplementedError("autograd.get_symbol is not supported")


class Function:
    """User-defined differentiable function (MXNet's ``autograd.Function``).

    Subclass and implement ``forward(self, *inputs)`` and ``backward(self,
    *output_grads)`` on NDArrays; ``save_for_backward`` keeps values. ``forward``
    takes any number of NDArrays and returns one NDArray or a tuple of them;
    ``backward`` receives one gradient per output (zeros for outputs the heads do
    not reach) and returns one gradient per input, also for inputs that need none
    (those are dropped). Both run outside recording.
    """

    def __init__(self) -> None:
        self.saved_tensors: tuple = ()

    def save_for_backward(self, *args: Any) -> None:
        self.saved_tensors = args

    def forward(self, *inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *output_grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, *inputs):
        from .ndarray.ndarray import NDArray

        for i, x in enumerate(inputs):
            if not isinstance(x, NDArray):
                raise TypeError(f"{type(self).__name__}: autograd.Function inputs must be "
                                f"NDArrays, input {i} is {type(x).__name__}")
        with pause():
            outputs = self.forward(*inputs)
        single = not isinstance(outputs, (list, tuple))
        outs = [outputs] if single else list(outputs)
        positions = [i for i, x in enumerate(inputs) if x._entry is not None]
        if is_recording() and positions:
            avals = [jax.ShapeDtypeStruct(o.shape, o._data.dtype) for o in outs]
            node = TapeNode(_PyVJP(self, [x.shape for x in inputs],
                                   [x._data.dtype for x in inputs], avals,
                                   [o.context for o in outs], positions),
                            [inputs[i]._entry for i in positions], avals, type(self).__name__)
            for i, o in enumerate(outs):
                o._entry = (node, i)
        return outs[0] if single else outs


class _PyVJP:
    """A Python backward (``autograd.Function``) standing in for a compiled VJP: called
    with one cotangent per output, returns the gradients of the recorded inputs."""

    def __init__(self, func: Function, in_shapes, in_dtypes, out_avals, out_ctxs, positions):
        self.func = func
        self.in_shapes = [tuple(s) for s in in_shapes]
        self.in_dtypes = list(in_dtypes)
        self.out_avals = list(out_avals)
        self.out_ctxs = list(out_ctxs)
        self.positions = list(positions)

    def __call__(self, cts):
        from .base import MXNetError
        from .ndarray.ndarray import NDArray

        name = type(self.func).__name__
        heads = []
        for c, aval, ctx in zip(cts, self.out_avals, self.out_ctxs):
            if c.dtype == jax.dtypes.float0:  # an integer output: its gradient is zero
                c = jnp.zeros(aval.shape, aval.dtype)
            heads.append(NDArray(jnp.asarray(c), ctx=ctx))
        with pause():
            grads = self.func.backward(*heads)
        grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
        if len(grads) != len(self.in_shapes):
            raise MXNetError(
                f"{name}.backward must return exactly the same number of NDArrays as the "
                f"number of NDArrays arguments to forward. Expecting {len(self.in_shapes)} "
                f"got {len(grads)}")
        out = []
        for i in self.positions:
            g = grads[i]
            if not isinstance(g, NDArray):
                raise MXNetError(f"{name}.backward must return NDArrays, gradient {i} is "
                                 f"{type(g).__name__}")
            if tuple(g.shape) != self.in_shapes[i]:
                raise MXNetError(f"{name}.backward: gradient {i} has shape {tuple(g.shape)}, "
                                 f"input {i} has shape {self.in_shapes[i]}")
            out.append(g._data.astype(self.in_dtypes[i]))
        return tuple(out)


from .engine import steps as _steps  # noqa: E402 - it uses this module's tape types
