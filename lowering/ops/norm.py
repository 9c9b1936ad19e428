"""Normalization operators: BatchNorm (with moving statistics as aux states),
LayerNorm, InstanceNorm and GroupNorm, plus the fused ``BatchNormWithReLU``.

Statistics are computed in float32 at least (float16 input is promoted for the
reduction and the result cast back), variances are biased (divided by the
number of reduced elements) as in MXNet.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..attrs import BOOL, FLOAT, INT, OPT_FLOAT, Attr
from ..registry import OpError, register
from .checks import axis_index


def _compute_dtype(x):
    return jnp.promote_types(x.dtype, jnp.float32)


def _channel_shape(ndim: int, axis: int) -> tuple[int, ...]:
    return tuple(-1 if i == axis else 1 for i in range(ndim))


# ---------------------------------------------------------------------------
# BatchNorm


def _bn_shapes(attrs, shapes):
    data = shapes[0]
    if data is None:
        return shapes
    channels = data[attrs["axis"] % len(data)]
    return [data] + [(channels,) if s is None else s for s in shapes[1:]]


def _bn_predict_call(x, gamma, beta, mean, var, axis, eps):
    """Predict-mode BatchNorm whose VJP is MXNet's (the training formula, moving stats)."""
    fn = jax.custom_vjp(lambda a, g, b, m, v: _bn_predict_plain(a, g, b, m, v, eps))

    def fwd(a, g, b, m, v):
        inv = jax.lax.rsqrt(v + eps)
        xh = (a - m) * inv
        return xh * g + b, (xh, g, inv, m, v)

    def bwd(res, dy):
        xh, g, inv, m, v = res
        axes = tuple(i for i in range(dy.ndim) if i != axis)
        dxh = dy * g
        dx = (dxh - jnp.mean(dxh, axis=axes, keepdims=True)
              - xh * jnp.mean(dxh * xh, axis=axes, keepdims=True)) * inv
        dgamma = jnp.sum(dy * xh, axis=axes, keepdims=True)
        dbeta = jnp.sum(dy, axis=axes, keepdims=True)
        return dx, dgamma, dbeta, jnp.zeros_like(m), jnp.zeros_like(v)

    fn.defvjp(fwd, bwd)
    return fn(x, gamma, beta, mean, var)


def _bn_predict_plain(x, gamma, beta, mean, var, eps):
    return (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta


def _batch_norm(data, gamma, beta, moving_mean, moving_var, *, eps, momentum, fix_gamma,
                use_global_stats, output_mean_var, axis, training):
    if data.ndim < 2:
        raise OpError("operator BatchNorm: input must have at least 2 dimensions")
    ax = axis_index("BatchNorm", axis, data.ndim, "channel axis")
    channels = data.shape[ax]
    for name, arr in (("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean),
                      ("moving_var", moving_var)):
        if tuple(arr.shape) != (channels,):
            raise OpError(f"operator BatchNorm: {name} shape {tuple(arr.shape)} must be "
                          f"({channels},) for input {tuple(data.shape)} and axis {axis}")
    cdt = _compute_dtype(data)
    shape = _channel_shape(data.ndim, ax)
    x = data.astype(cdt)
    g = jnp.ones((channels,), cdt) if fix_gamma else gamma.astype(cdt)
    g, b = g.reshape(shape), beta.astype(cdt).reshape(shape)
    rm = jax.lax.stop_gradient(moving_mean.astype(cdt))
    rv = jax.lax.stop_gradient(moving_var.astype(cdt))
    axes = tuple(i for i in range(data.ndim) if i != ax)
    if training and not use_global_stats:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean.reshape(shape)), axis=axes)
        out = (x - mean.reshape(shape)) * jax.lax.rsqrt(var.reshape(shape) + eps) * g + b
        batch_stats = (jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var))
    else:
        mean, var = rm, rv
        if use_global_stats:
            out = _bn_predict_plain(x, g, b, rm.reshape(shape), rv.reshape(shape), eps)
        else:
            out = _bn_predict_call(x, g, b, rm.reshape(shape), rv.reshape(shape), ax, eps)
        batch_stats = None
    out = out.astype(data.dtype)
    if output_mean_var:
        return (out, mean.astype(data.dtype), var.astype(data.dtype)), batch_stats
    return out, batch_stats


def _moving_average(attrs, old, batch_stats):
    """MXNet's moving-statistics update ``moving * momentum + batch * (1 - momentum)``,
    computed in float32 at least and stored in the aux state's dtype."""
    m = attrs["momentum"]
    return tuple((o.astype(s.dtype) * m + s * (1 - m)).astype(o.dtype)
                 for o, s in zip(old, batch_stats))


_BN_ATTRS = {
    "eps": Attr(FLOAT, 1e-3),
    "momentum": Attr(FLOAT, 0.9),
    "fix_gamma": Attr(BOOL, True),
    "use_global_stats": Attr(BOOL, False),
    "output_mean_var": Attr(BOOL, False),
    "axis": Attr(INT, 1),
    "cudnn_off": Attr(BOOL, False),
    "min_calib_range": Attr(OPT_FLOAT, None),
    "max_calib_range": Attr(OPT_FLOAT, None),
}


def _bn_outputs(attrs):
    return 3 if attrs["output_mean_var"] else 1


@register(
    "BatchNorm",
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    attrs=_BN_ATTRS,
    aux=("moving_mean", "moving_var"),
    num_outputs=_bn_outputs,
    needs_training=True,
    infer_shapes=_bn_shapes,
    aux_update=_moving_average,
    json_outputs=3,  # MXNet's graph also counts the saved mean and variance
)
def batch_norm(data, gamma, beta, moving_mean, moving_var, *, eps, momentum, fix_gamma,
               use_global_stats, output_mean_var, axis, cudnn_off, min_calib_range,
               max_calib_range, training):
    """Batch normalization over every axis but ``axis`` (channels, default 1).

    Training (autograd train mode, ``use_global_stats=False``): normalize with the
    batch mean and *biased* batch variance and return them as the batch statistics
    from which the aux states are updated, ``moving = moving * momentum + batch *
    (1 - momentum)``. As in MXNet, that update is committed when backward passes
    through the op, not in forward (see ``OpDef.aux_update``). Otherwise normalize
    with the moving statistics, which stay unchanged. ``fix_gamma=True`` (the
    op's default; Gluon passes ``not scale``) uses gamma = 1 (gamma gets no
    gradient). ``output_mean_var`` adds the mean and variance used as outputs.

    MXNet quirk kept: after a predict-mode forward with ``use_global_stats=False``
    the data gradient is the training-mode formula evaluated with the moving
    statistics, ``(dxh - mean(dxh) - xh*mean(dxh*xh)) / sqrt(var + eps)``; with
    ``use_global_stats=True`` it is the plain affine gradient.
    """
    return _batch_norm(data, gamma, beta, moving_mean, moving_var, eps=eps, momentum=momentum,
                       fix_gamma=fix_gamma, use_global_stats=use_global_stats,
                       output_mean_var=output_mean_var, axis=axis, training=training)


@register(
    "_contrib_BatchNormWithReLU",
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    attrs=_BN_ATTRS,
    aux=("moving_mean", "moving_var"),
    num_outputs=_bn_outputs,
    needs_training=True,
    infer_shapes=_bn_shapes,
    aux_update=_moving_average,
)
def batch_norm_with_relu(data, gamma, beta, moving_mean, moving_var, *, eps, momentum,
                         fix_gamma, use_global_stats, output_mean_var, axis, cudnn_off,
                         min_calib_range, max_calib_range, training):
    """``relu(BatchNorm(...))`` with BatchNorm's attributes and moving-statistics update
    (Gluon's ``nn.BatchNormReLU``)."""
    outs, batch_stats = _batch_norm(data, gamma, beta, moving_mean, moving_var, eps=eps,
                                momentum=momentum, fix_gamma=fix_gamma,
                                use_global_stats=use_global_stats,
                                output_mean_var=output_mean_var, axis=axis, training=training)
    if output_mean_var:
        return (jax.nn.relu(outs[0]),) + tuple(outs[1:]), batch_stats
    return jax.nn.relu(outs), batch_stats


# ---------------------------------------------------------------------------
# LayerNorm, InstanceNorm, GroupNorm


def _ln_shapes(attrs, shapes):
    data = shapes[0]
    if data is None:
        return shapes
    channels = data[attrs["axis"] % len(data)]
    return [data] + [(channels,) if s is None else s for s in shapes[1:]]


def _ln_outputs(attrs):
    return 3 if attrs["output_mean_var"] else 1


@register(
    "LayerNorm",
    inputs=("data", "gamma", "beta"),
    attrs={
        "axis": Attr(INT, -1),
        "eps": Attr(FLOAT, 1e-5),
        "output_mean_var": Attr(BOOL, False),
    },
    num_outputs=_ln_outputs,
    infer_shapes=_ln_shapes,
)
def layer_norm(data, gamma, beta, *, axis, eps, output_mean_var):
    """Normalize over ``axis`` only: ``(x - mean) / sqrt(var + eps) * gamma + beta``,
    gamma/beta of shape ``(data.shape[axis],)``. ``output_mean_var`` adds the mean and
    the standard deviation ``sqrt(var + eps)`` (reduced axis kept as size 1)."""
    ax = axis_index("LayerNorm", axis, data.ndim)
    channels = data.shape[ax]
    for name, arr in (("gamma", gamma), ("beta", beta)):
        if tuple(arr.shape) != (channels,):
            raise OpError(f"operator LayerNorm: {name} shape {tuple(arr.shape)} must be "
                          f"({channels},) for input {tuple(data.shape)} and axis {axis}")
    cdt = _compute_dtype(data)
    x = data.astype(cdt)
    shape = _channel_shape(data.ndim, ax)
    mean = jnp.mean(x, axis=ax, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=ax, keepdims=True)
    std = jnp.sqrt(var + eps)
    out = (x - mean) / std * gamma.astype(cdt).reshape(shape) + beta.astype(cdt).reshape(shape)
    out = out.astype(data.dtype)
    if output_mean_var:
        return out, mean.astype(data.dtype), std.astype(data.dtype)
    return out


def _in_shapes(attrs, shapes):
    data = shapes[0]
    if data is None:
        return shapes
    return [data] + [(data[1],) if s is None else s for s in shapes[1:]]


@register(
    "InstanceNorm",
    inputs=("data", "gamma", "beta"),
    attrs={"eps": Attr(FLOAT, 1e-3)},
    infer_shapes=_in_shapes,
)
def instance_norm(data, gamma, beta, *, eps):
    """Normalize each (sample, channel) over the spatial axes (2 and beyond), then scale
    and shift per channel: gamma/beta have shape ``(C,)``."""
    if data.ndim < 3:
        raise OpError(f"operator InstanceNorm: input must be at least 3-D, got "
                      f"{tuple(data.shape)}")
    channels = data.shape[1]
    for name, arr in (("gamma", gamma), ("beta", beta)):
        if tuple(arr.shape) != (channels,):
            raise OpError(f"operator InstanceNorm: {name} shape {tuple(arr.shape)} must be "
                          f"({channels},) for input {tuple(data.shape)}")
    cdt = _compute_dtype(data)
    x = data.astype(cdt)
    axes = tuple(range(2, data.ndim))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
    shape = _channel_shape(data.ndim, 1)
    out = (x - mean) * jax.lax.rsqrt(var + eps) * gamma.astype(cdt).reshape(shape) \
        + beta.astype(cdt).reshape(shape)
    return out.astype(data.dtype)


def _gn_shapes(attrs, shapes):
    return [shapes[0]] + [(attrs["num_groups"],) if s is None else s for s in shapes[1:]]


@register(
    "GroupNorm",
    inputs=("data", "gamma", "beta"),
    attrs={
        "num_groups": Attr(INT, 1),
        "eps": Attr(FLOAT, 1e-5),
        "output_mean_var": Attr(BOOL, False),
    },
    num_outputs=_ln_outputs,
    infer_shapes=_gn_shapes,
)
def group_norm(data, gamma, beta, *, num_groups, eps, output_mean_var):
    """Split the channels (axis 1) into ``num_groups`` groups and normalize each
    (sample, group) over its channels and spatial positions.

    MXNet 1.9: gamma and beta have shape ``(num_groups,)`` and scale/shift whole
    groups (not channels). ``output_mean_var`` adds the per-group mean and standard
    deviation, shape ``(N, num_groups)``.
    """
    n, c = data.shape[0], data.shape[1]
    if c % num_groups:
        raise OpError(f"operator GroupNorm: channels {c} must be divisible by num_groups "
                      f"{num_groups}")
    for name, arr in (("gamma", gamma), ("beta", beta)):
        if tuple(arr.shape) != (num_groups,):
            raise OpError(f"operator GroupNorm: {name} shape {tuple(arr.shape)} must be "
                          f"({num_groups},)")
    cdt = _compute_dtype(data)
    x = data.astype(cdt).reshape((n, num_groups, -1))
    mean = jnp.mean(x, axis=2, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=2, keepdims=True)
    std = jnp.sqrt(var + eps)
    xh = (x - mean) / std
    out = xh * gamma.astype(cdt).reshape((1, -1, 1)) + beta.astype(cdt).reshape((1, -1, 1))
    out = out.reshape(data.shape).astype(data.dtype)
    if output_mean_var:
        return out, mean[..., 0].astype(data.dtype), std[..., 0].astype(data.dtype)
    return out
