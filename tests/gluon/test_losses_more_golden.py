"""The remaining ``gluon.loss`` classes against MXNet 1.9.1, eager and hybridized.

Outputs and gradients come from the golden ``loss`` cases; float64
finite-difference checks cover the gradients of the smooth losses and of the
``CTCLoss`` operator's lax.scan recursion.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd
from tests.gluon.golden_layers import check_agreement, check_case
from tests.gluon.test_layers_losses_golden import LOSS_CASES
from tests.golden_cases import cases
from tests.numeric import central_difference

MORE_LOSS_CASES = [
    "kldiv_from_logits", "kldiv_softmax", "huber", "huber_rho_sw", "hinge", "squared_hinge",
    "logistic_signed", "logistic_binary", "triplet", "cosine_embedding", "poisson_nll_logits",
    "poisson_nll_full", "ctc_padded", "ctc_lengths", "ctc_tnc_sw", "sdml",
]


def test_every_golden_loss_case_is_covered() -> None:
    names = {c["name"] for c in cases("loss")}
    assert names == set(LOSS_CASES) | set(MORE_LOSS_CASES)


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", MORE_LOSS_CASES)
def test_loss_matches_mxnet(name: str, hybridize: bool) -> None:
    assert check_case(name, hybridize)  # at least the output was compared


@pytest.mark.parametrize("name", MORE_LOSS_CASES)
def test_eager_and_hybridized_agree(name: str) -> None:
    assert check_agreement(name)


# ---------------------------------------------------------------------------
# float64 finite differences


def _value_and_grads(block, arrays_in, diff):
    """Scalar ``sum(block(*inputs))`` and its autograd gradients w.r.t. ``diff`` inputs."""
    nds = [None if a is None else mx.nd.array(a, dtype=np.float64) for a in arrays_in]
    if not diff:
        return float(block(*nds).asnumpy().sum()), []
    for i in diff:
        nds[i].attach_grad()
    with autograd.record():
        out = block(*nds)
    out.backward(mx.nd.ones(out.shape, dtype=np.float64))
    return float(out.asnumpy().sum()), [nds[i].grad.asnumpy() for i in diff]


def _check_finite_differences(block, arrays_in, diff, eps=1e-6, rtol=1e-5, atol=1e-7):
    _, grads = _value_and_grads(block, arrays_in, diff)
    for i, grad in zip(diff, grads):
        def value(xi, i=i):
            args = list(arrays_in)
            args[i] = xi
            return _value_and_grads(block, args, [])[0]

        np.testing.assert_allclose(grad, central_difference(value, arrays_in[i], eps),
                                   rtol=rtol, atol=atol)


def _r(*shape, seed=7):
    return np.random.default_rng([seed, *shape]).standard_normal(shape)


FD_CASES = {
    "huber": (lambda: mx.gluon.loss.HuberLoss(rho=0.7),
              lambda: [_r(2, 3), _r(2, 3, seed=1), np.abs(_r(2, 1))], [0]),
    "logistic": (lambda: mx.gluon.loss.LogisticLoss(label_format="binary"),
                 lambda: [_r(2, 3), (_r(2, 3, seed=1) > 0).astype(np.float64)], [0]),
    "kldiv": (lambda: mx.gluon.loss.KLDivLoss(from_logits=False),
              lambda: [_r(2, 4), np.abs(_r(2, 4, seed=1)) / 3, _r(2, 1)], [0]),
    "triplet": (lambda: mx.gluon.loss.TripletLoss(margin=4.0),
                lambda: [_r(2, 3), _r(2, 3, seed=1), _r(2, 3, seed=2)], [0, 1, 2]),
    "cosine": (lambda: mx.gluon.loss.CosineEmbeddingLoss(margin=-0.5),
               lambda: [_r(3, 3), _r(3, 3, seed=1), np.array([1.0, -1.0, -1.0])], [0, 1]),
    "ctc": (lambda: mx.gluon.loss.CTCLoss(),
            lambda: [_r(2, 4, 3), np.array([[0.0, 1.0, 1.0], [1.0, -1.0, -1.0]])], [0]),
    "ctc_lengths": (lambda: mx.gluon.loss.CTCLoss(layout="TNC"),
                    lambda: [_r(4, 2, 3), np.array([[1.0, 0.0], [1.0, 1.0]]),
                             np.array([4.0, 3.0]), np.array([2.0, 1.0])], [0]),
}


# eager everywhere; the golden tests above already tie hybridized gradients to eager ones
FD_RUNS = [(name, False) for name in sorted(FD_CASES)] + [("ctc", True), ("ctc_lengths", True)]


@pytest.mark.parametrize(("name", "hybridize"), FD_RUNS,
                         ids=[f"{n}-{'hybridized' if h else 'eager'}" for n, h in FD_RUNS])
def test_gradient_matches_finite_differences(name: str, hybridize: bool) -> None:
    make_block, make_inputs, diff = FD_CASES[name]
    block = make_block()
    block.initialize()
    if hybridize:
        block.hybridize()
    _check_finite_differences(block, make_inputs(), diff)


def test_ctc_op_blank_first_pads_with_zero() -> None:
    """``blank_label='first'``: class 0 is the blank and 0 ends a label row."""
    pred = _r(6, 2, 4).astype(np.float32)
    labels_first = np.array([[1.0, 3.0, 0.0], [2.0, 0.0, 0.0]], np.float32)
    first = mx.nd.CTCLoss(mx.nd.array(pred), mx.nd.array(labels_first)).asnumpy()
    # the same problem with the classes rotated so that the blank is last
    rotated = np.concatenate([pred[..., 1:], pred[..., :1]], axis=-1)
    labels_last = np.array([[0.0, 2.0, -1.0], [1.0, -1.0, -1.0]], np.float32)
    last = mx.nd.ctc_loss(mx.nd.array(rotated), mx.nd.array(labels_last),
                          blank_label="last").asnumpy()
    np.testing.assert_allclose(first, last, rtol=1e-6)
    assert first.shape == (2,)


def test_ctc_loss_matches_brute_force_path_sum() -> None:
    """The recursion equals -log of the summed probability of every alignment."""
    import itertools

    steps, classes = 4, 3
    pred = _r(steps, 1, classes)
    label = [0, 0]
    probs = np.exp(pred[:, 0]) / np.exp(pred[:, 0]).sum(-1, keepdims=True)
    blank = classes - 1
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in collapsed if k != blank] == label:
            total += np.prod([probs[t, k] for t, k in enumerate(path)])
    out = mx.nd.CTCLoss(mx.nd.array(pred, dtype=np.float64), mx.nd.array([label + [-1]],
                        dtype=np.float64), blank_label="last").asnumpy()
    np.testing.assert_allclose(out, [-np.log(total)], rtol=1e-10)


def test_ctc_infeasible_label_costs_inf_without_nan_gradient() -> None:
    pred = mx.nd.array(_r(2, 1, 3))
    pred.attach_grad()
    with autograd.record():
        out = mx.nd.CTCLoss(pred, mx.nd.array([[1.0, 1.0]]))  # "1 1" needs 3 steps
    out.backward()
    assert np.isinf(out.asnumpy()).all()
    assert np.isfinite(pred.grad.asnumpy()).all()
