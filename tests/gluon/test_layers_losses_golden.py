"""Gluon layers and losses against MXNet 1.9.1: outputs and gradients, eager and hybridized."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd
from tests.golden_cases import arrays, case

LAYER_CASES = [
    "dense_flatten", "dense_noflatten", "dense_nobias_act", "dense_float64", "flatten",
    "dropout", "activation_relu", "activation_sigmoid", "activation_tanh",
    "activation_softrelu", "activation_softsign",
]
LOSS_CASES = [
    "l1", "l1_weight_sw", "l2", "l2_batch_axis1", "l2_label_reshape", "sigmoid_bce_logits",
    "sigmoid_bce_from_sigmoid", "sigmoid_bce_pos_weight_sw", "softmax_ce_sparse",
    "softmax_ce_dense", "softmax_ce_from_logits", "softmax_ce_axis1_sw",
    "softmax_ce_sparse_seq",
]


def _resolve(api: str):
    obj = mx
    for part in api.split("."):
        obj = getattr(obj, part)
    return obj


def _run(name: str, hybridize: bool):
    spec, data = case(name), arrays(name)
    block = _resolve(spec["api"])(**spec["kwargs"])
    block.initialize()
    structural = block._collect_params_with_prefix()
    for pname, key in spec["params"].items():
        structural[pname].set_data(data[key])
    if hybridize:
        block.hybridize()
    inputs = []
    for key in spec["inputs"]:
        x = mx.nd.array(data[key], dtype=data[key].dtype)
        if key in spec["grads"]:
            x.attach_grad()
        inputs.append(x)
    with autograd.record(train_mode=spec["mode"] == "train"):
        out = block(*inputs)
    head = spec["head_grads"].get("out")
    out.backward(mx.nd.array(data[head], dtype=data[head].dtype))
    grads = {}
    for key, gkey in spec["grads"].items():
        if key in spec["inputs"]:
            grads[gkey] = inputs[spec["inputs"].index(key)].grad.asnumpy()
        else:
            grads[gkey] = structural[key].grad().asnumpy()
    return spec, data, out.asnumpy(), grads


def _check(name: str, hybridize: bool) -> None:
    spec, data, out, grads = _run(name, hybridize)
    tol = {"atol": spec["atol"], "rtol": spec["rtol"]}
    expected = data[spec["outputs"][0]]
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, **tol)
    for gkey, value in grads.items():
        np.testing.assert_allclose(value, data[gkey], err_msg=gkey, **tol)


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", LAYER_CASES)
def test_layer_matches_mxnet(name: str, hybridize: bool) -> None:
    _check(name, hybridize)


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", LOSS_CASES)
def test_loss_matches_mxnet(name: str, hybridize: bool) -> None:
    _check(name, hybridize)


@pytest.mark.parametrize("name", LAYER_CASES + LOSS_CASES)
def test_eager_and_hybridized_agree_to_1e5(name: str) -> None:
    _, _, out_e, grads_e = _run(name, False)
    _, _, out_h, grads_h = _run(name, True)
    np.testing.assert_allclose(out_h, out_e, rtol=1e-5, atol=1e-7)
    for key in grads_e:
        np.testing.assert_allclose(grads_h[key], grads_e[key], rtol=1e-5, atol=1e-7)
