"""BatchNorm's running statistics change in backward, as in MXNet 1.9 (golden: real MXNet)."""

import json
from pathlib import Path

import numpy as np
import pytest

from hybrid import autograd, gluon, nd

CASES = json.loads((Path(__file__).parent.parent / "golden" / "bn_statistics" /
                    "cases.json").read_text())["cases"]
IDS = [f"{'x'.join(map(str, c['shape']))}-{'hybridized' if c['hybridize'] else 'eager'}"
       for c in CASES]


class Pair(gluon.HybridBlock):
    def __init__(self, momentum):
        super().__init__()
        with self.name_scope():
            self.bn = gluon.nn.BatchNorm(in_channels=3, momentum=momentum)

    def hybrid_forward(self, F, a, b):
        return self.bn(a) * self.bn(b)


def _stats(bn):
    return [bn.running_mean.data().asnumpy(), bn.running_var.data().asnumpy()]


def _check(bn, expected):
    for got, want in zip(_stats(bn), expected):
        np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=1e-5, atol=1e-6)


def _bn(case):
    bn = gluon.nn.BatchNorm(in_channels=3, momentum=case["momentum"])
    bn.initialize()
    if case["hybridize"]:
        bn.hybridize()
    return bn


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_running_statistics_change_in_backward_not_in_forward(case):
    x1 = nd.array(np.asarray(case["x1"], np.float32))
    bn = _bn(case)
    with autograd.train_mode():
        bn(x1)
    _check(bn, case["after_train_mode_forward"])
    with autograd.record():
        y = bn(x1)
    _check(bn, case["after_recorded_forward"])
    y.backward()
    _check(bn, case["after_backward"])
    if case["hybridize"]:
        assert bn.num_compilations > 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_batchnorm_applied_twice_is_updated_twice_in_backward_order(case):
    x1 = nd.array(np.asarray(case["x1"], np.float32))
    x2 = nd.array(np.asarray(case["x2"], np.float32))
    bn = _bn(case)
    with autograd.record():
        loss = (bn(x1) * bn(x2)).sum()
    loss.backward()
    _check(bn, case["shared_two_calls"])

    pair = Pair(case["momentum"])
    pair.initialize()
    if case["hybridize"]:
        pair.hybridize()
    with autograd.record():
        loss = pair(x1, x2).sum()
    loss.backward()
    _check(pair.bn, case["shared_in_one_block"])
    if case["hybridize"]:
        assert pair.num_compilations > 0


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
def test_repeated_training_steps_update_statistics_once_per_backward(hybridize):
    rng = np.random.default_rng(5)
    bn = gluon.nn.BatchNorm(in_channels=2, momentum=0.5)
    bn.initialize()
    if hybridize:
        bn.hybridize()
    expected = np.zeros(2)
    for _ in range(4):  # the tape repeats, so later steps take the fused backward
        x = rng.standard_normal((6, 2)).astype(np.float32)
        with autograd.record():
            y = bn(nd.array(x))
        y.backward()
        expected = expected * 0.5 + x.mean(0) * 0.5
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_predict_mode_recorded_forward_leaves_statistics_alone():
    bn = gluon.nn.BatchNorm(in_channels=2)
    bn.initialize()
    x = nd.array(np.arange(8, dtype=np.float32).reshape(4, 2))
    with autograd.record(train_mode=False):
        y = bn(x)
    y.backward()
    np.testing.assert_array_equal(bn.running_mean.data().asnumpy(), np.zeros(2))
