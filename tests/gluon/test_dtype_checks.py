"""Layers refuse input whose dtype differs from their weights' (MXNet's "This layer
requires uniform type"), eagerly and hybridized, instead of promoting the network."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid import nd
from hybrid.base import MXNetError
from hybrid.gluon import nn, rnn

LAYERS = {
    "dense": (lambda: nn.Dense(3, in_units=4), (2, 4), "FullyConnected", "weight"),
    "dense_deferred": (lambda: nn.Dense(3), (2, 4), "FullyConnected", "weight"),
    "conv2d": (lambda: nn.Conv2D(2, 3, in_channels=4), (1, 4, 5, 5), "Convolution", "weight"),
    "conv1d_deferred": (lambda: nn.Conv1D(2, 3), (2, 4, 6), "Convolution", "weight"),
    "conv2d_transpose": (lambda: nn.Conv2DTranspose(2, 3, in_channels=4), (1, 4, 5, 5),
                         "Deconvolution", "weight"),
    "lstm": (lambda: rnn.LSTM(3, input_size=4), (5, 2, 4), "RNN", "parameters"),
    "gru_deferred": (lambda: rnn.GRU(3), (5, 2, 4), "RNN", "parameters"),
}

MISMATCHES = [("float64", "float32"), ("int32", "float32"), ("float32", "float16"),
              ("float16", "float32")]


def _layer(kind, net_dtype, hybridize):
    make, shape, op, slot = LAYERS[kind]
    layer = make()
    layer.initialize()
    if net_dtype != "float32":
        layer.cast(net_dtype)
    if hybridize:
        layer.hybridize()
    return layer, shape, op, slot


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("data_dtype,net_dtype", MISMATCHES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_refuses_data_of_another_dtype_than_its_weights(kind, data_dtype, net_dtype,
                                                              hybridize):
    layer, shape, op, slot = _layer(kind, net_dtype, hybridize)
    with pytest.raises(MXNetError) as info:
        layer(nd.ones(shape, dtype=data_dtype)).wait_to_read()
    text = str(info.value)
    for word in (op, "uniform type", f"'{data_dtype}'", f"{slot} is '{net_dtype}'"):
        assert word in text, f"{word!r} not in {text!r}"


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_runs_when_data_and_weights_share_a_dtype(kind, dtype, hybridize):
    layer, shape, _, _ = _layer(kind, dtype, hybridize)
    out = layer(nd.ones(shape, dtype=dtype))
    out = out[0] if isinstance(out, (list, tuple)) else out
    assert np.dtype(out.dtype) == np.dtype(dtype)
    assert np.isfinite(out.asnumpy()).all()


@pytest.mark.parametrize("bad", ["weight", "bias"])
def test_fully_connected_op_refuses_mixed_input_dtypes(bad):
    arrays = {"data": nd.ones((2, 4)), "weight": nd.ones((3, 4)), "bias": nd.ones((3,))}
    arrays[bad] = arrays[bad].astype("float16")
    with pytest.raises(MXNetError, match=f"FullyConnected.*{bad} is 'float16'"):
        nd.FullyConnected(arrays["data"], arrays["weight"], arrays["bias"], num_hidden=3)


def test_convolution_op_refuses_a_bias_of_another_dtype():
    with pytest.raises(MXNetError, match="Convolution.*bias is 'float16'"):
        nd.Convolution(nd.ones((1, 2, 4, 4)), nd.ones((3, 2, 3, 3)), nd.ones((3,), dtype="float16"),
                       kernel=(3, 3), num_filter=3)
