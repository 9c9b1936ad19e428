"""Index and argument checks: each bad call raises naming the op and the values,
eagerly and when a hybridized block traces the op (MXNet 1.9's CHECKs)."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import nd
from hybrid.base import MXNetError
from hybrid.gluon import HybridBlock


class _OpBlock(HybridBlock):
    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def hybrid_forward(self, F, *xs):
        return self._fn(F, *xs)


def _run(fn, inputs, hybridize):
    """``fn(F, *inputs)`` eagerly (F = nd) or through a hybridized block."""
    if not hybridize:
        return fn(nd, *inputs)
    block = _OpBlock(fn)
    block.hybridize()
    return block(*inputs)


def _raises(fn, inputs, hybridize, *patterns, error=MXNetError):
    with pytest.raises(error) as info:
        out = _run(fn, inputs, hybridize)
        out.wait_to_read()
    text = str(info.value)
    for pattern in patterns:
        assert pattern in text, f"{pattern!r} not in {text!r}"


MODES = pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
SHAPES = [(3, 4), (2, 5, 3)]


# ------------------------------------------------------------------ indexing
@pytest.mark.parametrize("shape", SHAPES)
def test_getitem_with_out_of_range_int_array_raises_index_error(shape):
    x = nd.arange(int(np.prod(shape))).reshape(shape)
    n = shape[0]
    for key in ([0, n], [-n - 1], nd.array([0, n + 2]), np.array([n])):
        with pytest.raises(IndexError, match=f"out of bounds for axis 0 with size {n}"):
            x[key]
    with pytest.raises(IndexError, match=f"index {shape[1]} is out of bounds for axis 1"):
        x[[0, 1], [0, shape[1]]]
    with pytest.raises(IndexError, match="axis 1"):
        x[:, [shape[1] + 3]]
    with pytest.raises(IndexError, match=f"axis {len(shape) - 1}"):
        x[..., [shape[-1]]]


@pytest.mark.parametrize("shape", SHAPES)
def test_getitem_with_in_range_arrays_matches_numpy(shape):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    x = nd.array(a)
    n = shape[0]
    for key in ([0, -1], [n - 1, 0], np.array([-n, n - 1])):
        np.testing.assert_array_equal(x[key].asnumpy(), a[key])
    np.testing.assert_array_equal(x[[0, -1], [1, 0]].asnumpy(), a[[0, -1], [1, 0]])


@MODES
@pytest.mark.parametrize("bad", [4, -1, 7])
def test_take_raise_mode_refuses_out_of_range_indices(hybridize, bad):
    x = nd.arange(12).reshape((4, 3))
    idx = nd.array([0, bad])
    _raises(lambda F, a, i: F.take(a, i, mode="raise"), (x, idx), hybridize,
            "take", f"index {bad}", "size 4")


@MODES
def test_take_raise_mode_accepts_in_range_indices(hybridize):
    x = nd.arange(12).reshape((4, 3))
    out = _run(lambda F, a, i: F.take(a, i, mode="raise"), (x, nd.array([3, 0])), hybridize)
    np.testing.assert_array_equal(out.asnumpy(), x.asnumpy()[[3, 0]])


@MODES
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_take_refuses_an_axis_outside_the_input(hybridize, axis):
    x = nd.ones((3, 4))
    _raises(lambda F, a, i: F.take(a, i, axis=axis), (x, nd.array([0])), hybridize,
            "take", f"axis {axis}")


@pytest.mark.parametrize("shape", SHAPES)
def test_gather_nd_eager_raises_index_error_for_out_of_range(shape):
    x = nd.ones(shape)
    idx = nd.array([[0, shape[0]], [0, 0]])
    with pytest.raises(IndexError, match=f"index {shape[0]} is out of bounds for axis 0"):
        nd.gather_nd(x, idx)
    idx = nd.array([[0, 0], [1, -shape[1] - 1]])
    with pytest.raises(IndexError, match="axis 1"):
        nd.gather_nd(x, idx)


def test_gather_nd_negative_indices_count_from_the_end():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = nd.gather_nd(nd.array(a), nd.array([[0, -1], [0, -3]]))
    np.testing.assert_array_equal(out.asnumpy(), [a[0, 0], a[-1, -3]])


def test_gather_nd_compiled_gives_nan_not_a_clamped_element():
    # A compiled graph cannot see index values; out-of-range gives NaN, never a
    # neighbour's value (documented in gather_nd's docstring).
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = _run(lambda F, x, i: F.gather_nd(x, i), (nd.array(a), nd.array([[0, 5], [1, 1]])),
               hybridize=True).asnumpy()
    assert out[0] == a[0, 1] and np.isnan(out[1])


@MODES
def test_gather_nd_refuses_more_index_rows_than_dimensions(hybridize):
    _raises(lambda F, x, i: F.gather_nd(x, i), (nd.ones((3, 4)), nd.zeros((3, 1))), hybridize,
            "gather_nd", "(3, 1)")


@MODES
@pytest.mark.parametrize("axis", [2, -3])
def test_pick_refuses_an_axis_outside_the_input(hybridize, axis):
    _raises(lambda F, x, i: F.pick(x, i, axis=axis), (nd.ones((3, 4)), nd.zeros((3,))),
            hybridize, "pick", f"axis {axis}")


@MODES
def test_pick_has_no_raise_mode(hybridize):
    _raises(lambda F, x, i: F.pick(x, i, axis=1, mode="raise"),
            (nd.ones((3, 4)), nd.zeros((3,))), hybridize, "pick", "mode='raise'")


@MODES
@pytest.mark.parametrize("depth", [-1, -5])
def test_one_hot_refuses_negative_depth(hybridize, depth):
    _raises(lambda F, x: F.one_hot(x, depth=depth), (nd.array([0, 1]),), hybridize,
            "one_hot", f"depth={depth}")


def test_one_hot_depth_zero_gives_an_empty_axis():
    assert nd.one_hot(nd.array([0, 1]), depth=0).shape == (2, 0)


@MODES
@pytest.mark.parametrize("shape", SHAPES)
def test_topk_refuses_k_above_the_axis_length(hybridize, shape):
    n = shape[-1]
    _raises(lambda F, x: F.topk(x, k=n + 1), (nd.ones(shape),), hybridize,
            "topk", f"k = {n + 1}", f"at most {n}")


@MODES
def test_topk_k_equal_to_length_or_non_positive_returns_all(hybridize):
    a = np.random.RandomState(0).permutation(12).astype(np.float32).reshape(3, 4)
    expected = np.argsort(-a, axis=-1)
    for k in (4, 0, -1):
        out = _run(lambda F, x, k=k: F.topk(x, k=k), (nd.array(a),), hybridize)
        np.testing.assert_array_equal(out.asnumpy(), expected)


@MODES
def test_topk_refuses_an_axis_outside_the_input(hybridize):
    _raises(lambda F, x: F.topk(x, k=1, axis=2), (nd.ones((3, 4)),), hybridize,
            "topk", "axis 2")


@MODES
@pytest.mark.parametrize("begin,end,words", [
    (3, 1, ["begin=3", "end=1"]),
    (2, 2, ["begin=2", "end=2"]),
    (0, 5, ["end=5", "size 4"]),
    (5, None, ["begin=5"]),
    (-5, None, ["begin=-5"]),
])
def test_slice_axis_refuses_empty_or_out_of_range_slices(hybridize, begin, end, words):
    _raises(lambda F, x: F.slice_axis(x, axis=1, begin=begin, end=end), (nd.ones((3, 4)),),
            hybridize, "slice_axis", *words)


@MODES
def test_slice_axis_refuses_an_axis_outside_the_input(hybridize):
    _raises(lambda F, x: F.slice_axis(x, axis=2, begin=0, end=1), (nd.ones((3, 4)),),
            hybridize, "slice_axis", "axis 2")


@MODES
@pytest.mark.parametrize("begin,end", [(1, None), (-2, -1), (-4, 4), (0, 1)])
def test_slice_axis_accepts_negative_and_open_bounds(hybridize, begin, end):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = _run(lambda F, x: F.slice_axis(x, axis=-1, begin=begin, end=end), (nd.array(a),),
               hybridize)
    np.testing.assert_array_equal(out.asnumpy(), a[:, begin:end])


# ------------------------------------------------------------ axis arguments
@MODES
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [2, -3])
def test_softmax_family_refuses_an_axis_outside_the_input(hybridize, op, axis):
    _raises(lambda F, x: getattr(F, op)(x, axis=axis), (nd.ones((3, 4)),), hybridize,
            op, f"axis {axis}")


def _norm_layer(layer, x, hybridize):
    layer.initialize()
    if hybridize:
        layer.hybridize()
    return layer(x)


@MODES
@pytest.mark.parametrize("axis", [4, -5])
def test_batch_norm_refuses_an_axis_outside_the_input(hybridize, axis):
    c = nd.ones((3,))
    with pytest.raises(MXNetError, match=f"BatchNorm: channel axis {axis} is out of range"):
        if hybridize:
            _norm_layer(mx.gluon.nn.BatchNorm(axis=axis), nd.ones((2, 3, 4, 5)), True)
        else:
            nd.BatchNorm(nd.ones((2, 3, 4, 5)), c, c, c, c, axis=axis)


@MODES
@pytest.mark.parametrize("axis", [4, -5])
def test_layer_norm_refuses_an_axis_outside_the_input(hybridize, axis):
    c = nd.ones((5,))
    _raises(lambda F, x, g, b: F.LayerNorm(x, g, b, axis=axis), (nd.ones((2, 3, 4, 5)), c, c),
            hybridize, "LayerNorm", f"axis {axis}")
    with pytest.raises(MXNetError, match=f"LayerNorm: axis {axis} is out of range"):
        _norm_layer(mx.gluon.nn.LayerNorm(axis=axis), nd.ones((2, 3, 4, 5)), hybridize)


# --------------------------------------------------------- convolution family
def _conv(kernel, pad=None, dilate=None, stride=None, n_in=(1, 3, 2, 2)):
    w = nd.ones((2, n_in[1]) + kernel)
    extra = {k: v for k, v in (("pad", pad), ("dilate", dilate), ("stride", stride)) if v}
    fn = lambda F, x, w: F.Convolution(x, w, kernel=kernel, num_filter=2,  # noqa: E731
                                       no_bias=True, **extra)
    return fn, (nd.ones(n_in), w)


@MODES
@pytest.mark.parametrize("case", [
    dict(kernel=(3, 3)),
    dict(kernel=(3, 3), pad=(0, 1), n_in=(1, 3, 1, 1)),
    dict(kernel=(3, 3), dilate=(2, 2), n_in=(1, 3, 4, 4)),
    dict(kernel=(3,), n_in=(1, 3, 2)),
    dict(kernel=(2, 2, 3), n_in=(1, 3, 2, 2, 2)),
])
def test_convolution_refuses_a_kernel_larger_than_the_padded_input(hybridize, case):
    fn, inputs = _conv(**case)
    _raises(fn, inputs, hybridize, "Convolution", "exceeds the input",
            str(tuple(inputs[0].shape[2:])))


@MODES
def test_convolution_accepts_a_kernel_equal_to_the_padded_input(hybridize):
    fn, inputs = _conv((3, 3), pad=(1, 1), n_in=(1, 3, 1, 1))
    assert _run(fn, inputs, hybridize).shape == (1, 2, 1, 1)


@MODES
@pytest.mark.parametrize("what,value", [("pad", (-1, 0)), ("stride", (0, 1)), ("dilate", (1, 0))])
def test_convolution_refuses_negative_pad_and_zero_stride_or_dilate(hybridize, what, value):
    fn, inputs = _conv((3, 3), n_in=(1, 3, 5, 5), **{what: value})
    _raises(fn, inputs, hybridize, "Convolution", what, str(value))


def _pool(x, **kw):
    return lambda F, a: F.Pooling(a, **kw), (x,)


@MODES
@pytest.mark.parametrize("kw,n_in", [
    (dict(kernel=(3, 3), pool_type="max"), (1, 3, 2, 2)),
    (dict(kernel=(3, 3), pool_type="max", pooling_convention="full"), (1, 3, 2, 2)),
    (dict(kernel=(3,), pool_type="avg"), (1, 3, 2)),
    (dict(kernel=(3, 3, 3), pool_type="avg"), (1, 3, 2, 4, 4)),
])
def test_pooling_refuses_a_kernel_larger_than_the_padded_input(hybridize, kw, n_in):
    fn, inputs = _pool(nd.ones(n_in), **kw)
    _raises(fn, inputs, hybridize, "Pooling", f"kernel {kw['kernel']}", "exceeds the input")


@MODES
def test_pooling_refuses_negative_pad(hybridize):
    fn, inputs = _pool(nd.ones((1, 3, 5, 5)), kernel=(3, 3), pad=(-1, 0))
    _raises(fn, inputs, hybridize, "Pooling", "pad", "(-1, 0)")


@MODES
def test_pooling_accepts_kernel_equal_to_padded_input_and_global_pool(hybridize):
    fn, inputs = _pool(nd.ones((1, 3, 1, 1)), kernel=(3, 3), pad=(1, 1))
    assert _run(fn, inputs, hybridize).shape == (1, 3, 1, 1)
    fn, inputs = _pool(nd.ones((1, 3, 2, 2)), kernel=(3, 3), global_pool=True)
    assert _run(fn, inputs, hybridize).shape == (1, 3, 1, 1)


def _deconv(n_in=(1, 3, 4, 4), **kw):
    w = nd.ones((n_in[1], 2) + kw["kernel"])
    return (lambda F, x, w: F.Deconvolution(x, w, num_filter=2, no_bias=True, **kw),
            (nd.ones(n_in), w))


@MODES
@pytest.mark.parametrize("stride,adj", [((2, 2), (2, 2)), ((1, 1), (1, 1)), ((3, 2), (1, 2))])
def test_deconvolution_refuses_output_padding_not_below_stride(hybridize, stride, adj):
    fn, inputs = _deconv(kernel=(3, 3), stride=stride, adj=adj)
    _raises(fn, inputs, hybridize, "Deconvolution", str(adj), str(stride))


@MODES
def test_deconvolution_refuses_negative_pad_and_a_pad_leaving_no_output(hybridize):
    fn, inputs = _deconv(kernel=(3, 3), pad=(-1, -1))
    _raises(fn, inputs, hybridize, "Deconvolution", "pad", "(-1, -1)")
    fn, inputs = _deconv(n_in=(1, 3, 1, 1), kernel=(3, 3), pad=(2, 2))
    _raises(fn, inputs, hybridize, "Deconvolution", "pad (2, 2) is too large")


@pytest.mark.parametrize("stride", [2, 3])
def test_conv2d_transpose_refuses_output_padding_not_below_stride(stride):
    layer = mx.gluon.nn.Conv2DTranspose(2, 3, strides=stride, output_padding=stride,
                                        in_channels=3)
    layer.initialize()
    with pytest.raises(MXNetError, match="Deconvolution.*output_padding"):
        layer(nd.ones((1, 3, 4, 4)))


# ------------------------------------------------------------ scalar arguments
@MODES
@pytest.mark.parametrize("p", [1.5, -0.1])
def test_dropout_refuses_p_outside_zero_one(hybridize, p):
    _raises(lambda F, x: F.Dropout(x, p=p), (nd.ones((2, 3)),), hybridize, "Dropout",
            f"p={p}")


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
def test_dropout_p_one_is_refused_only_where_it_drops(hybridize):
    x = nd.ones((2, 3))
    out = _run(lambda F, a: F.Dropout(a, p=1.0), (x,), hybridize)
    np.testing.assert_array_equal(out.asnumpy(), x.asnumpy())  # predict mode: identity
    with mx.autograd.train_mode():
        _raises(lambda F, a: F.Dropout(a, p=1.0), (x,), hybridize, "Dropout", "p=1.0")


@MODES
@pytest.mark.parametrize("low,high", [(2.0, 1.0), (0.0, -1e-3)])
def test_random_uniform_refuses_low_above_high(hybridize, low, high):
    _raises(lambda F, x: F.random_uniform(low=low, high=high, shape=(3,)) + x, (nd.ones((3,)),),
            hybridize, "uniform", f"low={low}", f"high={high}")
    if not hybridize:
        for fn in (nd.random.uniform, mx.random.uniform):
            with pytest.raises(MXNetError, match="low must be less than or equal to high"):
                fn(low, high, shape=(2,))


@MODES
@pytest.mark.parametrize("scale", [-1.0, 0.0])
def test_random_normal_refuses_a_scale_that_is_not_positive(hybridize, scale):
    _raises(lambda F, x: F.random_normal(loc=0.0, scale=scale, shape=(3,)) + x,
            (nd.ones((3,)),), hybridize, "normal", f"scale={scale}")
    if not hybridize:
        for fn in (nd.random.normal, mx.random.normal):
            with pytest.raises(MXNetError, match="must be positive"):
                fn(0, scale, shape=(2,))


def test_random_uniform_accepts_low_equal_to_high():
    np.testing.assert_array_equal(nd.random.uniform(1, 1, shape=(3,)).asnumpy(), [1, 1, 1])


# -------------------------------------------------------------------- norm
# Expected values printed by MXNet 1.9.1 for the same inputs.
NORM_CASES = [
    ([1e30, 1e30], "float32", {}, [1.4142135e30]),
    ([[1e30, 1e30], [3, 4]], "float32", {"axis": 1}, [1.4142135e30, 5.0]),
    ([1e-30, 1e-30], "float32", {}, [1.4142136e-30]),
    ([1e-4, 1e-4], "float16", {}, [0.0001415]),
    ([30000, 40000], "float16", {}, [49984.0]),
    ([60000, 60000], "float16", {}, [np.inf]),
    ([0, 0, 0], "float32", {}, [0.0]),
    ([np.inf, 1], "float32", {}, [np.inf]),
    ([np.nan, 1], "float32", {}, [np.nan]),
]


@MODES
@pytest.mark.parametrize("values,dtype,kw,expected", NORM_CASES)
def test_l2_norm_overflows_only_where_the_norm_does(hybridize, values, dtype, kw, expected):
    out = _run(lambda F, x: F.norm(x, **kw), (nd.array(values, dtype=dtype),), hybridize)
    assert np.dtype(out.dtype) == np.dtype(dtype)
    np.testing.assert_allclose(out.asnumpy().astype(np.float64), expected, rtol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l2_norm_matches_the_plain_formula_and_its_gradient(seed):
    a = np.random.RandomState(seed).standard_normal((3, 5)).astype(np.float32)
    x = nd.array(a)
    x.attach_grad()
    with mx.autograd.record():
        y = nd.norm(x, axis=1)
    y.backward()
    ref = np.sqrt((a.astype(np.float64) ** 2).sum(axis=1))
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), a / ref[:, None], rtol=1e-5)
    big = nd.array(a * 1e30)
    big.attach_grad()
    with mx.autograd.record():
        z = nd.norm(big, axis=1)
    z.backward()
    np.testing.assert_allclose(z.asnumpy() / 1e30, ref, rtol=1e-5)
    np.testing.assert_allclose(big.grad.asnumpy(), a / ref[:, None], rtol=1e-5)
