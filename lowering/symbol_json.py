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
from .graph import Entry, Node, topo_order, variable

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
    """The heads of the graph in a symbol JSON document (MXNet's or ours)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise SymbolJSONError(f"not valid JSON: {err}") from None
    if not isinstance(doc, dict) or "nodes" not in doc or "heads" not in doc:
        raise SymbolJSONError("a symbol JSON document needs 'nodes' and 'heads'")
    nodes: list[Node] = []
    for i, spec in enumerate(doc["nodes"]):
        try:
            nodes.append(_read_node(i, spec, nodes))
        except (registry.OpError, ValueError, KeyError, TypeError, IndexError) as err:
            raise SymbolJSONError(
                f"node {i} ({spec.get('name', '?') if isinstance(spec, dict) else spec!r}): {err}"
            ) from None
    _keep_row_counts(nodes, doc.get("node_row_ptr"))
    heads = []
    for h in doc["heads"]:
        if not 0 <= h[0] < len(nodes) or not 0 <= h[1] < nodes[h[0]].num_outputs:
            raise SymbolJSONError(f"head {h} refers to a missing node output")
        heads.append(Entry(nodes[h[0]], h[1]))
    return heads


def _keep_row_counts(nodes: list[Node], row_ptr: Any) -> None:
    """Remember each op node's row count from ``node_row_ptr`` when it differs from ours
    (ops with hidden outputs), so the file is written back unchanged."""
    if not isinstance(row_ptr, list) or len(row_ptr) != len(nodes) + 1:
        return
    for node, start, stop in zip(nodes, row_ptr, row_ptr[1:]):
        if isinstance(start, int) and isinstance(stop, int) and node.op is not None \
                and stop - start >= node.num_outputs and stop - start != node.json_output_count():
            node.json_outputs = stop - start


def _read_node(i: int, spec: dict[str, Any], nodes: list[Node]) -> Node:
    attrs = dict(spec.get("attrs", spec.get("attr", spec.get("param", {}))) or {})
    inputs = []
    versions = []
    for ref in spec.get("inputs", []):
        nid, idx = ref[0], ref[1]
        if not 0 <= nid < i:
            raise ValueError(f"input {ref} refers to node {nid}, not an earlier node")
        if not 0 <= idx < nodes[nid].num_outputs:
            raise ValueError(f"input {ref}: node {nid} has {nodes[nid].num_outputs} outputs")
        inputs.append(Entry(nodes[nid], idx))
        versions.append(ref[2] if len(ref) > 2 else 0)
    if spec["op"] == "null":
        node = variable(spec["name"])
        node.annotations = {k: str(v) for k, v in attrs.items()}
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
    expected = op.input_names(parsed)
    if len(inputs) != len(expected):
        raise ValueError(f"operator {op.name} takes inputs {expected}, file gives {len(inputs)}")
    node = Node(
        op=op,
        name=spec["name"],
        attrs=parsed,
        inputs=inputs,
        annotations={k: str(v) for k, v in attrs.items() if k.startswith("__")},
        given_attrs=given,
        versions=tuple(versions),
        attr_text={k: str(known[k]) for k in given},
    )
    return node
