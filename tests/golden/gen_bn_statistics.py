"""Generate tests/golden/bn_statistics/cases.json with real MXNet 1.9.1.

When BatchNorm's running statistics change: after a train-mode forward without
recording, after a recorded forward without backward, after backward, and for a
BatchNorm applied to two inputs in one step (eagerly and hybridized, shared from
outside and inside one block). Run with a Python that has mxnet==1.9.1:

    mxref/bin/python tests/golden/gen_bn_statistics.py
"""

import json
import os

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd


class Pair(gluon.HybridBlock):
    def __init__(self, momentum):
        super().__init__()
        with self.name_scope():
            self.bn = gluon.nn.BatchNorm(in_channels=3, momentum=momentum)

    def hybrid_forward(self, F, a, b):
        return self.bn(a) * self.bn(b)


def stats(bn):
    return [bn.running_mean.data().asnumpy().tolist(), bn.running_var.data().asnumpy().tolist()]


def main():
    rng = np.random.RandomState(3)
    cases = []
    for shape, momentum in [((4, 3), 0.9), ((5, 3, 2, 2), 0.7)]:
        x1 = rng.randn(*shape).astype(np.float32)
        x2 = (rng.randn(*shape) * 2 + 1).astype(np.float32)
        for hyb in (False, True):
            case = {"shape": list(shape), "momentum": momentum, "hybridize": hyb,
                    "x1": x1.tolist(), "x2": x2.tolist()}
            bn = gluon.nn.BatchNorm(in_channels=3, momentum=momentum)
            bn.initialize()
            if hyb:
                bn.hybridize()
            with autograd.train_mode():
                bn(nd.array(x1))
            case["after_train_mode_forward"] = stats(bn)
            with autograd.record():
                y = bn(nd.array(x1))
            case["after_recorded_forward"] = stats(bn)
            y.backward()
            case["after_backward"] = stats(bn)

            bn2 = gluon.nn.BatchNorm(in_channels=3, momentum=momentum)
            bn2.initialize()
            if hyb:
                bn2.hybridize()
            with autograd.record():
                loss = (bn2(nd.array(x1)) * bn2(nd.array(x2))).sum()
            loss.backward()
            case["shared_two_calls"] = stats(bn2)

            pair = Pair(momentum)
            pair.initialize()
            if hyb:
                pair.hybridize()
            with autograd.record():
                loss = pair(nd.array(x1), nd.array(x2)).sum()
            loss.backward()
            case["shared_in_one_block"] = stats(pair.bn)
            cases.append(case)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bn_statistics", "cases.json")
    with open(out, "w") as f:
        json.dump({"mxnet": mx.__version__, "cases": cases}, f)


if __name__ == "__main__":
    main()
