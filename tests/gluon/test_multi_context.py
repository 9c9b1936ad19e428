"""Parameters on several contexts, ``split_and_load`` and ``Trainer`` against MXNet 1.9.1.

The golden cases (tests/golden/multi_context, made by gen_multi_context.py) train a
small net on 2-3 CPU contexts with each of MXNet's kvstore modes; the contexts are
labels here (several copies may share one JAX device).
"""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd

GOLDEN = pathlib.Path(__file__).parents[1] / "golden" / "multi_context"
CASES = json.loads((GOLDEN / "cases.json").read_text())
CTX2 = [mx.cpu(0), mx.cpu(1)]


def _net(kind: str = "mlp"):
    net = gluon.nn.HybridSequential()
    if kind == "batchnorm":
        net.add(gluon.nn.Dense(4, in_units=3, use_bias=False), gluon.nn.BatchNorm(in_channels=4),
                gluon.nn.Activation("relu"), gluon.nn.Dense(2, in_units=4))
    else:
        net.add(gluon.nn.Dense(4, activation="relu", in_units=3),
                gluon.nn.Dense(2, in_units=4))
    return net


def _run_case(spec: dict, data: dict, hybridize: bool) -> dict[str, np.ndarray]:
    ctxs = [mx.cpu(i) for i in range(spec["n_ctx"])]
    net = _net(spec.get("net", "mlp"))
    net.initialize(ctx=ctxs)
    if hybridize:
        net.hybridize()
    params = net._collect_params_with_prefix()
    for name, p in params.items():
        p.set_data(nd.array(data[f"init:{name}"]))
    trainer = gluon.Trainer(net.collect_params(), spec["optimizer"],
                            dict(spec["optimizer_params"]), **spec["trainer"])
    loss_fn = gluon.loss.L2Loss()
    out = {}
    for step in range(1, spec["steps"] + 1):
        xs = gluon.utils.split_and_load(nd.array(data[f"x{step}"]), ctxs,
                                        even_split=spec["even_split"])
        ys = gluon.utils.split_and_load(nd.array(data[f"y{step}"]), ctxs,
                                        even_split=spec["even_split"])
        with autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(spec["batch"])
        if spec.get("set_data_after_step") == step:
            w = params["0.weight"]
            w.set_data(w.data(ctxs[0]) * 0.5)
        for name, p in params.items():
            for c, ctx in enumerate(ctxs):
                out[f"w:{name}:{c}:{step}"] = p.data(ctx).asnumpy()
                if p.grad_req != "null":
                    out[f"g:{name}:{c}:{step}"] = p.grad(ctx).asnumpy()
    return out


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", [c["name"] for c in CASES])
def test_multi_context_training_matches_mxnet(name: str, hybridize: bool) -> None:
    spec = next(c for c in CASES if c["name"] == name)
    with np.load(GOLDEN / f"{name}.npz") as f:
        data = {k: f[k] for k in f.files}
    got = _run_case(spec, data, hybridize)
    for key, value in got.items():
        np.testing.assert_allclose(value, data[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_initialize_gives_every_context_the_same_value() -> None:
    for shape in [(3,), (2, 5), (4, 1, 3)]:
        p = gluon.Parameter("w", shape=shape)
        p.initialize(mx.init.Uniform(), ctx=[mx.cpu(0), mx.cpu(1), mx.cpu(3)])
        first, *rest = [d.asnumpy() for d in p.list_data()]
        assert all(np.array_equal(first, r) for r in rest)
        assert [d.context for d in p.list_data()] == [mx.cpu(0), mx.cpu(1), mx.cpu(3)]
        assert [g.context for g in p.list_grad()] == p.list_ctx()


def test_copies_are_independent_arrays() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    p.data(mx.cpu(1))[:] = 5
    p.grad(mx.cpu(0))[:] = 2
    np.testing.assert_array_equal(p.data(mx.cpu(0)).asnumpy(), [1, 1])
    np.testing.assert_array_equal(p.grad(mx.cpu(1)).asnumpy(), [0, 0])


def test_data_picks_the_copy_of_the_current_context() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    assert p.data().context == mx.cpu(0)
    with mx.cpu(1):
        assert p.data().context == mx.cpu(1)
        assert p.grad().context == mx.cpu(1)
    assert p.data(mx.Context("cpu_pinned", 1)) is p.data(mx.cpu(1))  # MXNet's ctx map


@pytest.mark.parametrize("ctx", [mx.cpu(2), mx.gpu(0), mx.cpu(7)])
def test_data_on_another_context_raises_as_mxnet(ctx) -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(ctx=CTX2)
    msg = re.escape(f"Parameter 'w' was not initialized on context {ctx}. It was only "
                    "initialized on [cpu(0), cpu(1)].")
    with pytest.raises(RuntimeError, match=msg):
        p.data(ctx)
    with pytest.raises(RuntimeError, match=msg):
        p.grad(ctx)
    with ctx, pytest.raises(RuntimeError, match=msg):
        p.data()


def test_single_context_data_with_a_wrong_context_raises() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(ctx=mx.cpu(0))
    assert p.data() is p.data(mx.cpu(0))
    with mx.cpu(1):
        assert p.data() is p.data(mx.cpu(0))  # one copy: data() ignores the current context
    with pytest.raises(RuntimeError, match="was not initialized on context cpu\\(1\\)"):
        p.data(mx.cpu(1))


@pytest.mark.parametrize("hybridize", [False, True])
def test_forward_uses_the_copy_on_the_inputs_context(hybridize: bool) -> None:
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize(mx.init.One(), ctx=CTX2)
    if hybridize:
        net.hybridize()
    net.weight.data(mx.cpu(1))[:] = 2
    x0, x1 = nd.ones((1, 3), ctx=mx.cpu(0)), nd.ones((1, 3), ctx=mx.cpu(1))
    np.testing.assert_array_equal(net(x0).asnumpy(), [[3, 3]])
    np.testing.assert_array_equal(net(x1).asnumpy(), [[6, 6]])
    assert net(x1).context == mx.cpu(1)
    with pytest.raises(RuntimeError, match="not initialized on context cpu\\(2\\)"):
        net(nd.ones((1, 3), ctx=mx.cpu(2)))


@pytest.mark.parametrize("hybridize", [False, True])
def test_backward_writes_the_gradient_of_each_context(hybridize: bool) -> None:
    net = gluon.nn.Dense(1, in_units=2, use_bias=False)
    net.initialize(mx.init.One(), ctx=CTX2)
    if hybridize:
        net.hybridize()
    xs = gluon.utils.split_and_load(nd.array([[1, 2], [3, 4]]), CTX2)
    with autograd.record():
        losses = [net(x).sum() for x in xs]
    autograd.backward(losses)
    np.testing.assert_array_equal(net.weight.grad(mx.cpu(0)).asnumpy(), [[1, 2]])
    np.testing.assert_array_equal(net.weight.grad(mx.cpu(1)).asnumpy(), [[3, 4]])


def test_deferred_initialization_on_several_contexts() -> None:
    net = gluon.nn.Dense(3)
    net.initialize(ctx=CTX2)
    assert net.weight.list_ctx() == CTX2
    net(nd.ones((2, 5), ctx=mx.cpu(1)))
    w0, w1 = net.weight.list_data()
    assert w0.shape == (3, 5) and np.array_equal(w0.asnumpy(), w1.asnumpy())


def test_set_data_and_zero_grad_act_on_every_context() -> None:
    p = gluon.Parameter("w", shape=(3,))
    p.initialize(ctx=[mx.cpu(0), mx.cpu(1), mx.cpu(2)])
    p.set_data(nd.array([1, 2, 3]))
    for d in p.list_data():
        np.testing.assert_array_equal(d.asnumpy(), [1, 2, 3])
    for g in p.list_grad():
        g[:] = 7
    p.zero_grad()
    for g in p.list_grad():
        np.testing.assert_array_equal(g.asnumpy(), [0, 0, 0])


def test_reset_ctx_averages_the_copies() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    p.data(mx.cpu(1))[:] = 2
    p.reset_ctx([mx.cpu(0), mx.cpu(1), mx.cpu(2)])
    for d in p.list_data():
        np.testing.assert_array_equal(d.asnumpy(), [1.5, 1.5])
    p.reset_ctx(mx.cpu(1))
    assert p.list_ctx() == [mx.cpu(1)] and p.data().context == mx.cpu(1)
    with pytest.raises(ValueError, match="Cannot reset context for Parameter 'q'"):
        gluon.Parameter("q", shape=(2,)).reset_ctx(mx.cpu(0))


def test_save_writes_the_mean_of_the_copies(tmp_path) -> None:
    net = gluon.nn.Dense(1, in_units=1)
    net.initialize(mx.init.One(), ctx=CTX2)
    net.weight.data(mx.cpu(1))[:] = 3
    path = str(tmp_path / "p.params")
    net.collect_params().save(path)
    loaded = nd.load(path)
    np.testing.assert_array_equal(loaded[net.weight.name].asnumpy(), [[2]])


def test_cast_converts_every_copy_and_keeps_gradients() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    with autograd.record():
        loss = (p.data(mx.cpu(1)) * 3).sum()
    loss.backward()
    p.cast("float64")
    assert all(d.dtype == np.float64 for d in p.list_data() + p.list_grad())
    np.testing.assert_array_equal(p.grad(mx.cpu(1)).asnumpy(), [3, 3])
    with autograd.record():
        loss = (p.data(mx.cpu(0)) * 2).sum()
    loss.backward()
    np.testing.assert_array_equal(p.grad(mx.cpu(0)).asnumpy(), [2, 2])


def test_load_parameters_on_other_contexts_is_refused(tmp_path) -> None:
    net = gluon.nn.Dense(1, in_units=1)
    net.initialize(ctx=CTX2)
    path = str(tmp_path / "n.params")
    net.save_parameters(path)
    with pytest.raises(AssertionError, match="Failed to load Parameter"):
        net.load_parameters(path, ctx=mx.cpu(0))
    net.load_parameters(path, ctx=CTX2)
    fresh = gluon.nn.Dense(1, in_units=1)
    fresh.load_parameters(path, ctx=CTX2)
    assert fresh.weight.list_ctx() == CTX2


def test_trainer_refuses_parameters_on_different_contexts() -> None:
    a, b = gluon.Parameter("a", shape=(1,)), gluon.Parameter("b", shape=(1,))
    a.initialize(ctx=mx.cpu(0))
    b.initialize(ctx=CTX2)
    with pytest.raises(AssertionError, match="All Parameters must be initialized on the same"):
        gluon.Trainer([a, b], "sgd")
    with pytest.raises(RuntimeError, match="Parameter 'c' has not been initialized"):
        gluon.Trainer([gluon.Parameter("c", shape=(1,))], "sgd")


def _two_context_step(trainer, p, grads_per_ctx):
    with autograd.record():
        losses = [(p.data(c) * nd.array(g, ctx=c)).sum() for c, g in zip(CTX2, grads_per_ctx)]
    autograd.backward(losses)
    trainer.step(1)


def test_update_on_kvstore_refuses_allreduce_and_update() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    trainer = gluon.Trainer([p], "sgd", {"learning_rate": 1.0})
    _two_context_step(trainer, p, [[1, 2], [3, 4]])
    for d in p.list_data():
        np.testing.assert_array_equal(d.asnumpy(), [-3, -5])
    np.testing.assert_array_equal(p.grad(mx.cpu(0)).asnumpy(), [1, 2])  # not reduced
    with pytest.raises(AssertionError, match="allreduce_grads\\(\\) when parameters"):
        trainer.allreduce_grads()
    with pytest.raises(AssertionError, match="update\\(\\) when parameters"):
        trainer.update(1)


def test_allreduce_grads_then_update_equals_step() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    trainer = gluon.Trainer([p], "sgd", {"learning_rate": 1.0}, update_on_kvstore=False)
    with autograd.record():
        losses = [(p.data(c) * nd.array(g, ctx=c)).sum()
                  for c, g in zip(CTX2, ([1, 2], [3, 4]))]
    autograd.backward(losses)
    trainer.allreduce_grads()
    for g in p.list_grad():
        np.testing.assert_array_equal(g.asnumpy(), [4, 6])
    trainer.update(2)
    for d in p.list_data():
        np.testing.assert_array_equal(d.asnumpy(), [-1, -2])


def test_store_weight_wins_over_a_copy_changed_by_hand() -> None:
    # MXNet: with update_on_kvstore the kvstore keeps its own weight; it overwrites a copy
    # written directly (set_data instead rebuilds the store from the first copy).
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(mx.init.One(), ctx=CTX2)
    trainer = gluon.Trainer([p], "sgd", {"learning_rate": 0.1})
    for _ in range(2):
        p.data(mx.cpu(1))[:] = 5
        _two_context_step(trainer, p, [[1, 2], [1, 2]])
    for d in p.list_data():
        np.testing.assert_allclose(d.asnumpy(), [0.6, 0.2], rtol=1e-6)


def test_single_context_speed_path_keeps_one_copy() -> None:
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    assert net.weight._copies is None and net.weight.list_data() == [net.weight.data()]


_FORCED_DEVICES = r"""
import sys
import numpy as np
import jax
sys.path.insert(0, sys.argv[1])
import hybrid as mx
from tests.gluon import test_multi_context as t

assert len(jax.devices()) == 4
ctxs = [mx.cpu(i) for i in range(4)]
net = t._net("batchnorm")
net.initialize(ctx=ctxs)
for p in net.collect_params().values():
    assert len({next(iter(p.data(c)._data.devices())) for c in ctxs}) == 4, p.name
for name in ("ctx4_batchnorm_sgd", "ctx4_batchnorm_adam"):
    spec = next(c for c in t.CASES if c["name"] == name)
    with np.load(t.GOLDEN / f"{name}.npz") as f:
        data = {k: f[k] for k in f.files}
    for hybridize in (False, True):
        got = t._run_case(spec, data, hybridize)
        for key, value in got.items():
            np.testing.assert_allclose(value, data[key], rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} {hybridize} {key}")
# Without BatchNorm, four devices on a split batch give one device's numbers on the
# whole batch (the gradients are sums over the samples).
rng = np.random.RandomState(3)
x, y = rng.rand(16, 3).astype(np.float32), rng.rand(16, 2).astype(np.float32)
weights = {}
for devices in (ctxs, [mx.cpu(0)]):
    net = t._net("mlp")
    net.initialize(mx.init.Xavier(rnd_type="gaussian"), ctx=devices)
    for i, p in enumerate(net.collect_params().values()):
        p.set_data(mx.nd.array(np.random.RandomState(i).rand(*p.shape) - 0.5))
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd",
                               {"learning_rate": 0.1, "momentum": 0.9})
    loss_fn = mx.gluon.loss.L2Loss()
    for _ in range(3):
        xs = mx.gluon.utils.split_and_load(mx.nd.array(x), devices)
        ys = mx.gluon.utils.split_and_load(mx.nd.array(y), devices)
        with mx.autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        mx.autograd.backward(losses)
        trainer.step(16)
    weights[len(devices)] = [p.data(devices[-1]).asnumpy()
                             for p in net.collect_params().values()]
for a, b in zip(weights[4], weights[1]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("matched")
"""


@pytest.mark.slow
def test_four_real_devices_train_as_mxnets_four_contexts() -> None:
    """On 4 forced CPU devices every context's copy lives on its own device, the
    BatchNorm net trains (SGD and Adam, eager and hybridized) to MXNet's numbers, and a
    net without BatchNorm trains as one device does on the whole batch."""
    import os
    import subprocess
    import sys

    root = str(pathlib.Path(__file__).parents[2])
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run([sys.executable, "-c", _FORCED_DEVICES, root], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "matched" in done.stdout
