"""Gluon layers and losses against MXNet 1.9.1: outputs and gradients, eager and hybridized."""

from __future__ import annotations

import pytest

from tests.gluon.golden_layers import check_agreement, check_case

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


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", LAYER_CASES)
def test_layer_matches_mxnet(name: str, hybridize: bool) -> None:
    assert check_case(name, hybridize)  # at least the output was compared


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", LOSS_CASES)
def test_loss_matches_mxnet(name: str, hybridize: bool) -> None:
    assert check_case(name, hybridize)  # at least the output was compared


@pytest.mark.parametrize("name", LAYER_CASES + LOSS_CASES)
def test_eager_and_hybridized_agree_to_1e5(name: str) -> None:
    assert check_agreement(name)
