"""A container subclass's own ``hybrid_forward`` / ``forward`` runs, eagerly and hybridized."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd


class Concurrent(gluon.nn.HybridSequential):
    """MXNet's ``HybridConcurrent``: children see the same input; outputs are concatenated."""

    def __init__(self, axis: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def hybrid_forward(self, F, x):
        return F.concat(*[block(x) for block in self._children.values()], dim=self.axis)


class Residual(gluon.nn.HybridSequential):
    """Overrides ``forward`` (not ``hybrid_forward``): x + children(x)."""

    def forward(self, x):
        return x + super().forward(x)


class Doubled(gluon.nn.Sequential):
    """A ``Sequential`` whose ``forward`` runs its children twice."""

    def forward(self, x):
        for _ in range(2):
            for block in self._children.values():
                x = block(x)
        return x


def _dense_weights(net) -> list[np.ndarray]:
    return [p.data().asnumpy() for p in net.collect_params().values()]


def _concurrent(units: tuple[int, ...], in_units: int, axis: int) -> Concurrent:
    net = Concurrent(axis=axis)
    with net.name_scope():
        for u in units:
            net.add(gluon.nn.Dense(u, in_units=in_units))
    net.initialize(mx.init.Uniform(0.5))
    return net


@pytest.mark.parametrize("units,batch", [((2, 3), 4), ((1, 4, 2), 1)])
def test_hybridsequential_subclass_hybrid_forward_runs_eager_and_hybridized(units, batch):
    rng = np.random.RandomState(sum(units) + batch)
    x = nd.array(rng.randn(batch, 3))
    net = _concurrent(units, 3, axis=1)
    weights = _dense_weights(net)
    expected = np.concatenate(
        [x.asnumpy() @ weights[2 * i].T + weights[2 * i + 1] for i in range(len(units))], axis=1)
    eager = net(x).asnumpy()
    np.testing.assert_allclose(eager, expected, rtol=1e-5, atol=1e-6)
    net.hybridize()
    hybridized = net(x).asnumpy()
    assert hybridized.shape == (batch, sum(units))
    np.testing.assert_allclose(hybridized, expected, rtol=1e-5, atol=1e-6)


def test_hybridsequential_subclass_gradients_agree_eager_and_hybridized() -> None:
    x = nd.array(np.random.RandomState(0).randn(2, 3))
    grads = []
    for hybridize in (False, True):
        net = _concurrent((2, 3), 3, axis=-1)
        for p, w in zip(net.collect_params().values(), [np.full(p.shape, 0.1 * (i + 1))
                        for i, p in enumerate(net.collect_params().values())]):
            p.set_data(nd.array(w))
        if hybridize:
            net.hybridize()
        with autograd.record():
            out = (net(x) ** 2).sum()
        out.backward()
        grads.append([p.grad().asnumpy() for p in net.collect_params().values()])
    for eager, hyb in zip(*grads):
        np.testing.assert_allclose(eager, hyb, rtol=1e-5)


def test_hybridsequential_subclass_forward_override_runs_eager_and_hybridized() -> None:
    net = Residual()
    with net.name_scope():
        net.add(gluon.nn.Dense(4, in_units=4), gluon.nn.Activation("relu"))
    net.initialize(mx.init.Uniform(0.5))
    x = nd.array(np.random.RandomState(1).randn(3, 4))
    w, b = _dense_weights(net)
    expected = x.asnumpy() + np.maximum(x.asnumpy() @ w.T + b, 0)
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-5, atol=1e-6)
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-5, atol=1e-6)


def test_sequential_subclass_forward_override_runs() -> None:
    net = Doubled()
    net.add(gluon.nn.Dense(3, in_units=3))
    net.initialize(mx.init.Uniform(0.5))
    x = nd.array(np.random.RandomState(2).randn(2, 3))
    w, b = _dense_weights(net)
    once = x.asnumpy() @ w.T + b
    np.testing.assert_allclose(net(x).asnumpy(), once @ w.T + b, rtol=1e-5, atol=1e-6)


def test_plain_sequential_containers_still_chain_children() -> None:
    x = nd.array(np.random.RandomState(3).randn(2, 3))
    for cls in (gluon.nn.Sequential, gluon.nn.HybridSequential):
        net = cls()
        net.add(gluon.nn.Dense(4, in_units=3), gluon.nn.Dense(2, in_units=4))
        net.initialize(mx.init.Uniform(0.5))
        w1, b1, w2, b2 = _dense_weights(net)
        expected = (x.asnumpy() @ w1.T + b1) @ w2.T + b2
        np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-5, atol=1e-6)
        if cls is gluon.nn.HybridSequential:
            net.hybridize()
            np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-5, atol=1e-6)
