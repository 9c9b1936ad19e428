"""``Trainer.step`` with stale gradients, and the kvstore options, as in MXNet 1.9.1.

MXNet (gluon/trainer.py ``_update``) raises ``UserWarning`` when a parameter's
gradient was not written by a backward since the last step, unless
``ignore_stale_grad=True``, which skips those parameters. ``zero_grad`` does not make
a gradient fresh (nor stale). With several contexts updated on the kvstore (MXNet's
default) the flags are never cleared, so only a gradient never written is caught.
The behaviours below were checked against MXNet 1.9.1.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd

CTX2 = [mx.cpu(0), mx.cpu(1)]
STALE = "Gradient of Parameter `{}` on context {} has not been updated by backward"


def _net(ctx=None, **trainer_kwargs):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3, in_units=2), gluon.nn.Dense(1, in_units=3))
    net.initialize(mx.init.One(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1},
                            **trainer_kwargs)
    return net, trainer


def _backward(net, ctxs=None, block=None):
    ctxs = ctxs or [mx.cpu(0)]
    xs = gluon.utils.split_and_load(nd.ones((2 * len(ctxs), 2)), list(ctxs))
    with autograd.record():
        losses = [(block or net)(x).sum() for x in xs]
    autograd.backward(losses)


def _weights(net):
    return {k: [d.asnumpy() for d in p.list_data()]
            for k, p in net._collect_params_with_prefix().items()}


@pytest.mark.parametrize("hybridize", [False, True])
def test_second_step_after_one_backward_raises(hybridize: bool) -> None:
    net, trainer = _net()
    if hybridize:
        net.hybridize()
    _backward(net)
    trainer.step(2)
    before = _weights(net)
    # Parameters are checked in sorted-name order, so the first bias is named.
    with pytest.raises(UserWarning, match=STALE.format(net[0].bias.name, "cpu\\(0\\)")):
        trainer.step(2)
    assert all(np.array_equal(a, b) for k in before for a, b in zip(before[k], _weights(net)[k]))
    _backward(net)
    trainer.step(2)  # fresh again


def test_step_before_any_backward_raises() -> None:
    for ctx in (None, CTX2):
        _, trainer = _net(ctx)
        with pytest.raises(UserWarning, match="ignore_stale_grad=True to suppress"):
            trainer.step(1)


def test_zero_grad_does_not_change_freshness() -> None:
    net, trainer = _net()
    _backward(net)
    net.collect_params().zero_grad()
    trainer.step(1)  # the backward still counts
    net.collect_params().zero_grad()
    with pytest.raises(UserWarning, match="has not been updated by backward"):
        trainer.step(1)


def test_manually_written_gradient_is_stale() -> None:
    p = gluon.Parameter("w", shape=(2,))
    p.initialize()
    trainer = gluon.Trainer([p], "sgd")
    p.grad()[:] = 1
    with pytest.raises(UserWarning, match="Parameter `w` on context cpu\\(0\\)"):
        trainer.step(1)


@pytest.mark.parametrize("hybridize", [False, True])
def test_ignore_stale_grad_skips_only_unused_parameters(hybridize: bool) -> None:
    net, trainer = _net()
    if hybridize:
        net.hybridize()
    before = _weights(net)
    x = nd.ones((2, 2))
    with autograd.record():
        loss = net[0](x).sum()  # the second layer is not used
    loss.backward()
    with pytest.raises(UserWarning, match=STALE.format(net[1].bias.name, "cpu\\(0\\)")):
        trainer.step(2)
    _backward(net, block=net[0])
    trainer.step(2, ignore_stale_grad=True)
    after = _weights(net)
    assert not np.array_equal(after["0.weight"][0], before["0.weight"][0])
    for k in ("1.weight", "1.bias"):
        np.testing.assert_array_equal(after[k][0], before[k][0])
    trainer.step(2, ignore_stale_grad=True)  # everything stale now: nothing changes
    again = _weights(net)
    assert all(np.array_equal(after[k][0], again[k][0]) for k in after)


def test_a_failed_step_clears_the_flags_checked_before_it() -> None:
    # MXNet clears each fresh parameter's flag while scanning, before it raises on a
    # stale one; a following ignore_stale_grad step then skips those too.
    a, b = gluon.Parameter("a", shape=(2,)), gluon.Parameter("b", shape=(2,))
    for p in (a, b):
        p.initialize(mx.init.One())
    trainer = gluon.Trainer([a, b], "sgd", {"learning_rate": 1.0})
    with autograd.record():
        loss = a.data().sum()
    loss.backward()
    with pytest.raises(UserWarning, match="Parameter `b`"):
        trainer.step(1)
    trainer.step(1, ignore_stale_grad=True)
    np.testing.assert_array_equal(a.data().asnumpy(), [1, 1])


def test_grad_req_add_backward_is_fresh() -> None:
    p = gluon.Parameter("w", shape=(2,), grad_req="add")
    p.initialize(mx.init.Zero())
    trainer = gluon.Trainer([p], "sgd", {"learning_rate": 1.0})
    for _ in range(2):
        with autograd.record():
            loss = (p.data() * nd.array([1, 2])).sum()
        loss.backward()
    trainer.step(1)
    np.testing.assert_array_equal(p.data().asnumpy(), [-2, -4])
    with pytest.raises(UserWarning):
        trainer.step(1)


def test_several_contexts_update_on_kvstore_never_clears_flags() -> None:
    net, trainer = _net(CTX2)
    _backward(net, CTX2)
    trainer.step(4)
    w1 = _weights(net)["0.weight"][0]
    trainer.step(4)  # MXNet: no error, the same (unreduced) gradients are applied again
    w2 = _weights(net)["0.weight"][0]
    np.testing.assert_allclose(w1 - w2, np.ones_like(w1) - w1, rtol=1e-5)


def test_several_contexts_without_kvstore_update_check_each_context() -> None:
    net, trainer = _net(CTX2, update_on_kvstore=False)
    _backward(net, CTX2)
    trainer.step(4)
    with pytest.raises(UserWarning, match=STALE.format(net[0].bias.name, "cpu\\(0\\)")):
        trainer.step(4)
    xs = nd.ones((2, 2), ctx=mx.cpu(1))
    with autograd.record():
        loss = net(xs).sum()  # only the copies on cpu(1) get gradients
    loss.backward()
    with pytest.raises(UserWarning, match="on context cpu\\(0\\)"):
        trainer.step(4)


@pytest.mark.parametrize("kvstore", ["dist_async", "horovod", "byteps"])
def test_unimplemented_kvstores_are_refused(kvstore: str) -> None:
    for ctx in (None, CTX2):
        with pytest.raises(NotImplementedError, match="not implemented"):
            _net(ctx, kvstore=kvstore)


def test_kvstore_objects_of_mx_kv_are_taken_by_their_type() -> None:
    with pytest.raises(TypeError, match="kvstore must be a str, a KVStore"):
        _net(kvstore=object())
    results = {}
    for kv in ("device", mx.kv.create("device")):
        net, trainer = _net(CTX2, kvstore=kv)
        _backward(net, CTX2)
        trainer.step(4)
        results[isinstance(kv, str)] = [p.data(c).asnumpy() for p in
                                        net.collect_params().values() for c in CTX2]
    for a, b in zip(results[True], results[False]):
        np.testing.assert_array_equal(a, b)


def test_gradient_compression_is_refused_where_mxnet_would_compress() -> None:
    compression = {"type": "2bit", "threshold": 0.5}
    with pytest.raises(NotImplementedError, match="gradient compression"):
        _net(CTX2, compression_params=compression)
    # MXNet creates no kvstore for one context (or kvstore=None): nothing is compressed.
    _net(None, compression_params=compression)
    _net(CTX2, kvstore=None, compression_params=compression)


def test_update_on_kvstore_without_a_kvstore_is_refused() -> None:
    with pytest.raises(ValueError, match="update_on_kvstore=True needs a kvstore"):
        _net(None, update_on_kvstore=True)
    with pytest.raises(ValueError, match="kvstore=None"):
        _net(CTX2, kvstore=None, update_on_kvstore=True)


@pytest.mark.parametrize("kvstore", ["device", "local", "nccl", "local_allreduce_cpu", None])
def test_local_kvstore_names_give_the_same_single_context_result(kvstore) -> None:
    net, trainer = _net(kvstore=kvstore, update_on_kvstore=False)
    _backward(net)
    trainer.step(2)
    np.testing.assert_allclose(net[1].bias.data().asnumpy(), [-0.1], rtol=1e-6)


def test_update_on_kvstore_environment_variable_is_honoured(monkeypatch) -> None:
    monkeypatch.setenv("MXNET_UPDATE_ON_KVSTORE", "0")
    net, trainer = _net(CTX2)
    _backward(net, CTX2)
    trainer.step(4)
    assert trainer._update_on_kvstore is False
    np.testing.assert_array_equal(net[1].bias.grad(mx.cpu(0)).asnumpy(),
                                  net[1].bias.grad(mx.cpu(1)).asnumpy())  # reduced
    trainer.allreduce_grads()
