"""MXNet's symbol JSON (``-symbol.json``), read and written byte for byte.

The layout is nnvm's ``SaveJSON`` written by dmlc's JSON writer: objects
spread over several lines when they hold more than one item (nodes always),
arrays when they hold more than ten items or non-scalar items, two spaces of
indentation per level, ``", "`` between items. ``from_json(to_json(g))`` gives
the same graph and ``to_json(from_json(text)) == text`` for MXNet's own files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from . import registry
from .graph import Entry, Node, call_node, topo_order, variable

MXNET_VERSION = 10901


class SymbolJSONError(ValueError):
    """A symbol JSON document that cannot be read (the message says where)."""


# ---------------------------------------------------------------------------
# a minimal dmlc-style writer


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.scopes: list[list] = []  # [multi_line, count]

    def _sep(self) -> None:
        if not self.scopes or self.scopes[-1][0]:
            self.parts.append("\n" + " " * (2 * len(self.scopes)))

    def begin(self, bracket: str, multi_line: bool) -> None:
        self.parts.append(bracket)
        self.scopes.append([multi_line, 0])

    def end(self, bracket: str) -> None:
        multi_line, count = self.scopes.pop()
        if multi_line and count:
            self.parts.append("\n" + " " * (2 * len(self.scopes)))
        self.parts.append(bracket)

    def key(self, name: str) -> None:
        scope = self.scopes[-1]
        if scope[1]:
            self.parts.append(", ")
        self._sep()
        self.parts.append(json.dumps(name) + ": ")
        scope[1] += 1

    def item(self) -> None:
        scope = self.scopes[-1]
        if scope[1]:
            self.parts.append(", ")
        scope[1] += 1
        self._sep()

    def string(self, s: str) -> None:
        self.parts.append(_quote(s))

    def raw(self, text: str) -> None:
        self.parts.append(text)


def _quote(s: str) -> str:
    escaped = (s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return '"' + escaped + '"'


def _write_str_map(w: _Writer, mapping: dict[str, str]) -> None:
    w.begin("{", len(mapping) > 1)
    for k in sorted(mapping):
        w.key(k)
        w.string(mapping[k])
    w.end("}")


def _write_entries(w: _Writer, entries: Sequence[tuple[int, int, int]]) -> None:
    w.begin("[", len(entries) > 10)
    for nid, idx, ver in entries:
        w.item()
        w.raw(f"[{nid}, {idx}, {ver}]")
    w.end("]")


def _write_ints(w: _Writer, values: Sequence[int]) -> None:
    w.begin("[", len(values) > 10)
    for v in values:
        w.item()
        w.raw(str(v))
    w.end("]")


def node_attr_strings(node: Node) -> dict[str, str]:
    """The ``attrs`` object MXNet writes for ``node``: given op attrs plus annotations."""
    out = dict(node.annotations)
    if node.op is not None and node.attr_text is not None:
        out.update(node.attr_text)
    elif node.op is not None:
        out.update(node.op.format_attrs({k: node.attrs[k] for k in node.given_attrs}))
    return out


def to_json(heads: Sequence[Entry]) -> str:
    """The symbol JSON of the graph with these heads, exactly as MXNet 1.9 writes it."""
    order = topo_order(heads)
    index = {n.uid: i for i, n in enumerate(order)}
    w = _Writer()
    w.begin("{", True)
    w.key("nodes")
    w.begin("[", True)
    for node in order:
        w.item()
        w.begin("{", True)
        w.key("op")
        w.string("null" if node.op is None else node.op.name)
        w.key("name")
        w.string(node.name)
        attrs = node_attr_strings(node)
        if attrs:
            w.key("attrs")
            _write_str_map(w, attrs)
        w.key("inputs")
        versions = node.versions or _default_versions(node)
        _write_entries(
            w, [(index[e.node.uid], e.index, v) for e, v in zip(node.inputs, versions)]
        )
        w.end("}")
    w.end("]")
    w.key("arg_nodes")
    _write_ints(w, [i for i, n in enumerate(order) if n.is_variable])
    w.key("node_row_ptr")
    ptr = [0]
    for n in order:
        ptr.append(ptr[-1] + n.json_output_count())
    _write_ints(w, ptr)
    w.key("heads")
    _write_entries(w, [(index[h.node.uid], h.index, 0) for h in heads])
    w.key("attrs")
    w.begin("{", False)
    w.key("mxnet_version")
    w.raw(f'["int", {MXNET_VERSION}]')
    w.end("}")
    w.end("}")
    return "".join(w.parts)


def _default_versions(node: Node) -> list[int]:
    # nnvm bumps a variable's version when an op mutates it; MXNet's files show
    # version 2 on the auxiliary-state inputs of BatchNorm-like ops.
    if node.op is None:
        return []
    names = node.input_names()
    return [2 if name in node.op.aux and e.node.is_variable else 0
            for name, e in zip(names, node.inputs)]


def from_json(text: str) -> list[Entry]:
    """The heads of the graph in a symbol JSON document (MXNet's or ours).

    The whole document is checked before any node is built: its structure
    (keys, types, input references to earlier nodes only, so no cycles), the
    limits ``MAX_NODES`` and ``MAX_NODE_INPUTS``, and every size it states
    (``__shape__`` annotations, ``shape`` attributes, the outputs of ops without
    inputs such as ``_zeros`` or ``_arange``) against ``MAX_TENSOR_ELEMENTS``.
    Anything wrong raises ``SymbolJSONError`` naming the node.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise SymbolJSONError(f"not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise SymbolJSONError(f"a symbol JSON document is an object, got {type(doc).__name__}")
    for key in ("nodes", "heads"):
        if key not in doc:
            raise SymbolJSONError(f"a symbol JSON document needs 'nodes' and 'heads'; "
                                  f"'{key}' is missing")
        if not isinstance(doc[key], list):
            raise SymbolJSONError(f"'{key}' must be a list, got {type(doc[key]).__name__}")
    specs = doc["nodes"]
    if len(specs) > MAX_NODES:
        raise SymbolJSONError(f"the document has {len(specs)} nodes, more than the limit of "
                              f"{MAX_NODES} (MAX_NODES)")
    if not specs:
        raise SymbolJSONError("the document has no nodes")
    nodes: list[Node] = []
    for i, spec in enumerate(specs):
        label = f"node {i} ({spec.get('name', '?')!r})" if isinstance(spec, dict) \
            else f"node {i}"
        try:
            nodes.append(_read_node(i, spec, nodes))
        except (registry.OpError, ValueError, KeyError, TypeError, IndexError) as err:
            raise SymbolJSONError(f"{label}: {err}") from None
    _check_arg_nodes(doc.get("arg_nodes"), nodes)
    _keep_row_counts(nodes, doc.get("node_row_ptr"))
    if "attrs" in doc and not isinstance(doc["attrs"], dict):
        raise SymbolJSONError(f"'attrs' must be an object, got {type(doc['attrs']).__name__}")
    if not doc["heads"]:
        raise SymbolJSONError("'heads' is empty: the document names no output")
    heads = []
    for h in doc["heads"]:
        try:
            nid, idx, _ = _entry_ref(h, "head")
        except ValueError as err:
            raise SymbolJSONError(str(err)) from None
        if not 0 <= nid < len(nodes) or not 0 <= idx < nodes[nid].num_outputs:
            raise SymbolJSONError(f"head {h} refers to a missing node output")
        heads.append(Entry(nodes[nid], idx))
    return heads


# ---------------------------------------------------------------------------
# validation of untrusted documents

MAX_NODES = 50_000
"""Most nodes a document may have (ResNet-152 has ~1,000, BERT-large ~3,000)."""
MAX_NODE_INPUTS = 16_384
"""Most inputs one node may have (concat/add_n over thousands of steps still fit)."""
MAX_TENSOR_ELEMENTS = 2**31 - 2
"""Most elements one array may have: MXNet 1.9 (built without USE_INT64_TENSOR_SIZE,
as its releases are) refuses shapes of 2**31 - 1 elements or more."""
MAX_NDIM = 32
"""Most dimensions a declared shape may have."""


def check_tensor_size(shape: Sequence[int], what: str,
                      error: type[Exception] = SymbolJSONError) -> None:
    """Raise ``error`` if ``shape`` has more than ``MAX_TENSOR_ELEMENTS`` elements
    (unknown dims, 0 or -1, count as 1). ``what`` names the array."""
    count = 1
    for dim in shape:
        if dim > 1:
            count *= dim
    if count > MAX_TENSOR_ELEMENTS:
        raise error(
            f"{what} has shape {tuple(shape)}: {count} elements, more than the "
            f"{MAX_TENSOR_ELEMENTS} (2^31 - 2) an array may have (MXNet 1.9 refuses tensors "
            "larger than 2^31 elements)")


def _entry_ref(ref: Any, what: str) -> tuple[int, int, int]:
    """``(node, output, version)`` of one ``[nid, index(, version)]`` reference."""
    if not isinstance(ref, list) or len(ref) not in (2, 3) \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in ref):
        raise ValueError(f"{what} {ref!r} is not a [node, output, version] list of integers")
    return ref[0], ref[1], ref[2] if len(ref) > 2 else 0


def _check_arg_nodes(arg_nodes: Any, nodes: list[Node]) -> None:
    if arg_nodes is None:
        return
    if not isinstance(arg_nodes, list):
        raise SymbolJSONError(f"'arg_nodes' must be a list, got {type(arg_nodes).__name__}")
    for nid in arg_nodes:
        if not isinstance(nid, int) or isinstance(nid, bool) or not 0 <= nid < len(nodes):
            raise SymbolJSONError(f"'arg_nodes' entry {nid!r} is not a node index "
                                  f"(0..{len(nodes) - 1})")
        if not nodes[nid].is_variable:
            raise SymbolJSONError(f"'arg_nodes' entry {nid} is {nodes[nid].op.name} node "
                                  f"{nodes[nid].name!r}, not a variable")


def _check_declared_shape(attrs: dict[str, str]) -> None:
    text = attrs.get("__shape__")
    if text is None:
        return
    from .attrs import SHAPE, AttrError

    try:
        shape = SHAPE.parse(text)
    except (AttrError, ValueError, TypeError) as err:
        raise ValueError(f"__shape__={text!r} is not a shape ({err})") from None
    if len(shape) > MAX_NDIM:
        raise ValueError(f"__shape__={text!r} has {len(shape)} dimensions, more than "
                         f"{MAX_NDIM} (MAX_NDIM)")
    if any(d < -1 for d in shape):
        raise ValueError(f"__shape__={text!r} has a dimension below -1")
    check_tensor_size(shape, "__shape__")


def _check_source_output(node: Node) -> None:
    """The outputs of an op without inputs (``_zeros``, ``_arange``...) must fit."""
    import jax

    try:
        outs = jax.eval_shape(
            lambda: call_node(node, (), key=jax.random.key(0), training=False)[0])
    except Exception:  # noqa: BLE001 - not a size problem; reported when the graph runs
        return
    for k, out in enumerate(outs):
        check_tensor_size(out.shape, f"output {k}")


# ---------------------------------------------------------------------------


def _keep_row_counts(nodes: list[Node], row_ptr: Any) -> None:
    """Remember each op node's row count from ``node_row_ptr`` when it differs from ours
    (ops with hidden outputs), so the file is written back unchanged."""
    if row_ptr is None:
        return
    if not isinstance(row_ptr, list) or len(row_ptr) != len(nodes) + 1 \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in row_ptr) \
            or row_ptr[0] != 0 or any(b < a for a, b in zip(row_ptr, row_ptr[1:])):
        raise SymbolJSONError(
            f"'node_row_ptr' must be {len(nodes) + 1} non-decreasing integers starting at 0 "
            f"(one more than the {len(nodes)} nodes)")
    for node, start, stop in zip(nodes, row_ptr, row_ptr[1:]):
        if node.op is not None and stop - start >= node.num_outputs \
                and stop - start != node.json_output_count():
            node.json_outputs = stop - start


def _read_node(i: int, spec: Any, nodes: list[Node]) -> Node:
    if not isinstance(spec, dict):
        raise TypeError(f"a node is an object, got {type(spec).__name__}")
    for key in ("op", "name"):
        if key not in spec:
            raise KeyError(f"the node has no '{key}'")
        if not isinstance(spec[key], str):
            raise TypeError(f"'{key}' must be a string, got {spec[key]!r}")
    raw_attrs = spec.get("attrs", spec.get("attr", spec.get("param", {})))
    if raw_attrs is None:
        raw_attrs = {}
    if not isinstance(raw_attrs, dict):
        raise TypeError(f"'attrs' must be an object of strings, got {type(raw_attrs).__name__}")
    bad = sorted(k for k, v in raw_attrs.items() if not isinstance(v, str))
    if bad:
        raise TypeError(f"attribute values must be strings, as MXNet writes them; {bad} are not")
    attrs = dict(raw_attrs)
    refs = spec.get("inputs", [])
    if not isinstance(refs, list):
        raise TypeError(f"'inputs' must be a list, got {type(refs).__name__}")
    if len(refs) > MAX_NODE_INPUTS:
        raise ValueError(f"the node has {len(refs)} inputs, more than the limit of "
                         f"{MAX_NODE_INPUTS} (MAX_NODE_INPUTS)")
    _check_declared_shape(attrs)
    inputs = []
    versions = []
    for ref in refs:
        nid, idx, ver = _entry_ref(ref, "input")
        if not 0 <= nid < i:
            raise ValueError(f"input {ref} refers to node {nid}, not an earlier node (nodes "
                             "must be in topological order; a cycle cannot be)")
        if not 0 <= idx < nodes[nid].num_outputs:
            raise ValueError(f"input {ref}: node {nid} has {nodes[nid].num_outputs} outputs")
        inputs.append(Entry(nodes[nid], idx))
        versions.append(ver)
    if spec["op"] == "null":
        if inputs:
            raise ValueError(f"variable {spec['name']!r} cannot have inputs")
        node = variable(spec["name"])
        node.annotations = attrs
        return node
    op = registry.get(spec["op"])
    op_attrs = {k: v for k, v in attrs.items() if not k.startswith("__")}
    known = {k: v for k, v in op_attrs.items() if k in op.attrs}
    unknown = sorted(set(op_attrs) - set(known))
    if unknown:
        raise ValueError(f"operator {op.name} has no attributes {unknown}")
    given = tuple(sorted(known))
    if op.variadic and "num_args" not in known:
        known["num_args"] = len(inputs)
    parsed = op.parse_attrs(known)
    if "shape" in parsed and isinstance(parsed["shape"], tuple):
        check_tensor_size(parsed["shape"], f"operator {op.name}: attribute shape")
    expected = op.input_names(parsed)
    if len(inputs) != len(expected):
        raise ValueError(f"operator {op.name} takes inputs {expected}, file gives {len(inputs)}")
    node = Node(
        op=op,
        name=spec["name"],
        attrs=parsed,
        inputs=inputs,
        annotations={k: v for k, v in attrs.items() if k.startswith("__")},
        given_attrs=given,
        versions=tuple(versions),
        attr_text={k: known[k] for k in given},
    )
    if not inputs:
        _check_source_output(node)
    return node
