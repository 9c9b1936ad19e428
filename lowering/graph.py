"""The graph IR: nodes, variables, heads; topological order and shape/dtype inference.

A graph is given by its heads, a list of :class:`Entry` ``(node, output_index)``.
A :class:`Node` is either a variable (``op is None``: an argument or auxiliary
state) or an op application. Nodes are immutable once built; graph passes build
new nodes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import numpy as np

from . import x64
from .registry import OpDef, OpError

_ids = itertools.count()


@dataclass(eq=False)
class Node:
    """One node. ``attrs`` are parsed values; ``annotations`` are MXNet's ``__x__`` strings."""

    op: OpDef | None
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    inputs: list[Entry] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    given_attrs: tuple[str, ...] = ()
    """Attribute names the user set explicitly: the ones written to JSON."""
    versions: tuple[int, ...] = ()
    """nnvm's per-input version numbers, kept so read JSON is written back unchanged."""
    json_outputs: int | None = None
    """The node's row count in a read file's ``node_row_ptr`` (hidden outputs included)."""
    attr_text: dict[str, str] | None = None
    """The op attribute strings exactly as a read file gives them (MXNet keeps them as
    strings, so ``shape='-1'`` is written back as ``-1``, not ``(-1,)``)."""
    uid: int = field(default_factory=lambda: next(_ids))

    @property
    def is_variable(self) -> bool:
        return self.op is None

    @property
    def num_outputs(self) -> int:
        """Visible outputs; ops that update inputs in place show only their result, as in
        MXNet (their extra outputs, the new input values, stay internal)."""
        if self.op is None or self.op.mutate_inputs:
            return 1
        return self.op.output_count(self.attrs)

    def json_output_count(self) -> int:
        """Outputs as MXNet's graph counts them (``node_row_ptr``): hidden ones included."""
        if self.json_outputs is not None:
            return self.json_outputs
        if self.op is not None and self.op.json_outputs is not None:
            n = self.op.json_outputs
            return n(self.attrs) if callable(n) else n
        return self.num_outputs

    def input_names(self) -> list[str]:
        return [] if self.op is None else self.op.input_names(self.attrs)

    def __repr__(self) -> str:
        kind = "var" if self.op is None else self.op.name
        return f"<Node {self.name} ({kind})>"


class Entry(NamedTuple):
    """One output of a node."""

    node: Node
    index: int = 0


def variable(name: str, **annotations: str) -> Node:
    """A variable node (argument or auxiliary state) with MXNet ``__x__`` annotations."""
    return Node(op=None, name=name, annotations={k: str(v) for k, v in annotations.items()})


def apply(
    op: OpDef,
    inputs: Sequence[Entry],
    attrs: dict[str, Any],
    name: str,
    given: Iterable[str] | None = None,
) -> Node:
    """An op node; ``attrs`` are raw (parsed here), ``given`` the keys to write to JSON."""
    parsed = op.parse_attrs({k: v for k, v in attrs.items() if not k.startswith("__")})
    annotations = {k: str(v) for k, v in attrs.items() if k.startswith("__")}
    expected = op.input_names(parsed)
    if len(inputs) != len(expected):
        raise OpError(
            f"operator {op.name} ({name}) takes inputs {expected}, got {len(inputs)} inputs"
        )
    given_keys = tuple(sorted(given if given is not None else (k for k in attrs if k in op.attrs)))
    return Node(op=op, name=name, attrs=parsed, inputs=list(inputs),
                annotations=annotations, given_attrs=given_keys)


def topo_order(heads: Sequence[Entry]) -> list[Node]:
    """All nodes reachable from ``heads`` in DFS post-order (MXNet's order)."""
    order: list[Node] = []
    seen: set[int] = set()
    for head in heads:
        stack: list[tuple[Node, int]] = [(head.node, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0 and node.uid in seen:
                continue
            if i < len(node.inputs):
                stack.append((node, i + 1))
                child = node.inputs[i].node
                if child.uid not in seen:
                    stack.append((child, 0))
            else:
                if node.uid not in seen:
                    seen.add(node.uid)
                    order.append(node)
    return order


def auxiliary_uids(nodes: Iterable[Node]) -> set[int]:
    """uids of variables used as an auxiliary-state input by some op."""
    aux = set()
    for node in nodes:
        if node.op is None or not node.op.aux:
            continue
        for name, entry in zip(node.input_names(), node.inputs):
            if name in node.op.aux and entry.node.is_variable:
                aux.add(entry.node.uid)
    return aux


def list_variables(heads: Sequence[Entry]) -> tuple[list[Node], list[Node]]:
    """``(arguments, auxiliary_states)`` in topological order."""
    nodes = topo_order(heads)
    aux = auxiliary_uids(nodes)
    variables = [n for n in nodes if n.is_variable]
    return [n for n in variables if n.uid not in aux], [n for n in variables if n.uid in aux]


class GraphShapeError(ValueError):
    """Shape or dtype inference failed at one node; the message names node, op and shapes."""


def _dtype_of(node: Node) -> Any:
    flag = node.annotations.get("__dtype__")
    if flag is None:
        return None
    from .serialization import type_flag_to_dtype as dtype_from_flag

    try:
        return dtype_from_flag(int(flag))
    except (ValueError, KeyError):
        return np.dtype(flag)


def _shape_of(node: Node) -> tuple[int, ...] | None:
    text = node.annotations.get("__shape__")
    if text is None:
        return None
    from .attrs import SHAPE

    shape = SHAPE.parse(text)
    return None if any(d == 0 for d in shape) else shape


@x64.scoped
def infer(
    heads: Sequence[Entry],
    known: dict[str, jax.ShapeDtypeStruct],
    call_op: Any = None,
) -> dict[int, list[jax.ShapeDtypeStruct]]:
    """Shape and dtype of every node output, by abstract evaluation of the op impls.

    ``known`` maps variable names to their ``ShapeDtypeStruct``. Unknown variable
    shapes (deferred parameters) are filled by the consuming op's
    ``infer_shapes`` rule; their dtype defaults to the first input's dtype.
    ``call_op(node, *args)`` evaluates one node (default: the registry impl
    with a dummy key and training flag). Returns ``{node.uid: [struct per output]}``;
    variables whose shape got inferred appear there too.
    """
    out: dict[int, list[jax.ShapeDtypeStruct]] = {}
    order = topo_order(heads)
    for node in order:
        if node.is_variable:
            if node.name in known:
                out[node.uid] = [known[node.name]]
            else:
                shape, dtype = _shape_of(node), _dtype_of(node)
                if shape is not None:
                    out[node.uid] = [jax.ShapeDtypeStruct(shape, dtype or np.float32)]
            continue
        shapes = [
            tuple(out[e.node.uid][e.index].shape) if e.node.uid in out else None
            for e in node.inputs
        ]
        if any(s is None for s in shapes) and node.op.infer_shapes is not None:
            filled = node.op.infer_shapes(node.attrs, list(shapes))
            ref = next((out[e.node.uid][e.index] for e in node.inputs if e.node.uid in out), None)
            for entry, shape in zip(node.inputs, filled):
                if entry.node.uid not in out and shape is not None and entry.node.is_variable:
                    dtype = _dtype_of(entry.node) or (ref.dtype if ref is not None else np.float32)
                    out[entry.node.uid] = [jax.ShapeDtypeStruct(tuple(shape), dtype)]
        missing = [e.node.name for e in node.inputs if e.node.uid not in out]
        if missing:
            raise GraphShapeError(
                f"cannot infer the shape of {missing} (inputs of {node.op.name} node "
                f"{node.name!r}); give them a shape or call the block on data first"
            )
        args = [out[e.node.uid][e.index] for e in node.inputs]
        try:
            result = jax.eval_shape(lambda *a, _n=node: _evaluate(_n, a, call_op), *args)
        except Exception as err:  # noqa: BLE001 - re-raised with the node's context
            shapes_text = ", ".join(
                f"{name}={tuple(a.shape)}" for name, a in zip(node.input_names(), args)
            )
            raise GraphShapeError(
                f"{node.op.name} node {node.name!r} failed on inputs {shapes_text}: {err}"
            ) from err
        out[node.uid] = list(result)
        from .symbol_json import check_tensor_size  # noqa: PLC0415 - it imports this module

        for what, struct in [*zip(node.input_names(), args), *enumerate(out[node.uid])]:
            check_tensor_size(struct.shape, f"{node.op.name} node {node.name!r}: "
                              f"{'output' if isinstance(what, int) else 'input'} {what}",
                              GraphShapeError)
    return out


def _evaluate(node: Node, args, call_op):
    if call_op is not None:
        outs, _ = call_op(node, args)
        return tuple(outs)
    outs, _ = call_node(node, args, key=jax.random.key(0), training=False)
    return tuple(outs)


def call_op(op: OpDef, attrs: dict[str, Any], args: Sequence[Any], key: Any, training: bool):
    """Run one op on arrays: ``(outputs as a tuple, batch statistics)``.

    The batch statistics are ``None`` unless the op has aux inputs and this call
    updates them (see :mod:`lowering.registry`); ``OpDef.commit_aux`` turns them
    into new aux values.
    """
    kwargs = dict(attrs)
    if op.needs_rng:
        kwargs["key"] = key
    if op.needs_training:
        kwargs["training"] = training
    result = op.impl(*args, **kwargs)
    batch_stats = None
    if op.aux and any(n in op.aux for n in op.input_names(attrs)):
        result, batch_stats = result
        batch_stats = None if batch_stats is None else tuple(batch_stats)
    outs = result if isinstance(result, tuple) else (result,)
    return outs, batch_stats


def call_node(node: Node, args: Sequence[Any], key: Any, training: bool):
    """Run one op node: ``(outputs as a tuple, batch statistics or None)``."""
    return call_op(node.op, node.attrs, args, key, training)
