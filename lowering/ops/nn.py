"""Neural-network operators emitted by the Gluon layers and losses.

``FullyConnected`` keeps MXNet's weight layout ``(num_hidden, in_units)`` and
flattens its input to 2-D unless ``flatten=False``. ``Dropout`` is the identity
unless training (or ``mode='always'``) and scales kept units by ``1/(1-p)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ..attrs import BOOL, DTYPE, FLOAT, INT, OPT_FLOAT, SHAPE, STR, Attr
from ..registry import OpError, register
from .checks import axis_index, uniform_dtype

# ---------------------------------------------------------------------------
# dense


def _fc_inputs(attrs):
    return ("data", "weight") if attrs["no_bias"] else ("data", "weight", "bias")


def _fc_shapes(attrs, shapes):
    data = shapes[0]
    if data is None:
        return shapes
    in_units = math.prod(data[1:]) if attrs["flatten"] else data[-1]
    out = list(shapes)
    out[1] = (attrs["num_hidden"], in_units)
    if len(out) > 2:
        out[2] = (attrs["num_hidden"],)
    return out


@register(
    "FullyConnected",
    inputs=("data", "weight", "bias"),
    attrs={
        "num_hidden": Attr(INT),
        "no_bias": Attr(BOOL, False),
        "flatten": Attr(BOOL, True),
    },
    active_inputs=_fc_inputs,
    infer_shapes=_fc_shapes,
)
def fully_connected(data, weight, bias=None, *, num_hidden, no_bias, flatten):
    """``y = x W^T + b`` with ``W`` of shape ``(num_hidden, in_units)``.

    With ``flatten=True`` the input is reshaped to ``(batch, -1)`` first;
    otherwise the product runs over the last axis and keeps the leading ones.
    """
    uniform_dtype("FullyConnected", data, weight=weight, bias=bias)
    x = data.reshape(data.shape[0], -1) if flatten else data
    if weight.shape != (num_hidden, x.shape[-1]):
        raise OpError(
            f"operator FullyConnected: input shape {tuple(data.shape)} needs weight shape "
            f"({num_hidden}, {x.shape[-1]}), got weight shape {tuple(weight.shape)}"
        )
    out = jnp.matmul(x, weight.T)
    if bias is not None:
        if bias.shape != (num_hidden,):
            raise OpError(
                f"operator FullyConnected: bias shape {tuple(bias.shape)} must be ({num_hidden},)"
            )
        out = out + bias
    return out


@register(
    "dot",
    inputs=("lhs", "rhs"),
    attrs={
        "transpose_a": Attr(BOOL, False),
        "transpose_b": Attr(BOOL, False),
        "forward_stype": Attr(STR, "None"),
    },
)
def dot(lhs, rhs, transpose_a, transpose_b, forward_stype):
    """Tensor dot: the last axis of ``lhs`` with the first axis of ``rhs``.

    The flags transpose the operand seen as a matrix: ``transpose_a`` views
    ``lhs`` as ``(shape[0], prod(shape[1:]))`` and transposes it, so the
    contraction runs over ``lhs``'s *first* axis and the output keeps
    ``lhs.shape[1:]`` in their original order; ``transpose_b`` contracts over
    ``rhs``'s *last* axis and keeps ``rhs.shape[:-1]``. In 2-D this is the
    ordinary matrix transpose. ``(4,3,2)`` and ``(5,4)`` with both flags give
    ``(3,2,5)``. Two 1-D inputs give shape ``(1,)``.
    """
    a_axis = 0 if transpose_a else lhs.ndim - 1
    b_axis = rhs.ndim - 1 if transpose_b else 0
    if lhs.shape[a_axis] != rhs.shape[b_axis]:
        raise OpError(
            f"operator dot: lhs {tuple(lhs.shape)} and rhs {tuple(rhs.shape)} do not match "
            f"(transpose_a={transpose_a}, transpose_b={transpose_b})"
        )
    if lhs.ndim == 1 and rhs.ndim == 1:
        return jnp.dot(lhs, rhs).reshape((1,))
    return jnp.tensordot(lhs, rhs, axes=([a_axis], [b_axis]))


@register(
    "batch_dot",
    inputs=("lhs", "rhs"),
    attrs={
        "transpose_a": Attr(BOOL, False),
        "transpose_b": Attr(BOOL, False),
        "forward_stype": Attr(STR, "None"),
    },
)
def batch_dot(lhs, rhs, transpose_a, transpose_b, forward_stype):
    """Batched matrix product over the leading axes; flags transpose the last two axes."""
    a = jnp.swapaxes(lhs, -1, -2) if transpose_a else lhs
    b = jnp.swapaxes(rhs, -1, -2) if transpose_b else rhs
    if a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        raise OpError(
            f"operator batch_dot: lhs {tuple(lhs.shape)} and rhs {tuple(rhs.shape)} do not match "
            f"(transpose_a={transpose_a}, transpose_b={transpose_b})"
        )
    return jnp.matmul(a, b)


@register(
    "_linalg_gemm2",
    inputs=("A", "B"),
    attrs={
        "transpose_a": Attr(BOOL, False),
        "transpose_b": Attr(BOOL, False),
        "alpha": Attr(FLOAT, 1.0),
        "axis": Attr(INT, -2),
    },
    aliases=("linalg_gemm2",),
)
def linalg_gemm2(A, B, transpose_a, transpose_b, alpha, axis):
    """``alpha * op(A) @ op(B)`` on the matrices formed by axes ``(axis, -1)``."""
    a = jnp.moveaxis(A, axis, -2)
    b = jnp.moveaxis(B, axis, -2)
    a = jnp.swapaxes(a, -1, -2) if transpose_a else a
    b = jnp.swapaxes(b, -1, -2) if transpose_b else b
    return jnp.moveaxis(alpha * jnp.matmul(a, b), -2, axis)


@register(
    "_linalg_gemm",
    inputs=("A", "B", "C"),
    attrs={
        "transpose_a": Attr(BOOL, False),
        "transpose_b": Attr(BOOL, False),
        "alpha": Attr(FLOAT, 1.0),
        "beta": Attr(FLOAT, 1.0),
        "axis": Attr(INT, -2),
    },
    aliases=("linalg_gemm",),
)
def linalg_gemm(A, B, C, transpose_a, transpose_b, alpha, beta, axis):
    """``alpha * op(A) @ op(B) + beta * C`` on the matrices formed by axes ``(axis, -1)``."""
    return linalg_gemm2(A, B, transpose_a, transpose_b, alpha, axis) + beta * C


def _la_reduced(out):
    # MXNet's LaReduceShape: a single matrix gives shape (1,), never a 0-d array.
    return out.reshape((1,)) if out.ndim == 0 else out


def _tri(A, lower):
    return jnp.tril(A) if lower else jnp.triu(A)


@register("_linalg_potrf", inputs=("A",), aliases=("linalg_potrf",))
def linalg_potrf(A):
    """Cholesky factor ``L`` (lower triangular, ``A = L L^T``) of each symmetric positive
    definite matrix on the last two axes."""
    return jnp.linalg.cholesky(A)


@register("_linalg_potri", inputs=("A",), aliases=("linalg_potri",))
def linalg_potri(A):
    """``(L L^T)^-1`` from a lower Cholesky factor ``L = A`` (only its lower triangle is read)."""
    L = jnp.tril(A)
    eye = jnp.broadcast_to(jnp.eye(A.shape[-1], dtype=A.dtype), A.shape)
    L_inv = lax.linalg.triangular_solve(L, eye, left_side=True, lower=True)
    return jnp.swapaxes(L_inv, -1, -2) @ L_inv


_TRI_ATTRS = {
    "transpose": Attr(BOOL, False),
    "rightside": Attr(BOOL, False),
    "lower": Attr(BOOL, True),
    "alpha": Attr(FLOAT, 1.0),
}


@register("_linalg_trmm", inputs=("A", "B"), attrs=_TRI_ATTRS, aliases=("linalg_trmm",))
def linalg_trmm(A, B, transpose, rightside, lower, alpha):
    """``alpha * op(A) @ B`` (or ``alpha * B @ op(A)`` with ``rightside``), ``A`` triangular:
    only its lower (``lower=True``) or upper triangle is used; ``op`` transposes if asked."""
    a = _tri(A, lower)
    a = jnp.swapaxes(a, -1, -2) if transpose else a
    return alpha * (B @ a if rightside else a @ B)


@register("_linalg_trsm", inputs=("A", "B"), attrs=_TRI_ATTRS, aliases=("linalg_trsm",))
def linalg_trsm(A, B, transpose, rightside, lower, alpha):
    """Solve ``op(A) X = alpha B`` (or ``X op(A) = alpha B`` with ``rightside``) for ``X``,
    ``A`` triangular (only the ``lower``/upper triangle is read)."""
    return lax.linalg.triangular_solve(
        _tri(A, lower), alpha * B, left_side=not rightside, lower=lower, transpose_a=transpose
    )


@register(
    "_linalg_syrk",
    inputs=("A",),
    attrs={"transpose": Attr(BOOL, False), "alpha": Attr(FLOAT, 1.0)},
    aliases=("linalg_syrk",),
)
def linalg_syrk(A, transpose, alpha):
    """``alpha * A @ A^T`` (``alpha * A^T @ A`` with ``transpose``)."""
    At = jnp.swapaxes(A, -1, -2)
    return alpha * (At @ A if transpose else A @ At)


@register("_linalg_sumlogdiag", inputs=("A",), aliases=("linalg_sumlogdiag",))
def linalg_sumlogdiag(A):
    """``sum(log(diag(A)))`` per matrix (a single matrix gives shape (1,))."""
    return _la_reduced(jnp.sum(jnp.log(jnp.diagonal(A, axis1=-2, axis2=-1)), axis=-1))


@register(
    "_linalg_extractdiag",
    inputs=("A",),
    attrs={"offset": Attr(INT, 0)},
    aliases=("linalg_extractdiag",),
)
def linalg_extractdiag(A, offset):
    """The ``offset`` diagonal of each matrix (positive: above the main one) as the last axis."""
    return jnp.diagonal(A, offset=offset, axis1=-2, axis2=-1)


@register(
    "_linalg_makediag",
    inputs=("A",),
    attrs={"offset": Attr(INT, 0)},
    aliases=("linalg_makediag",),
)
def linalg_makediag(A, offset):
    """Square matrices (size ``n + |offset|``) with the last axis of ``A`` on the ``offset``
    diagonal and zeros elsewhere."""
    n = A.shape[-1] + abs(offset)
    rows = jnp.arange(A.shape[-1]) + max(-offset, 0)
    cols = jnp.arange(A.shape[-1]) + max(offset, 0)
    out = jnp.zeros(A.shape[:-1] + (n, n), A.dtype)
    return out.at[..., rows, cols].set(A)


@register("_linalg_inverse", inputs=("A",), aliases=("linalg_inverse",))
def linalg_inverse(A):
    """Inverse of each square matrix on the last two axes."""
    return jnp.linalg.inv(A)


@register("_linalg_det", inputs=("A",), aliases=("linalg_det",))
def linalg_det(A):
    """Determinant of each square matrix (a single matrix gives shape (1,))."""
    return _la_reduced(jnp.linalg.det(A))


@register("_linalg_slogdet", inputs=("A",), num_outputs=2, aliases=("linalg_slogdet",))
def linalg_slogdet(A):
    """``(sign, log|det|)`` of each square matrix (a single matrix gives shapes (1,))."""
    sign, logdet = jnp.linalg.slogdet(A)
    return lax.stop_gradient(_la_reduced(sign)), _la_reduced(logdet)


# ---------------------------------------------------------------------------
# activations


def _softrelu(x):
    return jax.nn.softplus(x)


_ACTIVATIONS = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softrelu": _softrelu,
    "softsign": lambda x: x / (1 + jnp.abs(x)),
    "log_sigmoid": jax.nn.log_sigmoid,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)),
}


@register("Activation", attrs={"act_type": Attr(STR, choices=tuple(_ACTIVATIONS))})
def activation(data, act_type):
    """Element-wise ``relu``, ``sigmoid``, ``tanh``, ``softrelu`` (log(1+e^x)) or ``softsign``
    (plus ``log_sigmoid`` and ``mish``, which later MXNet versions accept)."""
    return _ACTIVATIONS[act_type](data)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


@jax.custom_vjp
def _selu(x):
    neg = _SELU_ALPHA * jnp.expm1(jnp.where(x > 0, 0, x))
    return _SELU_LAMBDA * jnp.where(x > 0, x, neg)


def _selu_fwd(x):
    y = _selu(x)
    return y, y


def _selu_bwd(y, g):
    # MXNet 1.9 (mshadow_op::selu_grad applied to the output y): lambda for y > 0,
    # lambda * (alpha + y) otherwise. For y <= 0 the true derivative is y + lambda*alpha;
    # MXNet's formula is kept because programs are checked against its gradients.
    slope = jnp.where(y > 0, _SELU_LAMBDA, _SELU_LAMBDA * (_SELU_ALPHA + y))
    return (g * slope.astype(g.dtype),)


_selu.defvjp(_selu_fwd, _selu_bwd)


def _leaky_inputs(attrs):
    return ("data", "gamma") if attrs["act_type"] == "prelu" else ("data",)


def _leaky_shapes(attrs, shapes):
    out = list(shapes)
    if attrs["act_type"] == "prelu" and shapes[0] is not None and out[1] is None:
        out[1] = (shapes[0][1],) if len(shapes[0]) > 1 else (1,)
    return out


@register(
    "LeakyReLU",
    inputs=("data", "gamma"),
    attrs={
        "act_type": Attr(STR, "leaky", ("leaky", "prelu", "elu", "selu", "gelu", "rrelu")),
        "slope": Attr(FLOAT, 0.25),
        "lower_bound": Attr(FLOAT, 0.125),
        "upper_bound": Attr(FLOAT, 0.334),
    },
    active_inputs=_leaky_inputs,
    infer_shapes=_leaky_shapes,
    needs_rng=True,
    needs_training=True,
)
def leaky_relu(data, gamma=None, *, act_type, slope, lower_bound, upper_bound, key, training):
    """Leaky family: ``leaky`` (slope*x below 0), ``prelu`` (learned ``gamma`` per channel,
    axis 1), ``elu`` (slope*(e^x-1)), ``selu``, ``gelu`` (erf form), ``rrelu`` (random slope
    in [lower, upper] when training, their mean otherwise).

    ``selu``'s gradient follows MXNet: ``lambda * (alpha + y)`` for outputs ``y <= 0``
    (not the true derivative ``y + lambda * alpha``)."""
    if act_type == "leaky":
        return jnp.where(data > 0, data, slope * data)
    if act_type == "prelu":
        if gamma.ndim == 1 and data.ndim > 1 and gamma.shape[0] == data.shape[1]:
            g = gamma.reshape((1, -1) + (1,) * (data.ndim - 2))
        else:
            g = gamma
        return jnp.where(data > 0, data, g * data)
    if act_type == "elu":
        # expm1 of where(), not of minimum(x, 0): at x == 0 the gradient is slope (MXNet)
        return jnp.where(data > 0, data, slope * jnp.expm1(jnp.where(data > 0, 0, data)))
    if act_type == "selu":
        return _selu(data)
    if act_type == "gelu":
        return 0.5 * data * (1 + lax.erf(data / math.sqrt(2.0)))
    if training:
        s = jax.random.uniform(key, data.shape, data.dtype, lower_bound, upper_bound)
    else:
        s = (lower_bound + upper_bound) / 2
    return jnp.where(data > 0, data, s * data)


def _softmax_inputs(attrs):
    return ("data", "length") if attrs["use_length"] else ("data",)


_SOFTMAX_ATTRS = {
    "axis": Attr(INT, -1),
    "temperature": Attr(OPT_FLOAT, None),
    "dtype": Attr(DTYPE, "None"),
    "use_length": Attr(BOOL, False),
}


def _softmax_family(name, sign, log):
    def op(data, length=None, *, axis, temperature, dtype, use_length):
        axis_index(name, axis, data.ndim)
        x = data if dtype in (None, "None") else data.astype(dtype)
        if temperature is not None and temperature != 1.0:
            x = x / temperature
        x = sign * x
        mask = None
        if use_length:
            positions = jnp.arange(x.shape[axis]).reshape(
                [-1 if i == axis % x.ndim else 1 for i in range(x.ndim)]
            )
            lens = jnp.expand_dims(length.astype(jnp.int32), axis % x.ndim)
            mask = positions < lens
        if log:
            out = jax.nn.log_softmax(x, axis=axis, where=mask)
        else:
            out = jax.nn.softmax(x, axis=axis, where=mask)
        if mask is not None:
            out = jnp.where(mask, out, 0)
        return out

    op.__doc__ = f"``{name}`` along ``axis`` with optional temperature and length masking."
    return op


register("softmax", inputs=("data", "length"), attrs=_SOFTMAX_ATTRS,
         active_inputs=_softmax_inputs)(_softmax_family("softmax", 1, False))
register("log_softmax", inputs=("data", "length"), attrs=_SOFTMAX_ATTRS,
         active_inputs=_softmax_inputs)(_softmax_family("log_softmax", 1, True))
register("softmin", inputs=("data", "length"), attrs=_SOFTMAX_ATTRS,
         active_inputs=_softmax_inputs)(_softmax_family("softmin", -1, False))


@register("softmax_cross_entropy", inputs=("data", "label"))
def softmax_cross_entropy(data, label):
    """Sum over the batch of ``-log softmax(data)[label]``; shape (1,)."""
    logp = jax.nn.log_softmax(data, axis=-1)
    picked = jnp.take_along_axis(logp, label.astype(jnp.int32)[:, None], axis=-1)
    return -jnp.sum(picked).reshape((1,))


def _dropout_attrs(attrs):
    if not 0 <= attrs["p"] <= 1:
        raise OpError(f"operator Dropout: p={attrs['p']} exceeds the bound [0, 1] (the "
                      "fraction of the input dropped)")


def keep_mask(key, prob: float, shape: tuple, dtype) -> jax.Array:
    """Bernoulli(``prob``) booleans drawn in ``dtype``'s precision (float32 for 16/32-bit).

    ``jax.random.bernoulli`` with a Python ``prob`` draws float64 uniforms (and passes
    float64 bounds) under 64-bit mode: 64-bit values inside a float32 program.
    """
    dt = jnp.promote_types(dtype, jnp.float32)
    u = jax.random.uniform(key, shape, dt, jnp.zeros((), dt), jnp.ones((), dt))
    return u < jnp.asarray(prob, dt)


@register(
    "Dropout",
    attrs={
        "p": Attr(FLOAT, 0.5),
        "mode": Attr(STR, "training", ("training", "always")),
        "axes": Attr(SHAPE, ()),
        "cudnn_off": Attr(BOOL, False),
    },
    needs_rng=True,
    needs_training=True,
    json_outputs=2,
    check_attrs=_dropout_attrs,
)
def dropout(data, p, mode, axes, cudnn_off, key, training):
    """Zero each unit with probability ``p`` and scale the rest by ``1/(1-p)``.

    Identity unless training (or ``mode='always'``). ``axes`` share one mask
    value along those axes (variational dropout). ``p`` must lie in ``[0, 1]``;
    ``p = 1`` is accepted where it is the identity, but refused where it would
    drop (MXNet 1.9 then returns NaN, ``0 * 1/(1-p)``).
    """
    if not (training or mode == "always") or p == 0:
        return data
    if p >= 1:
        raise OpError(f"operator Dropout: p={p} drops every unit (the kept ones would be "
                      "scaled by 1/(1-p) = inf); use p < 1")
    mask_shape = tuple(1 if i in {a % data.ndim for a in axes} else d
                       for i, d in enumerate(data.shape))
    keep = keep_mask(key, 1.0 - p, mask_shape, data.dtype)
    return jnp.where(keep, data / (1.0 - p), jnp.zeros((), data.dtype)).astype(data.dtype)


@register(
    "L2Normalization",
    attrs={
        "eps": Attr(FLOAT, 1e-10),
        "mode": Attr(STR, "instance", ("instance", "channel", "spatial")),
    },
)
def l2_normalization(data, eps, mode):
    """Divide by ``sqrt(sum(x^2) + eps)`` over all but axis 0 (instance), over axis 1
    (channel) or over axes 2+ (spatial)."""
    if mode == "instance":
        axes = tuple(range(1, data.ndim))
    elif mode == "channel":
        axes = (1,)
    else:
        axes = tuple(range(2, data.ndim))
    return data / jnp.sqrt(jnp.sum(data * data, axis=axes, keepdims=True) + eps)


def _embedding_shapes(attrs, shapes):
    out = list(shapes)
    out[1] = (attrs["input_dim"], attrs["output_dim"])
    return out


@register(
    "Embedding",
    inputs=("data", "weight"),
    attrs={
        "input_dim": Attr(INT),
        "output_dim": Attr(INT),
        "dtype": Attr(DTYPE, "float32"),
        "sparse_grad": Attr(BOOL, False),
    },
    infer_shapes=_embedding_shapes,
)
def embedding(data, weight, input_dim, output_dim, dtype, sparse_grad):
    """Rows of ``weight`` at the (clipped, possibly float) indices ``data``."""
    idx = jnp.clip(data.astype(jnp.int32), 0, input_dim - 1)
    return jnp.take(weight, idx, axis=0)
