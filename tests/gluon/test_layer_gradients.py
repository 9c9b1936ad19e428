"""Gradients of layers and losses agree with central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd
from tests.numeric import central_difference


def _dense():
    return gluon.nn.Dense(3, activation="tanh", in_units=4, dtype="float64")


LAYERS = {
    "dense": (_dense, (2, 4)),
    "dense_noflatten": (lambda: gluon.nn.Dense(2, flatten=False, in_units=3, dtype="float64"),
                        (2, 2, 3)),
    "activation_softrelu": (lambda: gluon.nn.Activation("softrelu"), (3, 4)),
    "activation_sigmoid": (lambda: gluon.nn.Activation("sigmoid"), (3, 4)),
    "activation_softsign": (lambda: gluon.nn.Activation("softsign"), (3, 4)),
    "flatten": (lambda: gluon.nn.Flatten(), (2, 3, 2)),
    "dropout_predict": (lambda: gluon.nn.Dropout(0.5), (3, 3)),
}


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_input_and_parameter_gradients_match_finite_differences(name, hybridize) -> None:
    make, shape = LAYERS[name]
    rng = np.random.RandomState(0)
    block = make()
    block.initialize(mx.init.Normal(0.5))
    if hybridize:
        block.hybridize()
    x = rng.randn(*shape)
    head = rng.randn(*block(nd.array(x, dtype="float64")).shape)

    def value(xv):
        with autograd.predict_mode():
            return float((block(nd.array(xv, dtype="float64")).asnumpy() * head).sum())

    xa = nd.array(x, dtype="float64")
    xa.attach_grad()
    with autograd.record(train_mode=False):
        out = block(xa)
    out.backward(nd.array(head, dtype="float64"))
    np.testing.assert_allclose(xa.grad.asnumpy(), central_difference(value, x.copy()),
                               rtol=1e-5, atol=1e-8)
    for param in block.collect_params().values():
        w = param.data().asnumpy().copy()

        def value_w(wv, param=param):
            param.set_data(wv)
            return value(x)

        expected = central_difference(value_w, w.copy())
        param.set_data(w)
        np.testing.assert_allclose(param.grad().asnumpy(), expected, rtol=1e-5, atol=1e-8)


LOSSES = {
    "l1": (lambda: gluon.loss.L1Loss(), lambda r: r.randn(3, 4)),
    "l2": (lambda: gluon.loss.L2Loss(), lambda r: r.randn(3, 4)),
    "sigmoid_bce": (lambda: gluon.loss.SigmoidBinaryCrossEntropyLoss(),
                    lambda r: (r.rand(3, 4) > 0.5).astype(np.float64)),
    "sigmoid_bce_from_sigmoid": (
        lambda: gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=True),
        lambda r: (r.rand(3, 4) > 0.5).astype(np.float64)),
    "softmax_ce": (lambda: gluon.loss.SoftmaxCrossEntropyLoss(),
                   lambda r: r.randint(0, 4, 3).astype(np.float64)),
    "softmax_ce_dense": (lambda: gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False),
                         lambda r: r.dirichlet(np.ones(4), 3)),
}


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_finite_differences(name, hybridize) -> None:
    make, label_fn = LOSSES[name]
    rng = np.random.RandomState(1)
    loss = make()
    if hybridize:
        loss.hybridize()
    pred = rng.rand(3, 4) * 0.8 + 0.1 if "from_sigmoid" in name else rng.randn(3, 4)
    label = nd.array(label_fn(rng), dtype="float64")
    head = rng.randn(3)

    def value(p):
        return float((loss(nd.array(p, dtype="float64"), label).asnumpy() * head).sum())

    p = nd.array(pred, dtype="float64")
    p.attach_grad()
    with autograd.record():
        out = loss(p, label)
    out.backward(nd.array(head, dtype="float64"))
    np.testing.assert_allclose(p.grad.asnumpy(), central_difference(value, pred.copy()),
                               rtol=1e-5, atol=1e-8)
