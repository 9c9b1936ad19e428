"""Convolution, pooling, normalization, embedding and activation layers against MXNet 1.9.1.

Outputs, gradients and (BatchNorm) running statistics after one forward, eager and
hybridized; eager-vs-hybridized agreement; float64 finite-difference gradient checks.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd
from tests.gluon.golden_layers import check_agreement, check_case
from tests.numeric import central_difference

CONV_CASES = [
    "conv1d", "conv2d_basic", "conv2d_stride_pad_dilate", "conv2d_groups_nobias",
    "conv2d_depthwise_act", "conv3d", "conv1d_transpose", "conv2d_transpose_basic",
    "conv2d_transpose_outpad", "conv2d_transpose_groups_dilate", "conv3d_transpose",
]
POOL_CASES = [
    "maxpool1d", "maxpool2d", "maxpool2d_ceil", "maxpool3d", "avgpool1d", "avgpool2d",
    "avgpool2d_ceil_pad", "avgpool2d_nocountpad", "avgpool2d_nocountpad_ceil", "avgpool3d",
    "maxpool2d_ceil_window_all_padding", "avgpool2d_ceil_window_all_padding",
    "global_avgpool1d", "global_avgpool2d", "global_maxpool2d", "global_maxpool3d",
]
NORM_CASES = [
    "batchnorm_train", "batchnorm_predict", "batchnorm_axis_last_train",
    "batchnorm_axis_last_predict", "batchnorm_no_center_scale", "batchnorm_use_global_stats",
    "batchnorm_relu_train", "batchnorm_relu_predict", "layernorm", "layernorm_axis1",
    "instancenorm", "instancenorm_noscale", "groupnorm",
]
OTHER_CASES = [
    "embedding", "leakyrelu", "prelu", "prelu_channels", "elu", "selu", "gelu", "swish",
    "reflectionpad2d", "hybridsequential_train", "hybridsequential_predict",
]
ALL_CASES = CONV_CASES + POOL_CASES + NORM_CASES + OTHER_CASES


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("name", ALL_CASES)
def test_layer_matches_mxnet(name: str, hybridize: bool) -> None:
    assert check_case(name, hybridize)  # at least the output was compared


@pytest.mark.parametrize("name", ALL_CASES)
def test_eager_and_hybridized_agree_to_1e5(name: str) -> None:
    assert check_agreement(name)


def test_golden_case_list_is_complete() -> None:
    """Every manifest layer case whose api is one of this family's layers is tested here."""
    from tests.golden_cases import cases

    mine = {"Conv", "Pool", "BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm", "Embedding",
            "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Swish", "ReflectionPad2D",
            "HybridSequential"}
    wanted = {c["name"] for c in cases("layer")
              if c["api"].startswith("gluon.nn.") and any(m in c["api"] for m in mine)}
    assert wanted == set(ALL_CASES)


# ---------------------------------------------------------------------------
# float64 finite differences


def _fd_check(block, x: np.ndarray, train: bool, seed: int = 0) -> None:
    """Compare ``d sum(out * w) / d x`` against central differences in float64."""
    rng = np.random.default_rng(seed)
    block.initialize()
    block.cast("float64")
    xin = mx.nd.array(x, dtype="float64")
    xin.attach_grad()
    with autograd.record(train_mode=train):
        out = block(xin)
    w = rng.standard_normal(out.shape)
    out.backward(mx.nd.array(w, dtype="float64"))
    analytic = xin.grad.asnumpy()
    params = block.collect_params()
    aux_names = [n for n in params if n.endswith(("running_mean", "running_var"))]
    saved = {n: params[n].data().asnumpy().copy() for n in aux_names}

    def loss(arr: np.ndarray) -> float:
        for n, v in saved.items():
            params[n].set_data(v)
        with autograd.train_mode() if train else autograd.predict_mode():
            y = block(mx.nd.array(arr, dtype="float64")).asnumpy()
        return float(np.sum(y * w))

    np.testing.assert_allclose(analytic, central_difference(loss, x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("make, shape, train", [
    (lambda: mx.gluon.nn.Conv2D(3, 3, strides=2, padding=1), (1, 2, 4, 4), True),
    (lambda: mx.gluon.nn.Conv1DTranspose(2, 3, strides=2, padding=1, output_padding=1),
     (1, 2, 4), True),
    (lambda: mx.gluon.nn.AvgPool2D(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
     (1, 2, 6, 6), True),
    (lambda: mx.gluon.nn.BatchNorm(momentum=0.8, epsilon=1e-3), (4, 3, 2), True),
    (lambda: mx.gluon.nn.LayerNorm(), (3, 5), True),
], ids=["conv2d", "conv1d_transpose", "avgpool2d", "batchnorm_train", "layernorm"])
def test_float64_finite_differences(make, shape, train: bool, hybridize: bool) -> None:
    block = make()
    if hybridize:
        block.hybridize()
    x = np.random.default_rng(1).standard_normal(shape)
    _fd_check(block, x, train)


# ---------------------------------------------------------------------------
# op semantics the golden cases do not reach


def _impl(name: str):
    from lowering import registry

    op = registry.get(name)
    return lambda *args, **attrs: op.impl(*args, **op.parse_attrs(attrs))


def test_deconvolution_is_the_transpose_of_convolution() -> None:
    import jax
    import jax.numpy as jnp

    from lowering import x64

    rng = np.random.default_rng(0)
    with x64.scope():  # float64 for a tight comparison, without hybrid's front end
        x = jnp.asarray(rng.standard_normal((2, 4, 5, 6)), jnp.float64)
        w = jnp.asarray(rng.standard_normal((4, 3, 3, 2)), jnp.float64)  # (C_in, F/g, kh, kw)
        attrs = {"kernel": (3, 2), "stride": (2, 1), "pad": (1, 1), "dilate": (2, 1),
                 "num_group": 2}
        y = _impl("Deconvolution")(x, w, num_filter=6, adj=(1, 0), **attrs)
        z = jnp.zeros(y.shape, jnp.float64)
        conv = _impl("Convolution")
        _, vjp = jax.vjp(lambda a: conv(a, w, num_filter=4, no_bias=True, **attrs), z)
        assert y.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(y), np.asarray(vjp(x)[0]), rtol=1e-10,
                                   atol=1e-10)


def test_deconvolution_target_shape_sets_pad_and_adj() -> None:
    rng = np.random.default_rng(0)
    x = mx.nd.array(rng.standard_normal((1, 2, 5, 5)))
    w = mx.nd.array(rng.standard_normal((2, 3, 3, 3)))
    a = mx.nd.Deconvolution(x, w, kernel=(3, 3), num_filter=3, stride=(2, 2),
                            target_shape=(10, 10))
    b = mx.nd.Deconvolution(x, w, kernel=(3, 3), num_filter=3, stride=(2, 2), pad=(1, 1),
                            adj=(1, 1))
    assert a.shape == (1, 3, 10, 10)
    np.testing.assert_allclose(a.asnumpy(), b.asnumpy())


def _brute_pool(x, k, s, p, out_len, reduce):
    res = np.zeros(x.shape[:2] + (out_len,))
    for o in range(out_len):
        lo, hi = max(o * s - p, 0), min(o * s - p + k, x.shape[2])
        res[..., o] = reduce(x[..., lo:hi])
    return res


@pytest.mark.parametrize("pool_type, p_value, reduce", [
    ("sum", None, lambda w: w.sum(-1)),
    ("lp", 1, lambda w: np.abs(w).sum(-1)),
    ("lp", 2, lambda w: np.sqrt((w ** 2).sum(-1))),
    ("max", None, lambda w: w.max(-1)),
])
@pytest.mark.parametrize("convention, size, pad, out_len", [
    ("valid", 10, 1, 5), ("full", 10, 1, 6), ("same", 9, 0, 5),
])
def test_pooling_1d_against_brute_force(pool_type, p_value, reduce, convention, size, pad,
                                        out_len) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, size))
    kwargs = {"p_value": p_value} if p_value else {}
    out = mx.nd.Pooling(mx.nd.array(x, dtype="float64"), kernel=(3,), stride=(2,), pad=(pad,),
                        pool_type=pool_type, pooling_convention=convention, **kwargs)
    np.testing.assert_allclose(out.asnumpy(), _brute_pool(x, 3, 2, pad, out_len, reduce),
                               rtol=1e-10)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_modes_match_numpy(mode: str) -> None:
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)
    out = mx.nd.pad(mx.nd.array(x), mode=mode, pad_width=(0, 0, 0, 0, 1, 2, 3, 1),
                    **({"constant_value": 1.5} if mode == "constant" else {}))
    extra = {"constant_values": 1.5} if mode == "constant" else {}
    np.testing.assert_array_equal(out.asnumpy(),
                                  np.pad(x, ((0, 0), (0, 0), (1, 2), (3, 1)), mode, **extra))


def test_upsampling_nearest() -> None:
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    out = mx.nd.UpSampling(mx.nd.array(x), scale=2, sample_type="nearest")
    np.testing.assert_array_equal(out.asnumpy(), x.repeat(2, axis=2).repeat(2, axis=3))


def test_norm_ops_output_mean_var() -> None:
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    out, mean, std = mx.nd.LayerNorm(mx.nd.array(x), mx.nd.ones((6,)), mx.nd.zeros((6,)),
                                     output_mean_var=True)
    np.testing.assert_allclose(mean.asnumpy()[:, 0], x.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.asnumpy()[:, 0], np.sqrt(x.var(1) + 1e-5), rtol=1e-5)
    outs = mx.nd.BatchNorm(mx.nd.array(x), mx.nd.ones((6,)), mx.nd.zeros((6,)),
                           mx.nd.zeros((6,)), mx.nd.ones((6,)), output_mean_var=True)
    assert len(outs) == 3
    single = mx.nd.BatchNorm(mx.nd.array(x), mx.nd.ones((6,)), mx.nd.zeros((6,)),
                             mx.nd.zeros((6,)), mx.nd.ones((6,)))
    assert isinstance(single, mx.nd.NDArray)


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
def test_deferred_shapes_and_names(hybridize: bool) -> None:
    nn = mx.gluon.nn
    net = nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, padding=1), nn.BatchNorm(), nn.Conv2DTranspose(6, 2, groups=2),
                nn.InstanceNorm(), nn.LayerNorm(axis=1), nn.GroupNorm(3), nn.MaxPool2D(),
                nn.GlobalAvgPool2D())
    net.initialize()
    if hybridize:
        net.hybridize()
    x = mx.nd.array(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    with autograd.record():
        y = net(x)
    assert y.shape == (2, 6, 1, 1)
    shapes = {k: v.shape for k, v in net.collect_params().items()}
    assert shapes == {
        "net_conv0_weight": (4, 3, 3, 3), "net_conv0_bias": (4,),
        "net_batchnorm0_gamma": (4,), "net_batchnorm0_beta": (4,),
        "net_batchnorm0_running_mean": (4,), "net_batchnorm0_running_var": (4,),
        "net_conv1_weight": (4, 3, 2, 2), "net_conv1_bias": (6,),
        "net_instancenorm0_gamma": (6,), "net_instancenorm0_beta": (6,),
        "net_layernorm0_gamma": (6,), "net_layernorm0_beta": (6,),
        "net_groupnorm0_gamma": (3,), "net_groupnorm0_beta": (3,),
    }
    params = net.collect_params()
    assert params["net_batchnorm0_running_mean"].grad_req == "null"
    assert params["net_instancenorm0_gamma"].grad_req == "null"
    # as in MXNet, the running statistics change in backward, not in the recorded forward
    running = params["net_batchnorm0_running_mean"]
    np.testing.assert_array_equal(running.data().asnumpy(), np.zeros(4, np.float32))
    y.backward()
    assert np.abs(running.data().asnumpy()).sum() > 0
    sym = net(mx.sym.var("data"))
    assert sym.list_auxiliary_states() == ["net_batchnorm0_running_mean",
                                           "net_batchnorm0_running_var"]
