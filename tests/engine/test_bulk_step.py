"""A recorded training step runs as one captured program, with the numbers of
op-by-op execution (``engine.bulk(0)``), whatever the loop does between steps."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, engine, gluon, nd
from hybrid.engine import capture

RNG = np.random.RandomState(7)
X = RNG.rand(6, 5).astype(np.float32)
Y = np.array([0, 1, 2, 1, 0, 2], np.float32)


def _net(hybridize: bool, dropout: float = 0.3, grad_req: str = "write",
         batchnorm: bool = True):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, activation="relu", in_units=5))
    if batchnorm:
        net.add(gluon.nn.BatchNorm(in_channels=8))
    net.add(gluon.nn.Dropout(dropout), gluon.nn.Dense(3, in_units=8))
    net.initialize(mx.init.Xavier())
    if grad_req != "write":
        net.collect_params().setattr("grad_req", grad_req)
    if hybridize:
        net.hybridize()
    return net


def _train(bulk: int, hybridize: bool, body, steps: int = 4, optimizer: str = "sgd",
           grad_req: str = "write", batchnorm: bool = True):
    """Run ``steps`` of ``body(net, trainer, loss_fn, x, y, step)``; returns the values
    each step produced, every parameter and gradient, and the executions per step."""
    mx.random.seed(3)
    capture.reset_adaptation()  # earlier tests' new structures must not cool this one down
    with engine.bulk(bulk):
        net = _net(hybridize, grad_req=grad_req, batchnorm=batchnorm)
        trainer = gluon.Trainer(net.collect_params(), optimizer,
                                {"learning_rate": 0.1, "momentum": 0.9}
                                if optimizer == "sgd" else {"learning_rate": 0.01})
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        x, y = nd.array(X), nd.array(Y)
        seen, runs = [], []
        for step in range(steps):
            before = engine.executions()
            seen.append([np.asarray(v) for v in body(net, trainer, loss_fn, x, y, step)])
            runs.append(engine.executions() - before)
        params = [p.data().asnumpy() for p in net.collect_params().values()]
        grads = [p.grad().asnumpy() for p in net.collect_params().values()
                 if p.grad_req != "null"]
    return seen, params, grads, runs


def _same(a, b) -> None:
    for u, v in zip(a[0], b[0]):
        for s, t in zip(u, v):
            np.testing.assert_allclose(s, t, rtol=1e-5, atol=1e-6)
    for u, v in zip(a[1] + a[2], b[1] + b[2]):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def _plain_step(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(x.shape[0])
    return [loss.mean().asnumpy()]


@pytest.mark.parametrize("hybridize", [False, True])
def test_repeating_loop_runs_one_program_per_step_with_op_by_op_numbers(hybridize) -> None:
    fused = _train(100000, hybridize, _plain_step, steps=5)
    eager = _train(0, hybridize, _plain_step, steps=5)
    _same(fused, eager)
    assert fused[3] == [1] * 5  # forward, loss, backward and update: one program each step
    assert eager[3] == [0] * 5


@pytest.mark.parametrize("hybridize", [False, True])
def test_repeating_loop_compiles_its_step_once(hybridize) -> None:
    before = len(engine.STEPS)
    traces = engine.STEPS.traces("step")
    _train(100000, hybridize, _plain_step, steps=6)
    assert engine.STEPS.traces("step") - traces == 1
    assert len(engine.STEPS) - before <= 1


def _grad_read(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    g = net[0].weight.grad().asnumpy()  # read between backward and step
    trainer.step(x.shape[0])
    return [loss.asnumpy(), g]


def _clipped(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    grads = [p.grad() for p in net.collect_params().values() if p.grad_req != "null"]
    norm = gluon.utils.clip_global_norm(grads, 0.05)
    trainer.step(x.shape[0])
    return [loss.asnumpy(), np.float32(norm)]


def _split_update(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.allreduce_grads()
    trainer.update(x.shape[0])
    return [loss.asnumpy()]


def _two_losses(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        out = net(x)
        l1 = loss_fn(out, y)
        l2 = (out * out).mean()
    autograd.backward([l1, l2])
    trainer.step(x.shape[0])
    return [l1.asnumpy(), l2.asnumpy()]


def _retained(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward(retain_graph=True)
    first = net[0].weight.grad().asnumpy()
    loss.backward()
    trainer.step(x.shape[0])
    return [loss.asnumpy(), first]


def _dynamic(net, trainer, loss_fn, x, y, step):
    n = 2 + step % 3  # a different batch and graph every step
    with autograd.record():
        out = net(x[:n])
        loss = loss_fn(out, y[:n])
        if step % 2:
            loss = loss + 0.1 * (out ** 2).sum()
    loss.backward()
    trainer.step(n)
    return [loss.asnumpy()]


def _loss_read_before_backward(net, trainer, loss_fn, x, y, step):
    with autograd.record():
        loss = loss_fn(net(x), y)
    value = loss.asnumpy()
    loss.backward()
    trainer.step(x.shape[0])
    return [value]


@pytest.mark.parametrize("body", [_grad_read, _clipped, _split_update, _two_losses, _retained,
                                  _dynamic, _loss_read_before_backward],
                         ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("hybridize", [False, True])
def test_loops_that_read_or_vary_give_op_by_op_numbers(body, hybridize) -> None:
    _same(_train(100000, hybridize, body, steps=5), _train(0, hybridize, body, steps=5))


@pytest.mark.parametrize("hybridize", [False, True])
def test_grad_req_add_accumulates_as_op_by_op(hybridize) -> None:
    def body(net, trainer, loss_fn, x, y, step):
        for _ in range(2):
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
        trainer.step(x.shape[0])
        net.collect_params().zero_grad()
        return [loss.asnumpy()]

    _same(_train(100000, hybridize, body, grad_req="add"),
          _train(0, hybridize, body, grad_req="add"))


@pytest.mark.parametrize("hybridize", [False, True])
def test_adam_with_dropout_matches_op_by_op(hybridize) -> None:
    # (No BatchNorm here: a bias right before it has a zero gradient up to rounding,
    # which Adam's normalisation turns into updates of either sign.)
    fused = _train(100000, hybridize, _plain_step, optimizer="adam", batchnorm=False)
    _same(fused, _train(0, hybridize, _plain_step, optimizer="adam", batchnorm=False))
    assert fused[3] == [1] * 4


def test_stale_gradient_is_still_refused_after_a_captured_step() -> None:
    net = _net(True)
    trainer = gluon.Trainer(net.collect_params(), "sgd")
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = loss_fn(net(nd.array(X)), nd.array(Y))
    loss.backward()
    trainer.step(6)
    with pytest.raises(UserWarning, match="stale"):
        trainer.step(6)


def test_an_error_inside_a_captured_step_is_raised_by_the_eager_call() -> None:
    net = gluon.nn.Dense(3, in_units=5)
    net.initialize()
    with autograd.record():
        out = net(nd.array(X))
        with pytest.raises(mx.MXNetError):
            nd.dot(out, nd.ones((7, 2)))  # (6, 3) x (7, 2)


def test_bulk_zero_runs_nothing_as_a_capture() -> None:
    with engine.bulk(0):
        assert _train(0, True, _plain_step, steps=2)[3] == [0, 0]
    assert engine.bulk_size() > 1


_MULTI_DEVICE = """
import json
import jax
import numpy as np
import hybrid as mx
from hybrid import autograd, engine, gluon, nd
import jax
assert len(jax.devices()) == 2
ctx = [mx.cpu(0), mx.cpu(1)]
out = {}
for hyb in (False, True):
    for bulk in (0, 100000):
        with engine.bulk(bulk):
            mx.random.seed(1)
            net = gluon.nn.HybridSequential()
            net.add(gluon.nn.Dense(4, in_units=3), gluon.nn.Dropout(0.5),
                    gluon.nn.Dense(2, in_units=4))
            net.initialize(mx.init.Xavier(), ctx=ctx)
            if hyb:
                net.hybridize()
            trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
            x = nd.array(np.random.RandomState(0).rand(4, 3))
            y = nd.array([0, 1, 1, 0])
            loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
            for _ in range(3):
                xs = gluon.utils.split_and_load(x, ctx)
                ys = gluon.utils.split_and_load(y, ctx)
                with autograd.record():
                    losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
                for loss in losses:
                    loss.backward()
                trainer.step(4)
            out[f"{hyb}-{bulk}"] = [net[0].weight.data(c).asnumpy().tolist() for c in ctx]
print(json.dumps(out))
"""


def test_arrays_on_two_devices_are_never_captured_into_one_program() -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", _MULTI_DEVICE], env=env, check=True,
                          capture_output=True, text=True, timeout=300)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for hyb in ("False", "True"):
        np.testing.assert_allclose(out[f"{hyb}-100000"], out[f"{hyb}-0"], rtol=1e-6)


def test_unread_recorded_scopes_do_not_pile_up_in_one_capture() -> None:
    x = nd.ones((4, 3))
    x.attach_grad()
    for _ in range(30):
        with autograd.record():
            y = nd.relu(x * 2)
    assert len(capture.current().entries) <= 2  # the earlier scopes have run
    np.testing.assert_allclose(y.asnumpy(), np.full((4, 3), 2.0))



def _step_buffers(net, trainer) -> set[int]:
    arrays = [p.data()._data for p in net.collect_params().values()]
    arrays += jax.tree_util.tree_leaves(list(trainer._states.values()))
    return {a.unsafe_buffer_pointer() for a in arrays}


@pytest.mark.parametrize("hybridize", [False, True])
def test_captured_step_reuses_the_buffers_it_replaces(hybridize) -> None:
    net = _net(hybridize)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1,
                                                          "momentum": 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x, y = nd.array(X), nd.array(Y)
    capture.reset_adaptation()
    for step in range(3):
        before = _step_buffers(net, trainer)
        _plain_step(net, trainer, loss_fn, x, y, step)
        after = _step_buffers(net, trainer) | {
            p.grad()._data.unsafe_buffer_pointer() for p in net.collect_params().values()
            if p.grad_req != "null"}
    # weights and momenta are donated: the last step wrote into the buffers it replaced
    assert len(before & after) >= len(before) // 2


@pytest.mark.parametrize("hybridize", [False, True])
def test_arrays_the_user_still_holds_are_never_donated(hybridize) -> None:
    def body(net, trainer, loss_fn, x, y, step):
        held = [p.data()._data for p in net.collect_params().values()]
        copied = [p.data().copyto(mx.cpu()) for p in net.collect_params().values()]
        values = _plain_step(net, trainer, loss_fn, x, y, step)
        for a, b in zip(held, copied):  # readable, and still the values before the step
            np.testing.assert_array_equal(np.asarray(a), b.asnumpy())
        return values

    _same(_train(100000, hybridize, body), _train(0, hybridize, body))
