"""Symbol JSON: MXNet's layout, exact round trips, traced graphs reloading to the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import gluon, nd
from lowering import graph, lower, symbol_json


def _traced_mlp():
    net = gluon.nn.HybridSequential(prefix="mlp_")
    with net.name_scope():
        net.add(gluon.nn.Dense(6, activation="tanh"), gluon.nn.Dropout(0.3),
                gluon.nn.Dense(2))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = nd.array(np.random.RandomState(0).rand(3, 4))
    net(x)
    return net, x


def test_json_layout_matches_mxnet_conventions() -> None:
    data = mx.sym.Variable("data")
    fc = mx.sym.FullyConnected(data, num_hidden=4, name="fc")
    act = mx.sym.Activation(fc, act_type="relu", name="relu")
    text = act.tojson()
    assert text.startswith('{\n  "nodes": [\n    {\n      "op": "null", \n      "name": "data"')
    assert '"attrs": {"act_type": "relu"}' in text
    assert '"heads": [[4, 0, 0]]' in text
    assert text.endswith('"attrs": {"mxnet_version": ["int", 10901]}\n}')


def test_traced_graph_round_trips_byte_for_byte() -> None:
    net, _ = _traced_mlp()
    text = symbol_json.to_json(net._cache.graph.heads)
    assert symbol_json.to_json(symbol_json.from_json(text)) == text


def test_reloaded_json_lowers_to_the_same_numbers() -> None:
    net, x = _traced_mlp()
    heads = net._cache.graph.heads
    reloaded = symbol_json.from_json(symbol_json.to_json(heads))
    params = {p.name: p.data()._data for p in net.collect_params().values()}
    key = __import__("jax").random.key(0)
    original = lower.lower(heads, ["data"])(params, {}, (x._data,), key, False)[0][0]
    again = lower.lower(reloaded, ["data"])(params, {}, (x._data,), key, False)[0][0]
    np.testing.assert_array_equal(np.asarray(original), np.asarray(again))
    np.testing.assert_allclose(np.asarray(original), net(x).asnumpy(), rtol=1e-6)


def test_symbol_api_lists_and_infers() -> None:
    data = mx.sym.Variable("data")
    out = mx.sym.FullyConnected(data, num_hidden=3, name="fc1")
    assert out.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert out.list_outputs() == ["fc1_output"]
    args, outs, aux = out.infer_shape(data=(5, 7))
    assert args == [(5, 7), (3, 7), (3,)] and outs == [(5, 3)] and aux == []
    group = mx.sym.Group([out, data])
    assert len(group.list_outputs()) == 2
    again = mx.sym.load_json(group.tojson())
    assert again.list_outputs() == group.list_outputs()


def test_shape_inference_error_names_node_op_and_shapes() -> None:
    a = mx.sym.Variable("a")
    b = mx.sym.Variable("b")
    with pytest.raises(mx.MXNetError) as err:
        (a + b).infer_shape(a=(2, 3), b=(3, 2))
    text = str(err.value)
    assert "elemwise_add" in text and "(2, 3)" in text and "(3, 2)" in text


def test_corrupt_json_is_refused_with_position() -> None:
    with pytest.raises(mx.MXNetError, match="node 1"):
        mx.sym.load_json('{"nodes": [{"op": "null", "name": "x", "inputs": []}, '
                         '{"op": "NoSuchOp", "name": "y", "inputs": [[0, 0, 0]]}], '
                         '"heads": [[1, 0, 0]]}')
    with pytest.raises(mx.MXNetError, match="not valid JSON"):
        mx.sym.load_json("{")


def test_topological_order_is_dfs_post_order() -> None:
    x = graph.variable("x")
    assert graph.topo_order([graph.Entry(x, 0)]) == [x]


def test_traced_cnn_json_counts_hidden_outputs_as_mxnet() -> None:
    net = gluon.nn.HybridSequential(prefix="cnn_")
    with net.name_scope():
        net.add(gluon.nn.Conv2D(2, 3), gluon.nn.BatchNorm(), gluon.nn.MaxPool2D(),
                gluon.nn.Dropout(0.5), gluon.nn.Dense(3))
    net.initialize()
    net.hybridize()
    net(nd.ones((1, 1, 6, 6)))
    doc = __import__("json").loads(symbol_json.to_json(net._cache.graph.heads))
    rows = {n["op"]: b - a for n, a, b in zip(doc["nodes"], doc["node_row_ptr"],
                                             doc["node_row_ptr"][1:])}
    assert rows["BatchNorm"] == 3 and rows["Pooling"] == 2 and rows["Dropout"] == 2
    assert rows["Convolution"] == 1 and rows["FullyConnected"] == 1
