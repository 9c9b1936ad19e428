"""``Trainer.compile_step``: the explicit one-program training step gives the numbers
of the hybridized record()/backward()/step() loop, and refuses what it cannot run."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd
from hybrid.engine import capture
from hybrid.gluon import train_step
from lowering import x64

RNG = np.random.RandomState(11)
X = RNG.rand(6, 5).astype(np.float32)
Y = np.array([0, 1, 2, 1, 0, 2], np.float32)


def _net(hybridize: bool, dropout: float = 0.3):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, activation="relu", in_units=5),
            gluon.nn.BatchNorm(in_channels=8), gluon.nn.Dropout(dropout),
            gluon.nn.Dense(3, in_units=8))
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    return net


def _trainer(net, optimizer: str):
    params = {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01} if optimizer == "sgd" \
        else {"learning_rate": 0.01}
    return gluon.Trainer(net.collect_params(), optimizer, params)


def _state(net, trainer) -> list[np.ndarray]:
    out = [p.data().asnumpy() for p in net.collect_params().values()]
    out += [p.grad().asnumpy() for p in net.collect_params().values() if p.grad_req != "null"]
    for s in trainer._states.values():
        out += [np.asarray(a) for a in jax.tree_util.tree_leaves(s)]
    return out


def _close(a, b) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def _loop(net, trainer, loss_fn, x, y):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(x.shape[0])
    return loss


def _both(body_compiled, body_loop, hybridize=False, optimizer="sgd", steps=4, **net_kw):
    """Run ``steps`` of each body on fresh equal models; returns both (values, state)."""
    results = []
    for body in (body_compiled, body_loop):
        mx.random.seed(5)
        capture.reset_adaptation()
        net = _net(hybridize or body is body_loop, **net_kw)  # the loop's reference: hybridized
        trainer = _trainer(net, optimizer)
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        ctx = {"net": net, "trainer": trainer, "loss_fn": loss_fn}
        values = [[np.asarray(v) for v in body(ctx, nd.array(X), nd.array(Y), k)]
                  for k in range(steps)]
        results.append((values, _state(net, trainer), trainer.optimizer))
    return results


def _compiled_plain(ctx, x, y, k):
    step = ctx.setdefault("step", ctx["trainer"].compile_step(ctx["net"], ctx["loss_fn"]))
    return [step(x, y).asnumpy()]


def _loop_plain(ctx, x, y, k):
    return [_loop(ctx["net"], ctx["trainer"], ctx["loss_fn"], x, y).asnumpy()]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("hybridize", [False, True])
def test_compiled_step_gives_the_hybridized_loops_numbers(hybridize, optimizer) -> None:
    (cv, cs, copt), (lv, ls, lopt) = _both(_compiled_plain, _loop_plain, hybridize, optimizer)
    for u, v in zip(cv, lv):
        _close(u, v)
    _close(cs, ls)  # weights, gradients, optimizer states
    assert copt.num_update == lopt.num_update
    assert copt._index_update_count == lopt._index_update_count


def test_compiled_step_is_one_execution_compiled_once() -> None:
    net = _net(False)
    trainer = _trainer(net, "sgd")
    step = trainer.compile_step(net, gluon.loss.SoftmaxCrossEntropyLoss())
    x, y = nd.array(X), nd.array(Y)
    step(x, y)
    traces = train_step.STEPS.traces(step._owner)
    for _ in range(3):
        before = x64.CALLS[0]
        loss = step(x, y)
        assert x64.CALLS[0] - before == 1
    loss.asnumpy()
    trainer.set_learning_rate(0.01)  # a hyper-parameter is an input, not a constant
    step(x, y)
    assert train_step.STEPS.traces(step._owner) == traces


def test_compiled_step_accumulates_with_grad_req_add() -> None:
    def compiled(ctx, x, y, k):
        if k == 0:
            ctx["net"].collect_params().setattr("grad_req", "add")
        return _compiled_plain(ctx, x, y, k)

    def loop(ctx, x, y, k):
        if k == 0:
            ctx["net"].collect_params().setattr("grad_req", "add")
        return _loop_plain(ctx, x, y, k)

    (cv, cs, _), (lv, ls, _) = _both(compiled, loop)
    for u, v in zip(cv, lv):
        _close(u, v)
    _close(cs, ls)


def test_compiled_step_returns_the_output_and_takes_several_inputs() -> None:
    class Two(gluon.HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            with self.name_scope():
                self.a = gluon.nn.Dense(3, in_units=5)
                self.b = gluon.nn.Dense(3, in_units=2)

        def hybrid_forward(self, F, x, z):
            return self.a(x) + self.b(z)

    z = RNG.rand(6, 2).astype(np.float32)
    w = RNG.rand(6, 1).astype(np.float32)
    out = {}
    for compiled in (True, False):
        mx.random.seed(2)
        net = Two()
        net.initialize(mx.init.Xavier())
        net.hybridize()
        trainer = _trainer(net, "sgd")
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        x, zz, y, sw = nd.array(X), nd.array(z), nd.array(Y), nd.array(w)
        x.attach_grad()
        step = trainer.compile_step(net, loss_fn, return_outputs=True)
        for _ in range(3):
            if compiled:
                loss, o = step([x, zz], [y, sw], batch_size=4)
            else:
                with autograd.record():
                    o = net(x, zz)
                    loss = loss_fn(o, y, sw)
                loss.backward()
                trainer.step(4)
        out[compiled] = [loss.asnumpy(), o.asnumpy(), x.grad.asnumpy()] + _state(net, trainer)
    _close(out[True], out[False])


def test_compiled_step_follows_grad_req_changes_between_calls() -> None:
    def compiled(ctx, x, y, k):
        if k == 2:
            ctx["net"][0].collect_params().setattr("grad_req", "null")
        return _compiled_plain(ctx, x, y, k)

    def loop(ctx, x, y, k):
        if k == 2:
            ctx["net"][0].collect_params().setattr("grad_req", "null")
        return _loop_plain(ctx, x, y, k)

    (cv, cs, _), (lv, ls, _) = _both(compiled, loop)
    for u, v in zip(cv, lv):
        _close(u, v)
    _close(cs, ls)


def test_compiled_and_plain_steps_interleave() -> None:
    def mixed(ctx, x, y, k):
        return _compiled_plain(ctx, x, y, k) if k % 2 else _loop_plain(ctx, x, y, k)

    (cv, cs, copt), (lv, ls, lopt) = _both(mixed, _loop_plain, hybridize=True, steps=5)
    for u, v in zip(cv, lv):
        _close(u, v)
    _close(cs, ls)
    assert copt._index_update_count == lopt._index_update_count


def test_stale_trainer_parameters_raise_unless_ignored() -> None:
    net = _net(False)
    extra = gluon.Parameter("extra", shape=(2,))
    extra.initialize()
    trainer = gluon.Trainer(list(net.collect_params().values()) + [extra], "sgd")
    step = trainer.compile_step(net, gluon.loss.SoftmaxCrossEntropyLoss())
    with pytest.raises(UserWarning, match="extra"):
        step(nd.array(X), nd.array(Y))
    before = extra.data().asnumpy()
    step(nd.array(X), nd.array(Y), ignore_stale_grad=True)
    np.testing.assert_array_equal(extra.data().asnumpy(), before)


def test_weights_the_user_holds_stay_readable() -> None:
    net = _net(False)
    trainer = _trainer(net, "sgd")
    step = trainer.compile_step(net, gluon.loss.SoftmaxCrossEntropyLoss())
    x, y = nd.array(X), nd.array(Y)
    step(x, y)
    held = [p.data()._data for p in net.collect_params().values()]
    copies = [np.asarray(a).copy() for a in held]
    step(x, y)
    for a, c in zip(held, copies):
        np.testing.assert_array_equal(np.asarray(a), c)


def test_compile_step_refuses_what_it_cannot_compile() -> None:
    net = _net(False)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = _trainer(net, "sgd")

    class Plain(gluon.Block):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="HybridBlock"):
        trainer.compile_step(Plain(), loss_fn)
    with pytest.raises(TypeError, match="NDArray"):
        trainer.compile_step(net, loss_fn)(X, nd.array(Y))

    class TwoOut(gluon.HybridBlock):
        def hybrid_forward(self, F, x):
            return x, x

    two = TwoOut()
    with pytest.raises(TypeError, match="several outputs"):
        gluon.Trainer(net.collect_params(), "sgd").compile_step(two, loss_fn)(
            nd.array(X), nd.array(Y))

    class Eager(mx.optimizer.Optimizer):
        def create_state(self, index, weight):
            return None

        def update(self, index, weight, grad, state):
            weight[:] -= 0.1 * grad

    custom = gluon.Trainer(net.collect_params(), Eager())
    with pytest.raises(NotImplementedError, match="update"):
        custom.compile_step(net, loss_fn)(nd.array(X), nd.array(Y))


def test_compile_step_refuses_several_contexts() -> None:
    net = gluon.nn.Dense(3, in_units=5)
    net.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    trainer = gluon.Trainer(net.collect_params(), "sgd")
    with pytest.raises(NotImplementedError, match="one context"):
        trainer.compile_step(net, gluon.loss.L2Loss())(nd.array(X), nd.array(Y))


def test_compile_step_names_the_blocks_when_shapes_do_not_fit() -> None:
    net = _net(False)
    trainer = _trainer(net, "sgd")
    step = trainer.compile_step(net, gluon.loss.SoftmaxCrossEntropyLoss())
    step(nd.array(X), nd.array(Y))
    before = [p.data().asnumpy() for p in net.collect_params().values()]
    counts = dict(trainer.optimizer._index_update_count)
    with pytest.raises(mx.MXNetError, match=r"\(6, 7\)"):
        step(nd.ones((6, 7)), nd.array(Y))  # Dense(in_units=5)
    assert trainer.optimizer._index_update_count == counts
    for p, b in zip(net.collect_params().values(), before):  # nothing half-done
        np.testing.assert_array_equal(p.data().asnumpy(), b)
    with autograd.record(), pytest.raises(RuntimeError, match="outside"):
        step(nd.array(X), nd.array(Y))
