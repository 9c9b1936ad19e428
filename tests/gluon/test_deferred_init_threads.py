"""The first call of a deferred-shape block from several threads initializes it once."""

import threading

import numpy as np
import pytest

import hybrid as mx
from hybrid import gluon, nd


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
def test_concurrent_first_calls_initialize_parameters_once(hybridize):
    mx.random.seed(3)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(5, activation="relu"), gluon.nn.Dense(3))
    net.initialize()
    if hybridize:
        net.hybridize()
    xs = [np.random.default_rng(i).standard_normal((2, 4)).astype(np.float32) for i in range(6)]
    barrier = threading.Barrier(len(xs))
    outs: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    weights_seen = []

    def call(i):
        try:
            barrier.wait()
            outs[i] = net(nd.array(xs[i])).asnumpy()
            weights_seen.append(net[0].weight.data())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert all(w is weights_seen[0] for w in weights_seen)  # one initialization
    w0, b0 = net[0].weight.data().asnumpy(), net[0].bias.data().asnumpy()
    w1, b1 = net[1].weight.data().asnumpy(), net[1].bias.data().asnumpy()
    for i, x in enumerate(xs):
        want = np.maximum(x @ w0.T + b0, 0) @ w1.T + b1
        np.testing.assert_allclose(outs[i], want, rtol=1e-5, atol=1e-6)
