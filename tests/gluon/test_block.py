"""Block and HybridBlock: naming, parameters, hooks, hybridize caching, save/load, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd
from hybrid.base import MXNetError


def _mlp(hidden: int = 8, out: int = 3, prefix: str | None = None) -> gluon.nn.HybridSequential:
    net = gluon.nn.HybridSequential(prefix=prefix)
    with net.name_scope():
        net.add(gluon.nn.Dense(hidden, activation="relu"), gluon.nn.Dense(out))
    return net


def test_block_names_follow_mxnet_prefix_rules() -> None:
    net = gluon.nn.HybridSequential(prefix="model_")
    with net.name_scope():
        net.add(gluon.nn.Dense(4), gluon.nn.Dense(2), gluon.nn.Activation("relu"))
    names = list(net.collect_params().keys())
    assert names == ["model_dense0_weight", "model_dense0_bias", "model_dense1_weight",
                     "model_dense1_bias"]
    assert net[0].prefix == "model_dense0_" and net[0].name == "model_dense0"
    assert net[2].prefix == "model_relu0_"
    top = gluon.nn.Dense(1)
    assert top.prefix.startswith("dense") and top.prefix.endswith("_")


def test_collect_params_selects_by_regex() -> None:
    net = _mlp()
    weights = net.collect_params(".*weight")
    assert len(weights) == 2 and all(k.endswith("weight") for k in weights.keys())


def test_structural_names_are_used_for_save_parameters(tmp_path) -> None:
    net = _mlp()
    net.initialize()
    net(nd.ones((2, 5)))
    assert sorted(net._collect_params_with_prefix()) == ["0.bias", "0.weight", "1.bias",
                                                         "1.weight"]
    path = str(tmp_path / "net.params")
    net.save_parameters(path)
    loaded = nd.load(path)
    assert sorted(loaded) == ["0.bias", "0.weight", "1.bias", "1.weight"]


def test_load_parameters_round_trip_predicts_the_same(tmp_path) -> None:
    net = _mlp()
    net.initialize(mx.init.Xavier())
    x = nd.array(np.random.RandomState(0).rand(4, 5))
    expected = net(x).asnumpy()
    path = str(tmp_path / "net.params")
    net.save_parameters(path)
    fresh = _mlp()
    fresh.load_parameters(path)
    np.testing.assert_array_equal(fresh(x).asnumpy(), expected)


@pytest.mark.parametrize("problem", ["missing", "extra", "shape"])
def test_bad_params_file_is_refused_and_leaves_the_network_unchanged(tmp_path, problem) -> None:
    net = _mlp()
    net.initialize()
    net(nd.ones((1, 5)))
    before = {k: v.data().asnumpy() for k, v in net.collect_params().items()}
    arrays = {k: p.data().asnumpy() + 1 for k, p in net._collect_params_with_prefix().items()}
    if problem == "missing":
        del arrays["1.bias"]
    elif problem == "extra":
        arrays["2.weight"] = np.zeros((1,), np.float32)
    else:
        arrays["1.weight"] = np.zeros((3, 9), np.float32)
    path = str(tmp_path / "bad.params")
    nd.save(path, {k: nd.array(v) for k, v in arrays.items()})
    with pytest.raises(MXNetError) as err:
        net.load_parameters(path)
    expected_word = {"missing": "1.bias", "extra": "2.weight", "shape": "(3, 9)"}[problem]
    assert expected_word in str(err.value)
    for k, v in net.collect_params().items():
        np.testing.assert_array_equal(v.data().asnumpy(), before[k])


def test_corrupt_params_file_is_refused(tmp_path) -> None:
    net = _mlp()
    net.initialize()
    path = str(tmp_path / "net.params")
    net(nd.ones((1, 5)))
    net.save_parameters(path)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-5])
    with pytest.raises(MXNetError, match="cannot load parameters"):
        net.load_parameters(path)


def test_same_shapes_compile_once_and_new_batch_size_once_more() -> None:
    net = _mlp()
    net.initialize()
    net.hybridize()
    for _ in range(3):
        net(nd.ones((4, 5)))
    assert net.num_compilations == 1
    net(nd.ones((7, 5)))
    assert net.num_compilations == 2
    net(nd.ones((4, 5)))
    assert net.num_compilations == 2


def test_training_and_predict_mode_are_separate_cache_entries() -> None:
    net = _mlp()
    net.initialize()
    net.hybridize()
    x = nd.ones((2, 5))
    net(x)
    with autograd.train_mode():
        net(x)
    assert net.num_compilations == 2
    with autograd.train_mode():
        net(x)
    assert net.num_compilations == 2


def test_hybridize_again_clears_the_cache() -> None:
    net = _mlp()
    net.initialize()
    net.hybridize()
    net(nd.ones((2, 5)))
    assert net.num_compilations == 1
    net.hybridize()
    assert net.num_compilations == 0
    net(nd.ones((2, 5)))
    assert net.num_compilations == 1


def test_deferred_initialization_infers_in_units_eagerly_and_hybridized() -> None:
    for hybridize in (False, True):
        net = _mlp(hidden=6)
        net.initialize()
        if hybridize:
            net.hybridize()
        with pytest.raises(Exception, match="deferred"):
            net[0].weight.data()
        net(nd.ones((3, 11)))
        assert net[0].weight.shape == (6, 11)
        assert net[1].weight.shape == (3, 6)


def test_shape_mismatch_in_hybridized_block_names_block_op_and_shapes() -> None:
    net = gluon.nn.Dense(4, in_units=5)
    net.initialize()
    net.hybridize()
    with pytest.raises(MXNetError) as err:
        net(nd.ones((2, 7)))
    text = str(err.value)
    assert net.name in text and "FullyConnected" in text
    assert "(2, 7)" in text and "(4, 5)" in text


def test_shape_mismatch_eagerly_names_op_and_shapes() -> None:
    net = gluon.nn.Dense(4, in_units=5)
    net.initialize()
    with pytest.raises(MXNetError) as err:
        net(nd.ones((2, 7)))
    assert "FullyConnected" in str(err.value) and "(4, 5)" in str(err.value)


class _ForwardStyle(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense = gluon.nn.Dense(3, in_units=4)
            self.scale = self.params.get("scale", shape=(3,), init=mx.init.One())

    def forward(self, x):
        h = self.dense(x)
        return nd.relu(h) * 2 + self.scale.data().reshape((1, 3)).broadcast_to((x.shape[0], 3)) \
            if not isinstance(x, mx.sym.Symbol) else \
            nd.relu(h) * 2 + nd.broadcast_like(self.scale.data().reshape((1, 3)), h)


class _HybridForwardStyle(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.dense = gluon.nn.Dense(3, in_units=4)
            self.scale = self.params.get("scale", shape=(3,), init=mx.init.One())

    def hybrid_forward(self, F, x, scale):
        h = self.dense(x)
        return F.broadcast_add(F.relu(h) * 2, F.reshape(scale, shape=(1, 3)))


@pytest.mark.parametrize("cls", [_ForwardStyle, _HybridForwardStyle])
def test_both_block_styles_hybridize_to_the_same_numbers(cls) -> None:
    mx.random.seed(1)
    net = cls()
    net.initialize(mx.init.Xavier())
    x = nd.array(np.random.RandomState(2).randn(5, 4))
    x.attach_grad()
    with autograd.record():
        eager = net(x)
    eager.backward()
    grad_eager = x.grad.asnumpy().copy()
    wgrad_eager = net.dense.weight.grad().asnumpy().copy()
    net.hybridize()
    with autograd.record():
        hyb = net(x)
    hyb.backward()
    np.testing.assert_allclose(hyb.asnumpy(), eager.asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.asnumpy(), grad_eager, rtol=1e-5)
    np.testing.assert_allclose(net.dense.weight.grad().asnumpy(), wgrad_eager, rtol=1e-5)


def test_forward_hooks_run_and_detach() -> None:
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    seen = []
    pre = net.register_forward_pre_hook(lambda b, inputs: seen.append(("pre", inputs[0].shape)))
    post = net.register_forward_hook(lambda b, inputs, out: seen.append(("post", out.shape)))
    net(nd.ones((4, 3)))
    assert seen == [("pre", (4, 3)), ("post", (4, 2))]
    pre.detach()
    post.detach()
    net(nd.ones((4, 3)))
    assert len(seen) == 2


def test_export_writes_symbol_and_params_that_reload(tmp_path) -> None:
    net = _mlp(prefix="mlp_")
    net.initialize()
    net.hybridize()
    x = nd.array(np.random.RandomState(0).rand(2, 5))
    out = net(x)
    sym_file, params_file = net.export(str(tmp_path / "mlp"), epoch=3)
    assert os.path.basename(params_file) == "mlp-0003.params"
    sym = mx.sym.load(sym_file)
    assert sym.list_arguments()[0] == "data"
    params = nd.load(params_file)
    assert sorted(params) == sorted(f"arg:{k}" for k in net.collect_params().keys())
    for name, p in net.collect_params().items():
        np.testing.assert_array_equal(params[f"arg:{name}"].asnumpy(), p.data().asnumpy())
    assert out.shape == (2, 3)


def test_lambda_blocks() -> None:
    assert gluon.nn.Lambda("tanh")(nd.zeros((2,))).asnumpy().tolist() == [0.0, 0.0]
    block = gluon.nn.HybridLambda(lambda F, x: F.relu(x) + 1)
    block.hybridize()
    np.testing.assert_array_equal(block(nd.array([-1.0, 2.0])).asnumpy(), [1.0, 3.0])


def test_parameter_cast_and_grad_req() -> None:
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    net.cast("float64")
    assert net.weight.data().dtype == np.float64
    net.weight.grad_req = "null"
    with pytest.raises(RuntimeError):
        net.weight.grad()


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
def test_dropout_draws_a_new_mask_every_training_call(hybridize) -> None:
    mx.random.seed(7)
    drop = gluon.nn.Dropout(0.5)
    if hybridize:
        drop.hybridize()
    x = nd.ones((64, 64))
    with autograd.record():
        a = drop(x).asnumpy()
        b = drop(x).asnumpy()
    assert set(np.unique(a)) <= {0.0, 2.0} and 0.35 < (a == 0).mean() < 0.65
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(drop(x).asnumpy(), x.asnumpy())  # predict mode: identity
    mx.random.seed(7)
    with autograd.record():
        again = drop(x).asnumpy()
    np.testing.assert_array_equal(again, a)


def test_a_block_that_keeps_recompiling_warns(monkeypatch) -> None:
    from lowering import compile_cache

    monkeypatch.setattr(compile_cache, "RETRACE_WARNING", 3)
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    net.hybridize()
    with pytest.warns(UserWarning, match="compiled 3 times"):
        for batch in (1, 2, 3):
            net(nd.ones((batch, 3)))


def test_loading_checks_known_dims_of_deferred_parameters(tmp_path) -> None:
    net = gluon.nn.Dense(4)  # weight (4, 0): in_units unknown until loaded
    path = str(tmp_path / "w.params")
    nd.save(path, {"weight": nd.ones((5, 3)), "bias": nd.ones((5,))})
    with pytest.raises(MXNetError, match=r"\(5, 3\)"):
        net.load_parameters(path)
    nd.save(path, {"weight": nd.ones((4, 3)), "bias": nd.ones((4,))})
    net.load_parameters(path)
    assert net.weight.shape == (4, 3)
    assert net(nd.ones((2, 3))).shape == (2, 4)
