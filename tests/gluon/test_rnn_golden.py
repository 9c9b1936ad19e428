"""``gluon.rnn`` layers and cells and the fused ``RNN`` op against MXNet 1.9.1.

Outputs, final states and gradients of the golden RNN layer and cell cases, eager
and hybridized; MXNet's legacy ``_unfused`` parameter file names; the exported
``lstm_lm`` model through ``SymbolBlock.imports``; float64 finite differences.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd
from tests.golden_cases import GOLDEN, arrays, case
from tests.numeric import central_difference

LAYER_CASES = ["rnn_relu", "rnn_tanh_bidir", "lstm_2layer_bidir", "lstm_ntc", "lstm_no_states",
               "gru_2layer", "gru_bidir"]
CELL_CASES = ["lstmcell_unroll", "grucell_unroll", "rnncell_unroll", "rnncell_relu_unroll"]


def _resolve(api: str):
    obj = mx
    for part in api.split("."):
        obj = getattr(obj, part)
    return obj


@functools.cache
def _run(name: str, hybridize: bool):
    spec, data = case(name), arrays(name)
    block = _resolve(spec["api"])(**spec["kwargs"])
    block.initialize()
    for pname, key in spec["params"].items():
        block._reg_params[pname].set_data(data[key])
    if hybridize:
        block.hybridize()
    inputs = {}
    for key in spec["inputs"]:
        x = mx.nd.array(data[key], dtype=data[key].dtype)
        if key in spec["grads"]:
            x.attach_grad()
        inputs[key] = x
    states = [inputs[k] for k in spec["inputs"][1:]]
    with autograd.record(train_mode=spec["mode"] == "train"):
        if "method" in spec.get("call", {}):
            call = spec["call"]
            out, new_states = block.unroll(call["length"], inputs["data"], begin_state=states,
                                           layout=call["layout"],
                                           merge_outputs=call["merge_outputs"])
        elif states:
            out, new_states = block(inputs["data"], states)
        else:
            out, new_states = block(inputs["data"]), []
    heads = [out] + list(new_states)
    head_grads = [mx.nd.array(data[spec["head_grads"][k]]) for k in spec["outputs"]]
    autograd.backward(heads, head_grads)
    results = {k: h.asnumpy() for k, h in zip(spec["outputs"], heads)}
    grads = {}
    for key, gkey in spec["grads"].items():
        if key in inputs:
            grads[gkey] = inputs[key].grad.asnumpy()
        else:
            grads[gkey] = block._reg_params[key].grad().asnumpy()
    return spec, data, results, grads


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", LAYER_CASES + CELL_CASES)
def test_rnn_matches_mxnet(name: str, hybridize: bool) -> None:
    spec, data, results, grads = _run(name, hybridize)
    tol = {"atol": spec["atol"], "rtol": spec["rtol"]}
    assert len(results) == len(spec["outputs"])
    for key, value in results.items():
        assert value.shape == data[key].shape, key
        np.testing.assert_allclose(value, data[key], err_msg=key, **tol)
    assert set(grads) == set(spec["grads"].values())
    for gkey, value in grads.items():
        np.testing.assert_allclose(value, data[gkey], err_msg=gkey, **tol)


def test_golden_case_list_is_complete() -> None:
    from tests.golden_cases import cases

    wanted = {c["name"] for c in cases("layer") if c["api"].startswith("gluon.rnn.")}
    assert wanted == set(LAYER_CASES + CELL_CASES)


# ---------------------------------------------------------------------------
# parameter files


class _LSTMLM(mx.gluon.HybridBlock):
    """The ``lstm_lm`` network: Embedding -> LSTM (TNC) -> Dense(flatten=False)."""

    def __init__(self, vocab: int, embed: int, hidden: int, num_layers: int, **kwargs) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.embedding = mx.gluon.nn.Embedding(vocab, embed)
            self.lstm = mx.gluon.rnn.LSTM(hidden, num_layers, input_size=embed)
            self.decoder = mx.gluon.nn.Dense(vocab, flatten=False, in_units=hidden)

    def hybrid_forward(self, F, x):
        return self.decoder(self.lstm(self.embedding(x)))


def _check_param_file(net, name: str, tmp_path) -> None:
    spec, data = case(name), arrays(name)
    net.initialize()
    net.load_parameters(str(GOLDEN / spec["files"][0]))
    structural = net._collect_params_with_prefix()
    assert sorted(structural) == sorted(spec["extra"]["structural_names"])
    for pname, key in spec["params"].items():
        np.testing.assert_array_equal(structural[pname].data().asnumpy(), data[key])
    out = tmp_path / "saved.params"
    net.save_parameters(str(out))
    saved = mx.nd.load(str(out))
    assert sorted(saved) == sorted(spec["params"])
    for pname, key in spec["params"].items():
        np.testing.assert_array_equal(saved[pname].asnumpy(), data[key])


def test_save_parameters_lstm_lm(tmp_path) -> None:
    kwargs = case("lstm_lm")["kwargs"]
    _check_param_file(_LSTMLM(**kwargs, prefix="lstmlm_"), "save_parameters_lstm_lm", tmp_path)


def test_save_parameters_gru_bidir(tmp_path) -> None:
    kwargs = case("save_parameters_gru_bidir")["kwargs"]
    _check_param_file(mx.gluon.rnn.GRU(**kwargs), "save_parameters_gru_bidir", tmp_path)


def test_lstm_lm_layer_params_are_named_like_mxnet_export() -> None:
    kwargs = case("lstm_lm")["kwargs"]
    net = _LSTMLM(**kwargs, prefix="lstmlm_")
    expected = {k[4:] for k in case("lstm_lm")["extra"]["params_in_file"]}
    assert set(net.collect_params()) == expected


# ---------------------------------------------------------------------------
# exported model


def test_lstm_lm_symbolblock_imports(tmp_path) -> None:
    spec, data = case("lstm_lm"), arrays("lstm_lm")
    sym_file = GOLDEN / spec["call"]["symbol_file"]
    net = mx.gluon.SymbolBlock.imports(str(sym_file), spec["call"]["input_names"],
                                       str(GOLDEN / spec["call"]["params_file"]))
    out = net(mx.nd.array(data["data"]))
    np.testing.assert_allclose(out.asnumpy(), data["out"], atol=spec["atol"], rtol=spec["rtol"])
    sym = mx.sym.load(str(sym_file))
    assert sym.tojson() == sym_file.read_text()


def test_lstm_lm_hybridized_export_matches_mxnet_graph(tmp_path) -> None:
    spec, data = case("lstm_lm"), arrays("lstm_lm")
    net = _LSTMLM(**spec["kwargs"], prefix="lstmlm_")
    net.initialize()
    net.load_parameters(str(GOLDEN / case("save_parameters_lstm_lm")["files"][0]))
    net.hybridize()
    out = net(mx.nd.array(data["data"]))
    np.testing.assert_allclose(out.asnumpy(), data["out"], atol=spec["atol"], rtol=spec["rtol"])
    sym_file, _ = net.export(str(tmp_path / "lm"))
    import json

    ours = json.loads(open(sym_file).read())
    theirs = json.loads((GOLDEN / spec["call"]["symbol_file"]).read_text())
    assert [n["op"] for n in ours["nodes"]] == [n["op"] for n in theirs["nodes"]]
    assert ours["node_row_ptr"] == theirs["node_row_ptr"]


# ---------------------------------------------------------------------------
# float64 finite differences


def _fd_check(block, x: np.ndarray, hybridize: bool) -> None:
    rng = np.random.default_rng(0)
    block.initialize(mx.init.Normal(0.5))
    block.cast("float64")
    if hybridize:
        block.hybridize()
    states = block.begin_state(x.shape[1], dtype="float64")
    for s in states:
        s[:] = rng.standard_normal(s.shape)
    xin = mx.nd.array(x, dtype="float64")
    xin.attach_grad()
    with autograd.record():
        out, _ = block(xin, states)
    w = rng.standard_normal(out.shape)
    out.backward(mx.nd.array(w, dtype="float64"))
    analytic = xin.grad.asnumpy()

    def loss(arr: np.ndarray) -> float:
        y, _ = block(mx.nd.array(arr, dtype="float64"), states)
        return float(np.sum(y.asnumpy() * w))

    np.testing.assert_allclose(analytic, central_difference(loss, x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("make", [
    lambda: mx.gluon.rnn.LSTM(3, num_layers=2, bidirectional=True, input_size=2),
    lambda: mx.gluon.rnn.GRU(3, bidirectional=True, input_size=2),
], ids=["lstm", "gru"])
def test_float64_finite_differences(make, hybridize: bool) -> None:
    x = np.random.default_rng(1).standard_normal((3, 1, 2))
    _fd_check(make(), x, hybridize)


# ---------------------------------------------------------------------------
# fused layers against the cells; composite cells


def _copy_cell_params(layer, cell, key: str) -> None:
    for n in ["i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias"]:
        getattr(cell, n).set_data(layer._reg_params[f"{key}_{n}"].data())


def test_sequence_length_matches_cell_unroll_with_valid_length() -> None:
    rnn = mx.gluon.rnn
    x = mx.nd.array(np.random.default_rng(0).standard_normal((2, 5, 3)))
    valid = mx.nd.array([3, 5])
    lstm = rnn.LSTM(4, input_size=3, layout="NTC", use_sequence_length=True)
    lstm.initialize(mx.init.Normal(0.5))
    cell = rnn.LSTMCell(4, input_size=3)
    cell.initialize()
    _copy_cell_params(lstm, cell, "l0")
    out, (h, c) = lstm(x, lstm.begin_state(2), valid)
    ref, (rh, rc) = cell.unroll(5, x, layout="NTC", merge_outputs=True, valid_length=valid)
    np.testing.assert_allclose(out.asnumpy(), ref.asnumpy(), atol=1e-6)
    np.testing.assert_allclose(h.asnumpy()[0], rh.asnumpy(), atol=1e-6)
    np.testing.assert_allclose(c.asnumpy()[0], rc.asnumpy(), atol=1e-6)
    assert np.all(out.asnumpy()[0, 3:] == 0)

    gru = rnn.GRU(4, input_size=3, layout="NTC", bidirectional=True, use_sequence_length=True)
    gru.initialize(mx.init.Normal(0.5))
    bi = rnn.BidirectionalCell(rnn.GRUCell(4, input_size=3), rnn.GRUCell(4, input_size=3))
    bi.initialize()
    _copy_cell_params(gru, bi._children["l_cell"], "l0")
    _copy_cell_params(gru, bi._children["r_cell"], "r0")
    gru.hybridize()
    out, (h,) = gru(x, gru.begin_state(2), valid)
    ref, states = bi.unroll(5, x, layout="NTC", merge_outputs=True, valid_length=valid)
    np.testing.assert_allclose(out.asnumpy(), ref.asnumpy(), atol=1e-6)
    np.testing.assert_allclose(h.asnumpy()[0], states[0].asnumpy(), atol=1e-6)
    np.testing.assert_allclose(h.asnumpy()[1], states[1].asnumpy(), atol=1e-6)


class _Stack(mx.gluon.HybridBlock):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        rnn = mx.gluon.rnn
        with self.name_scope():
            self.seq = rnn.HybridSequentialRNNCell()
            with self.seq.name_scope():
                self.seq.add(rnn.LSTMCell(4, input_size=3))
                self.seq.add(rnn.DropoutCell(0.0))
                self.seq.add(rnn.ResidualCell(rnn.GRUCell(4, input_size=4)))
            self.bi = rnn.BidirectionalCell(rnn.RNNCell(2, input_size=4),
                                            rnn.RNNCell(2, input_size=4))
            self.lstm = rnn.LSTM(3, num_layers=2, input_size=4, dropout=0.5)

    def hybrid_forward(self, F, x):
        out, _ = self.seq.unroll(3, x, layout="NTC", merge_outputs=True)
        out, _ = self.bi.unroll(3, out, layout="NTC", merge_outputs=True)
        return self.lstm(F.swapaxes(out, dim1=0, dim2=1))


def test_composite_cells_hybridize_inside_a_block() -> None:
    net = _Stack()
    net.initialize()
    x = mx.nd.array(np.random.default_rng(0).standard_normal((2, 3, 3)))
    eager = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-5, atol=1e-6)
    assert eager.shape == (3, 2, 3)
    with autograd.record():  # inter-layer dropout only in training
        trained = net(x)
    trained.backward()
    assert not np.allclose(trained.asnumpy(), eager)
    names = set(net._collect_params_with_prefix())
    assert {"seq.0.i2h_weight", "seq.2.base_cell.h2h_bias", "bi.r_cell.i2h_weight",
            "lstm._unfused.1.h2h_weight"} <= names


def test_zoneout_cell() -> None:
    rnn = mx.gluon.rnn
    base = rnn.GRUCell(4, input_size=3)
    cell = rnn.ZoneoutCell(base, zoneout_outputs=0.5, zoneout_states=0.5)
    cell.initialize()
    x = mx.nd.array(np.random.default_rng(0).standard_normal((2, 6, 3)))
    out, _ = cell.unroll(6, x, merge_outputs=True)
    base._modified = False
    ref, _ = base.unroll(6, x, merge_outputs=True)
    np.testing.assert_allclose(out.asnumpy(), ref.asnumpy(), rtol=1e-6)  # identity predicting
    base._modified = True
    with autograd.record():
        zoned, _ = cell.unroll(6, x, merge_outputs=True)
    assert zoned.shape == (2, 6, 4)
    assert not np.allclose(zoned.asnumpy(), ref.asnumpy())


def test_begin_state_and_state_info() -> None:
    lstm = mx.gluon.rnn.LSTM(5, num_layers=2, bidirectional=True, layout="NTC")
    info = lstm.state_info(3)
    assert [i["shape"] for i in info] == [(4, 3, 5), (4, 3, 5)]
    states = lstm.begin_state(3)
    assert [s.shape for s in states] == [(4, 3, 5), (4, 3, 5)]
    lstm.initialize()
    out, new = lstm(mx.nd.ones((3, 7, 2)), states)
    assert out.shape == (3, 7, 10) and lstm.l0_i2h_weight.shape == (20, 2)
    with pytest.raises(ValueError, match="state shape"):
        lstm(mx.nd.ones((3, 7, 2)), [mx.nd.zeros((4, 2, 5))] * 2)
    cell = mx.gluon.rnn.LSTMCell(5)
    assert [s.shape for s in cell.begin_state(2)] == [(2, 5), (2, 5)]
    assert repr(lstm) == "LSTM(2 -> 5, NTC, num_layers=2, bidirectional)"


def test_rnn_op_outputs_and_param_concat() -> None:
    from lowering.ops.rnn import rnn_param_size

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((4,))
    cat = mx.nd._internal._rnn_param_concat(mx.nd.array(a), mx.nd.array(b), dim=0, num_args=2)
    np.testing.assert_allclose(cat.asnumpy(), np.concatenate([a.ravel(), b]), rtol=1e-6)
    n = rnn_param_size("gru", 2, 1, 3, 4)
    assert n == 3 * 3 * 4 + 3 * 3 * 3 + 3 * 3 * 3 + 3 * 3 * 3 + 4 * 3 * 3
    x = mx.nd.array(rng.standard_normal((5, 2, 4)))
    params = mx.nd.array(rng.standard_normal((n,)) * 0.3)
    h0 = mx.nd.zeros((2, 2, 3))
    attrs = {"state_size": 3, "num_layers": 2, "mode": "gru", "p": 0.5}
    single = mx.nd.RNN(x, params, h0, **attrs)
    assert isinstance(single, mx.nd.NDArray) and single.shape == (5, 2, 3)
    out, hT = mx.nd.RNN(x, params, h0, state_outputs=True, **attrs)
    np.testing.assert_allclose(out.asnumpy(), single.asnumpy())  # no dropout predicting
    np.testing.assert_allclose(out.asnumpy()[-1], hT.asnumpy()[-1], rtol=1e-6)
    with autograd.train_mode():
        dropped = mx.nd.RNN(x, params, h0, **attrs)
    assert not np.allclose(dropped.asnumpy(), single.asnumpy())
    empty = mx.nd.zeros((2, 0, 3))  # MXNet's exported zeros with an unknown batch
    np.testing.assert_allclose(mx.nd.RNN(x, params, empty, **attrs).asnumpy(), single.asnumpy())
