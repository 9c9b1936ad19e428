"""gluon.SymbolBlock: blocks built from Symbols and models reloaded from export files."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon
from hybrid.base import MXNetError
from hybrid.gluon import nn
from lowering import serialization
from tests import golden_cases


def _mlp() -> nn.HybridSequential:
    net = nn.HybridSequential(prefix="mlp_")
    with net.name_scope():
        net.add(nn.Dense(8, activation="relu"), nn.Dropout(0.5), nn.Dense(3))
    net.initialize(mx.init.Xavier())
    return net


def _data(*shape: int, seed: int = 0) -> mx.nd.NDArray:
    return mx.nd.array(np.random.RandomState(seed).randn(*shape).astype(np.float32))


def _exported_mlp(tmp_path):
    net = _mlp()
    net.hybridize()
    x = _data(4, 5)
    expected = net(x).asnumpy()
    sym_file, params_file = net.export(str(tmp_path / "mlp"))
    return net, x, expected, sym_file, params_file


@pytest.mark.parametrize("hybridize", [False, True])
def test_exported_model_with_dropout_reloads_and_predicts_identically(tmp_path, hybridize):
    _, x, expected, sym_file, params_file = _exported_mlp(tmp_path)
    block = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    if hybridize:
        block.hybridize()
    np.testing.assert_allclose(block(x).asnumpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(block(_data(2, 5, seed=1)).asnumpy(),
                               _mlp_like(block, _data(2, 5, seed=1)), rtol=1e-5, atol=1e-6)


def _mlp_like(block, x):
    """The same MLP computed by hand from the block's parameters (predict mode)."""
    p = {k: v.data().asnumpy() for k, v in block.collect_params().items()}
    h = np.maximum(x.asnumpy() @ p["mlp_dense0_weight"].T + p["mlp_dense0_bias"], 0)
    return h @ p["mlp_dense1_weight"].T + p["mlp_dense1_bias"]


def test_parameters_are_named_exactly_as_the_variables(tmp_path):
    _, _, _, sym_file, params_file = _exported_mlp(tmp_path)
    block = gluon.SymbolBlock.imports(sym_file, "data", params_file)
    assert list(block.collect_params().keys()) == [
        "mlp_dense0_weight", "mlp_dense0_bias", "mlp_dense1_weight", "mlp_dense1_bias"]
    assert block.prefix == ""
    assert all(p.grad_req == "write" for p in block.collect_params().values())


def test_declared_shapes_are_used_and_unknown_ones_inferred_on_first_call():
    data = mx.sym.var("data")
    w = mx.sym.var("w", shape=(4, 3))
    v = mx.sym.var("v")
    out = mx.sym.FullyConnected(mx.sym.FullyConnected(data, w, no_bias=True, num_hidden=4),
                                v, no_bias=True, num_hidden=2)
    block = gluon.SymbolBlock(out, data)
    params = block.collect_params()
    assert params["w"].shape == (4, 3)
    assert params["v"].shape is None
    block.initialize()
    y = block(_data(5, 3))
    assert y.shape == (5, 2)
    assert params["v"].shape == (2, 4)


@pytest.mark.parametrize("hybridize", [False, True])
def test_multiple_inputs_and_outputs(hybridize):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    fc = mx.sym.FullyConnected(a, num_hidden=3, name="fc")
    outs = [mx.sym.broadcast_add(fc, b), mx.sym.relu(fc)]
    block = gluon.SymbolBlock(outs, [a, b])
    block.initialize(mx.init.Normal(1.0))
    if hybridize:
        block.hybridize()
    x, y = _data(2, 4), _data(2, 3, seed=1)
    out0, out1 = block(x, y)
    w = block.collect_params()["fc_weight"].data().asnumpy()
    bias = block.collect_params()["fc_bias"].data().asnumpy()
    ref = x.asnumpy() @ w.T + bias
    np.testing.assert_allclose(out0.asnumpy(), ref + y.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out1.asnumpy(), np.maximum(ref, 0), rtol=1e-5, atol=1e-6)
    grouped = gluon.SymbolBlock(mx.sym.Group(outs), [a, b], params=block.collect_params())
    assert len(grouped(x, y)) == 2


def test_feature_extraction_shares_parameters_with_the_source_network():
    net = _mlp()
    internals = net(mx.sym.var("data")).get_internals()
    feature = internals["mlp_dense0_relu_fwd_output"]
    block = gluon.SymbolBlock(feature, mx.sym.var("data"), params=net.collect_params())
    assert block.collect_params()["mlp_dense0_weight"] is net.collect_params()[
        "mlp_dense0_weight"]
    x = _data(3, 5)
    expected = net[0](x).asnumpy()
    np.testing.assert_allclose(block(x).asnumpy(), expected, rtol=1e-6)
    block.hybridize()
    np.testing.assert_allclose(block(x).asnumpy(), expected, rtol=1e-6)


def test_gradients_agree_eagerly_and_hybridized(tmp_path):
    _, x, _, sym_file, params_file = _exported_mlp(tmp_path)
    grads = []
    for hybridize in (False, True):
        block = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
        if hybridize:
            block.hybridize()
        x.attach_grad()
        with autograd.record(train_mode=False):
            loss = (block(x) ** 2).sum()
        loss.backward()
        grads.append([x.grad.asnumpy()] + [p.grad().asnumpy()
                                           for p in block.collect_params().values()])
    for eager, compiled in zip(*grads):
        np.testing.assert_allclose(eager, compiled, rtol=1e-5, atol=1e-6)


def test_symbol_block_is_usable_inside_a_hybridized_network(tmp_path):
    _, x, expected, sym_file, params_file = _exported_mlp(tmp_path)
    inner = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    outer = nn.HybridSequential()
    outer.add(inner, nn.Activation("tanh"))
    outer.hybridize()
    np.testing.assert_allclose(outer(x).asnumpy(), np.tanh(expected), rtol=1e-5, atol=1e-6)
    sym_file2, params_file2 = outer.export(str(tmp_path / "outer"))
    again = gluon.SymbolBlock.imports(sym_file2, ["data"], params_file2)
    np.testing.assert_allclose(again(x).asnumpy(), np.tanh(expected), rtol=1e-5, atol=1e-6)


def test_missing_extra_and_mismatched_parameters_are_named_with_the_file(tmp_path):
    _, x, _, sym_file, params_file = _exported_mlp(tmp_path)
    arrays = serialization.load(params_file)
    missing = dict(arrays)
    del missing["arg:mlp_dense1_bias"]
    serialization.save(tmp_path / "missing.params", missing)
    with pytest.raises(MXNetError, match=r"mlp_dense1_bias.*missing.*missing\.params"):
        gluon.SymbolBlock.imports(sym_file, ["data"], str(tmp_path / "missing.params"))
    block = gluon.SymbolBlock.imports(sym_file, ["data"], str(tmp_path / "missing.params"),
                                      allow_missing=True)
    assert block.collect_params()["mlp_dense1_bias"]._var_nd is None

    extra = dict(arrays, **{"arg:stray": np.zeros(2, np.float32)})
    serialization.save(tmp_path / "extra.params", extra)
    with pytest.raises(MXNetError, match=r"stray.*extra\.params"):
        gluon.SymbolBlock.imports(sym_file, ["data"], str(tmp_path / "extra.params"))
    block = gluon.SymbolBlock.imports(sym_file, ["data"], str(tmp_path / "extra.params"),
                                      ignore_extra=True)
    assert block(x).shape == (4, 3)

    bad = dict(arrays, **{"arg:mlp_dense1_bias": np.zeros(7, np.float32)})
    serialization.save(tmp_path / "bad.params", bad)
    with pytest.raises(MXNetError, match=r"mlp_dense1_bias.*bad\.params.*\(7,\).*\(3,\)"):
        gluon.SymbolBlock.imports(sym_file, ["data"], str(tmp_path / "bad.params"))


def test_unknown_input_name_and_wrong_input_count_are_refused(tmp_path):
    _, x, _, sym_file, params_file = _exported_mlp(tmp_path)
    with pytest.raises(MXNetError, match=r"\['image'\].*mlp-symbol\.json"):
        gluon.SymbolBlock.imports(sym_file, ["image"], params_file)
    block = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    with pytest.raises(MXNetError, match=r"takes 1 input"):
        block(x, x)
    with pytest.raises(MXNetError, match="must be Symbol variables"):
        gluon.SymbolBlock(mx.sym.relu(mx.sym.var("a")), mx.sym.relu(mx.sym.var("a")))


def test_imports_without_params_needs_initialize(tmp_path):
    _, x, _, sym_file, _ = _exported_mlp(tmp_path)
    block = gluon.SymbolBlock.imports(sym_file, ["data"])
    with pytest.raises(RuntimeError, match="not been initialized"):
        block(x)
    block.initialize()
    assert block(x).shape == (4, 3)


def test_reload_keeps_the_dtype_saved_in_the_file(tmp_path):
    net = _mlp()
    net.cast("float64")
    net.hybridize()
    x = mx.nd.array(np.random.RandomState(0).randn(2, 5), dtype="float64")
    expected = net(x).asnumpy()
    sym_file, params_file = net.export(str(tmp_path / "f64"))
    block = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    assert all(np.dtype(p.dtype) == np.float64 for p in block.collect_params().values())
    np.testing.assert_allclose(block(x).asnumpy(), expected, rtol=1e-12)


# ------------------------------------------------------------------ MXNet's own models

@pytest.mark.parametrize("name", ["lenet_bn_dropout", "mobilenet0_25"])
def test_mxnet_exported_cnn_reloads_and_predicts_like_mxnet(name):
    case = golden_cases.case(name)
    arrays = golden_cases.arrays(name)
    sym_file = golden_cases.file_path(case["call"]["symbol_file"])
    params_file = golden_cases.file_path(case["call"]["params_file"])
    with open(sym_file, encoding="utf-8") as f:
        assert mx.sym.load(str(sym_file)).tojson() == f.read()
    block = gluon.SymbolBlock.imports(str(sym_file), case["call"]["input_names"],
                                      str(params_file))
    aux = [p for p in block.collect_params().values() if "running" in p.name]
    assert aux and all(p.grad_req == "null" for p in aux)
    x = mx.nd.array(arrays["data"])
    for hybridize in (False, True):
        block.hybridize(hybridize)
        np.testing.assert_allclose(block(x).asnumpy(), arrays["out"], rtol=case["rtol"],
                                   atol=case["atol"])


def test_mxnet_model_running_statistics_update_in_backward_eagerly_and_hybridized():
    case = golden_cases.case("lenet_bn_dropout")
    x = mx.nd.array(golden_cases.arrays("lenet_bn_dropout")["data"])
    results = []
    for hybridize in (False, True):
        block = gluon.SymbolBlock.imports(
            str(golden_cases.file_path(case["call"]["symbol_file"])), ["data"],
            str(golden_cases.file_path(case["call"]["params_file"])))
        block.hybridize(hybridize)
        mean = block.collect_params()["lenet_batchnorm0_running_mean"]
        before = mean.data().asnumpy().copy()
        with autograd.record():
            y = block(x)
        np.testing.assert_array_equal(before, mean.data().asnumpy())  # MXNet: not in forward
        y.backward()
        assert not np.allclose(before, mean.data().asnumpy())
        results.append(mean.data().asnumpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_exported_json_counts_dropout_mask_as_a_hidden_output_like_mxnet(tmp_path):
    import json

    _, _, _, sym_file, _ = _exported_mlp(tmp_path)
    with open(sym_file, encoding="utf-8") as f:
        doc = json.load(f)
    rows = {n["op"]: doc["node_row_ptr"][i + 1] - doc["node_row_ptr"][i]
            for i, n in enumerate(doc["nodes"])}
    assert rows["Dropout"] == 2 and rows["FullyConnected"] == 1
    with open(sym_file, encoding="utf-8") as f:
        assert mx.sym.load(sym_file).tojson() == f.read()
