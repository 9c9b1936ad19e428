"""Untrusted ``-symbol.json``: huge sizes and malformed documents are refused whole, fast."""

from __future__ import annotations

import copy
import json
import os
import time

import numpy as np
import pytest

import hybrid as mx
from hybrid import gluon
from lowering import symbol_json
from lowering.symbol_json import (
    MAX_NODE_INPUTS,
    MAX_NODES,
    MAX_TENSOR_ELEMENTS,
    SymbolJSONError,
)

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "golden", "files")
HUGE_SHAPES = [(100000, 100000, 100000), (2**31 - 1,), (65536, 32768), (2**20, 2**20, 1, 3)]


def _doc(*nodes: dict, heads=None) -> dict:
    nodes = [{"op": "null", "name": "data", "inputs": []}, *nodes]
    return {"nodes": nodes, "arg_nodes": [0],
            "node_row_ptr": list(range(len(nodes) + 1)),
            "heads": heads or [[len(nodes) - 1, 0, 0]],
            "attrs": {"mxnet_version": ["int", 10901]}}


def _relu(i: int) -> dict:
    return {"op": "Activation", "name": f"relu{i}", "attrs": {"act_type": "relu"},
            "inputs": [[i, 0, 0]]}


def _write(tmp_path, doc) -> str:
    path = tmp_path / "model-symbol.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


@pytest.mark.parametrize("shape", HUGE_SHAPES)
@pytest.mark.parametrize("op", ["_zeros", "_ones", "_random_uniform", "_random_normal",
                                "_full"])
def test_source_op_with_huge_shape_attr_is_refused_at_load(tmp_path, op, shape):
    attrs = {"shape": str(shape), **({"value": "1.5"} if op == "_full" else {})}
    node = {"op": op, "name": "big0", "attrs": attrs, "inputs": []}
    doc = _doc(node, {"op": "elemwise_add", "name": "add0", "inputs": [[0, 0, 0], [1, 0, 0]]})
    start = time.perf_counter()
    with pytest.raises(mx.MXNetError, match=r"node 1 \('big0'\).*more than the 2147483646"):
        gluon.SymbolBlock.imports(_write(tmp_path, doc), ["data"])
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("shape", HUGE_SHAPES)
def test_huge_declared_shape_of_a_variable_is_refused_at_load(tmp_path, shape):
    doc = _doc({"op": "null", "name": "w", "attrs": {"__shape__": str(shape)}, "inputs": []},
               {"op": "elemwise_add", "name": "add0", "inputs": [[0, 0, 0], [1, 0, 0]]})
    with pytest.raises(mx.MXNetError, match=r"node 1 \('w'\): __shape__ has shape"):
        gluon.SymbolBlock.imports(_write(tmp_path, doc), ["data"])


@pytest.mark.parametrize("attrs", [{"start": "0", "stop": "1e12"},
                                   {"start": "0", "stop": "3", "repeat": "1000000000"}])
def test_source_op_whose_output_is_huge_is_refused_at_load(attrs):
    doc = _doc({"op": "_arange", "name": "r0", "attrs": attrs, "inputs": []})
    with pytest.raises(SymbolJSONError, match=r"node 1 \('r0'\): output 0 has shape"):
        symbol_json.from_json(json.dumps(doc))


@pytest.mark.parametrize("shape", [(4, 5), (100000, 100000, 100000)])
def test_shape_attr_of_ops_with_inputs_is_checked_too(shape):
    doc = _doc({"op": "broadcast_to", "name": "b0", "attrs": {"shape": str(shape)},
                "inputs": [[0, 0, 0]]})
    if np.prod(shape) <= MAX_TENSOR_ELEMENTS:
        assert symbol_json.from_json(json.dumps(doc))[0].node.name == "b0"
    else:
        with pytest.raises(SymbolJSONError, match="node 1 .*attribute shape"):
            symbol_json.from_json(json.dumps(doc))


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("num_hidden", [10**12, 2**31])
def test_huge_inferred_parameter_is_refused_at_shape_inference(tmp_path, hybridize,
                                                               num_hidden):
    doc = _doc({"op": "null", "name": "fc0_weight", "inputs": []},
               {"op": "null", "name": "fc0_bias", "inputs": []},
               {"op": "FullyConnected", "name": "fc0", "attrs": {"num_hidden": str(num_hidden)},
                "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]})
    doc["arg_nodes"] = [0, 1, 2]
    block = gluon.SymbolBlock.imports(_write(tmp_path, doc), ["data"])
    block.initialize()
    if hybridize:
        block.hybridize()
    start = time.perf_counter()
    with pytest.raises(mx.MXNetError, match=r"FullyConnected node 'fc0'.*fc0_weight|"
                                            r"FullyConnected node 'fc0'.*input weight"):
        block(mx.nd.ones((2, 3)))
    assert time.perf_counter() - start < 5.0


def test_too_many_nodes_are_refused_fast():
    relu = '{"op": "Activation", "name": "r", "attrs": {"act_type": "relu"}, "inputs": [[0, 0, 0]]}'
    # one more node than the limit, counting 'data'
    text = ('{"nodes": [{"op": "null", "name": "data", "inputs": []}, '
            + ", ".join([relu] * MAX_NODES) + '], "heads": [[1, 0, 0]]}')
    start = time.perf_counter()
    with pytest.raises(SymbolJSONError, match=f"{MAX_NODES + 1} nodes.*MAX_NODES"):
        symbol_json.from_json(text)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("count", [MAX_NODE_INPUTS + 1, 100_000])
def test_a_node_with_too_many_inputs_is_refused(count):
    node = {"op": "add_n", "name": "sum0", "attrs": {"num_args": str(count)},
            "inputs": [[0, 0, 0]] * count}
    with pytest.raises(SymbolJSONError, match=f"node 1 .*{count} inputs.*MAX_NODE_INPUTS"):
        symbol_json.from_json(json.dumps(_doc(node)))


def test_limits_leave_room_for_real_models():
    assert MAX_NODES >= 20 * 1_000 and MAX_NODE_INPUTS >= 4096
    for name in sorted(os.listdir(GOLDEN)):
        if name.endswith("-symbol.json"):
            with open(os.path.join(GOLDEN, name)) as f:
                text = f.read()
            assert symbol_json.to_json(symbol_json.from_json(text)) == text


def _valid() -> dict:
    return _doc(_relu(0), _relu(1))


MALFORMED = {
    "not an object": ("[1, 2]", "is an object"),
    "no nodes": ({"heads": [[0, 0, 0]]}, "'nodes' is missing"),
    "no heads": ({"nodes": []}, "'heads' is missing"),
    "nodes not a list": ({"nodes": {}, "heads": []}, "'nodes' must be a list"),
    "empty nodes": ({"nodes": [], "heads": [[0, 0, 0]]}, "no nodes"),
    "node not an object": (("nodes", 1, 7), "node 1: a node is an object"),
    "node without op": (("nodes", 1, "op", None), "no 'op'"),
    "name not a string": (("nodes", 1, "name", 5), "'name' must be a string"),
    "inputs not a list": (("nodes", 1, "inputs", "0"), "'inputs' must be a list"),
    "short input ref": (("nodes", 1, "inputs", [[0]]), "not a \\[node, output"),
    "string in input ref": (("nodes", 1, "inputs", [["0", 0, 0]]), "list of integers"),
    "bool in input ref": (("nodes", 1, "inputs", [[True, 0, 0]]), "list of integers"),
    "input out of range": (("nodes", 1, "inputs", [[9, 0, 0]]), "not an earlier node"),
    "negative input": (("nodes", 1, "inputs", [[-1, 0, 0]]), "not an earlier node"),
    "self cycle": (("nodes", 2, "inputs", [[2, 0, 0]]), "a cycle"),
    "forward cycle": (("nodes", 1, "inputs", [[2, 0, 0]]), "a cycle"),
    "output index out of range": (("nodes", 2, "inputs", [[1, 1, 0]]), "has 1 outputs"),
    "attr value not a string": (("nodes", 1, "attrs", {"act_type": 1}), "must be strings"),
    "attrs not an object": (("nodes", 1, "attrs", ["relu"]), "'attrs' must be an object"),
    "unknown op": (("nodes", 1, "op", "NoSuchOp"), "node 1"),
    "variable with inputs": (("nodes", 0, "inputs", [[0, 0, 0]]), "node 0"),
    "bad declared shape": (("nodes", 0, "attrs", {"__shape__": "(2, x)"}), "not a shape"),
    "negative declared shape": (("nodes", 0, "attrs", {"__shape__": "(2, -3)"}), "below -1"),
    "too many dims": (("nodes", 0, "attrs", {"__shape__": str((1,) * 33)}), "MAX_NDIM"),
    "empty heads": (("heads", []), "'heads' is empty"),
    "head out of range": (("heads", [[7, 0, 0]]), "missing node output"),
    "head not a ref": (("heads", [7]), "head 7"),
    "arg_nodes not variables": (("arg_nodes", [1]), "not a variable"),
    "arg_nodes out of range": (("arg_nodes", [3]), "not a node index"),
    "row_ptr wrong length": (("node_row_ptr", [0, 1]), "node_row_ptr"),
    "row_ptr decreasing": (("node_row_ptr", [0, 2, 1, 3]), "node_row_ptr"),
    "top attrs not an object": (("attrs", 3), "'attrs' must be an object"),
    "truncated text": ('{"nodes": [', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_document_is_refused_whole(case):
    change, message = MALFORMED[case]
    if isinstance(change, tuple):
        doc = copy.deepcopy(_valid())
        *path, key, value = change
        target = doc
        for step in path:
            target = target[step]
        if value is None:
            del target[key]
        else:
            target[key] = value
        text = json.dumps(doc)
    else:
        text = change if isinstance(change, str) else json.dumps(change)
    with pytest.raises(SymbolJSONError, match=message):
        symbol_json.from_json(text)
    with pytest.raises(mx.MXNetError, match="cannot load symbol JSON"):
        mx.sym.load_json(text)


def test_valid_base_document_loads():
    heads = symbol_json.from_json(json.dumps(_valid()))
    assert [h.node.name for h in heads] == ["relu1"]
