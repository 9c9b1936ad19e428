"""Convolution, transposed convolution, pooling, padding and nearest up-sampling.

Layouts are MXNet's channel-first ones (``NCW``, ``NCHW``, ``NCDHW``); the
channel-last layouts are GPU-only in MXNet 1.9 and are refused here. Empty
``stride``/``dilate``/``pad`` tuples mean 1/1/0 in every spatial dimension, as
in MXNet.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from ..attrs import BOOL, FLOAT, INT, OPT_BOOL, OPT_INT, SHAPE, STR, Attr, Kind
from ..registry import OpError, register
from .checks import non_negative, positive, uniform_dtype


def _opt_str(value):
    if value is None or (isinstance(value, str) and value.strip() in ("None", "")):
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


OPT_STR = Kind("str?", _opt_str)
"""A string or None (``layout``, ``cudnn_tune``)."""

_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def _spatial(op: str, value: tuple, n: int, fill: int, what: str) -> tuple[int, ...]:
    if not value:
        return (fill,) * n
    if len(value) != n:
        raise OpError(f"operator {op}: {what} {value} must have {n} entries (one per spatial "
                      "dimension of the kernel)")
    return tuple(value)


def _check_layout(op: str, layout: str | None, ndim: int) -> None:
    n = ndim - 2
    if n not in _LAYOUTS:
        raise OpError(f"operator {op}: input must be 3-D, 4-D or 5-D, got {ndim}-D")
    if layout is not None and layout != _LAYOUTS[n]:
        raise OpError(f"operator {op}: layout {layout!r} is not supported (MXNet on CPU "
                      f"supports {_LAYOUTS[n]} for {ndim}-D input)")


def _check_window(op: str, spatial, kernel, dilate, pad) -> None:
    """MXNet's "kernel size exceed input": the dilated kernel must fit the padded input."""
    for i, (d, k, dl, p) in enumerate(zip(spatial, kernel, dilate, pad)):
        span = dl * (k - 1) + 1
        if span > d + 2 * p:
            what = f"kernel {tuple(kernel)}" + (f" dilated by {tuple(dilate)}" if dl != 1 else "")
            raise OpError(f"operator {op}: {what} exceeds the input {tuple(spatial)} padded by "
                          f"{tuple(pad)}: spatial dimension {i} is {d + 2 * p} wide after "
                          f"padding, the kernel spans {span}")


def _conv_dims(n: int) -> tuple[str, str, str]:
    sp = "DHW"[3 - n:]
    return "NC" + sp, "OI" + sp, "NC" + sp


_CONV_ATTRS = {
    "kernel": Attr(SHAPE),
    "stride": Attr(SHAPE, ()),
    "dilate": Attr(SHAPE, ()),
    "pad": Attr(SHAPE, ()),
    "num_filter": Attr(INT),
    "num_group": Attr(INT, 1),
    "workspace": Attr(INT, 1024),
    "no_bias": Attr(BOOL, False),
    "cudnn_tune": Attr(OPT_STR, None, (None, "off", "limited_workspace", "fastest")),
    "cudnn_off": Attr(BOOL, False),
    "layout": Attr(OPT_STR, None, (None, "NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC")),
}


def _conv_inputs(attrs):
    return ("data", "weight") if attrs["no_bias"] else ("data", "weight", "bias")


def _conv_shapes(attrs, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None and out[1] is None:
        out[1] = (attrs["num_filter"], data[1] // attrs["num_group"], *attrs["kernel"])
    if len(out) > 2 and out[2] is None:
        out[2] = (attrs["num_filter"],)
    return out


@register(
    "Convolution",
    inputs=("data", "weight", "bias"),
    attrs=_CONV_ATTRS,
    active_inputs=_conv_inputs,
    infer_shapes=_conv_shapes,
)
def convolution(data, weight, bias=None, *, kernel, stride, dilate, pad, num_filter, num_group,
                workspace, no_bias, cudnn_tune, cudnn_off, layout):
    """N-D cross-correlation (MXNet's ``Convolution``), 1-D/2-D/3-D.

    ``weight`` is ``(num_filter, C / num_group, *kernel)``; ``pad`` is symmetric
    zero padding; ``dilate`` spaces the kernel taps; ``num_group`` splits the
    channels into independent groups. Output spatial size is
    ``(in + 2*pad - dilate*(k-1) - 1) // stride + 1``.
    """
    n = len(kernel)
    _check_layout("Convolution", layout, data.ndim)
    if data.ndim != n + 2:
        raise OpError(f"operator Convolution: a {n}-D kernel needs {n + 2}-D input, got "
                      f"shape {tuple(data.shape)}")
    expected = (num_filter, data.shape[1] // num_group, *kernel)
    if data.shape[1] % num_group or num_filter % num_group:
        raise OpError(f"operator Convolution: channels {data.shape[1]} and num_filter "
                      f"{num_filter} must be divisible by num_group {num_group}")
    if tuple(weight.shape) != expected:
        raise OpError(f"operator Convolution: input shape {tuple(data.shape)} needs weight shape "
                      f"{expected}, got {tuple(weight.shape)}")
    uniform_dtype("Convolution", data, weight=weight, bias=bias)
    stride = _spatial("Convolution", stride, n, 1, "stride")
    dilate = _spatial("Convolution", dilate, n, 1, "dilate")
    pad = _spatial("Convolution", pad, n, 0, "pad")
    positive("Convolution", "kernel", kernel)
    positive("Convolution", "stride", stride)
    positive("Convolution", "dilate", dilate)
    non_negative("Convolution", "pad", pad)
    _check_window("Convolution", data.shape[2:], kernel, dilate, pad)
    out = lax.conv_general_dilated(
        data, weight, window_strides=stride,
        padding=[(p, p) for p in pad], rhs_dilation=dilate,
        dimension_numbers=_conv_dims(n), feature_group_count=num_group,
    )
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * n)
    return out


def _deconv_geometry(attrs, in_spatial):
    """Per-dimension ``(pad, adj)`` of a Deconvolution, from ``target_shape`` if given."""
    kernel = attrs["kernel"]
    n = len(kernel)
    stride = _spatial("Deconvolution", attrs["stride"], n, 1, "stride")
    dilate = _spatial("Deconvolution", attrs["dilate"], n, 1, "dilate")
    pad = list(_spatial("Deconvolution", attrs["pad"], n, 0, "pad"))
    adj = list(_spatial("Deconvolution", attrs["adj"], n, 0, "adj"))
    target = attrs["target_shape"]
    if target and any(t > 0 for t in target):
        target = _spatial("Deconvolution", target, n, 0, "target_shape")
        for i in range(n):
            full = stride[i] * (in_spatial[i] - 1) + dilate[i] * (kernel[i] - 1) + 1
            if full < target[i]:
                raise OpError(f"operator Deconvolution: target_shape {tuple(target)} is too big")
            total = full - target[i]
            adj[i] = total % 2
            pad[i] = (total + 1) // 2
    return stride, dilate, tuple(pad), tuple(adj)


def _deconv_shapes(attrs, shapes):
    out = list(shapes)
    data = shapes[0]
    if data is not None and out[1] is None:
        out[1] = (data[1], attrs["num_filter"] // attrs["num_group"], *attrs["kernel"])
    if len(out) > 2 and out[2] is None:
        out[2] = (attrs["num_filter"],)
    return out


@register(
    "Deconvolution",
    inputs=("data", "weight", "bias"),
    attrs={
        **_CONV_ATTRS,
        "adj": Attr(SHAPE, ()),
        "target_shape": Attr(SHAPE, ()),
        "workspace": Attr(INT, 512),
        "no_bias": Attr(BOOL, True),
    },
    active_inputs=_conv_inputs,
    infer_shapes=_deconv_shapes,
)
def deconvolution(data, weight, bias=None, *, kernel, stride, dilate, pad, adj, target_shape,
                  num_filter, num_group, workspace, no_bias, cudnn_tune, cudnn_off, layout):
    """Transposed convolution (the gradient of ``Convolution`` w.r.t. its input).

    ``weight`` is ``(C_in, num_filter / num_group, *kernel)``. Output size is
    ``stride*(in-1) + dilate*(k-1) + 1 - 2*pad + adj``; a non-zero
    ``target_shape`` overrides ``pad``/``adj`` as MXNet does (``total = full -
    target``, ``adj = total % 2``, ``pad = (total + 1) // 2``). Note the op's
    ``no_bias`` defaults to True.
    """
    n = len(kernel)
    _check_layout("Deconvolution", layout, data.ndim)
    if data.ndim != n + 2:
        raise OpError(f"operator Deconvolution: a {n}-D kernel needs {n + 2}-D input, got "
                      f"shape {tuple(data.shape)}")
    c_in = data.shape[1]
    expected = (c_in, num_filter // num_group, *kernel)
    if c_in % num_group or num_filter % num_group:
        raise OpError(f"operator Deconvolution: channels {c_in} and num_filter {num_filter} "
                      f"must be divisible by num_group {num_group}")
    if tuple(weight.shape) != expected:
        raise OpError(f"operator Deconvolution: input shape {tuple(data.shape)} needs weight "
                      f"shape {expected}, got {tuple(weight.shape)}")
    uniform_dtype("Deconvolution", data, weight=weight, bias=bias)
    attrs = {"kernel": kernel, "stride": stride, "dilate": dilate, "pad": pad, "adj": adj,
             "target_shape": target_shape}
    stride, dilate, pad, adj = _deconv_geometry(attrs, data.shape[2:])
    positive("Deconvolution", "kernel", kernel)
    positive("Deconvolution", "stride", stride)
    positive("Deconvolution", "dilate", dilate)
    non_negative("Deconvolution", "pad", pad)
    non_negative("Deconvolution", "adj (output_padding)", adj)
    for i in range(n):
        if adj[i] >= stride[i]:
            raise OpError(f"operator Deconvolution: adj (output_padding) {tuple(adj)} must be "
                          f"smaller than stride {tuple(stride)} in every spatial dimension "
                          f"(dimension {i}: {adj[i]} >= {stride[i]})")
        size = stride[i] * (data.shape[2 + i] - 1) + dilate[i] * (kernel[i] - 1) + 1 \
            - 2 * pad[i] + adj[i]
        if size <= 0:
            raise OpError(f"operator Deconvolution: pad {tuple(pad)} is too large for input "
                          f"{tuple(data.shape)} and kernel {tuple(kernel)}: the output would "
                          f"be {size} wide in spatial dimension {i}")
    g = num_group
    # (C_in, F/g, *k) -> (F, C_in/g, *k), flipped spatially: a plain convolution of the
    # stride-dilated input computes the transposed one.
    w = weight.reshape((g, c_in // g, num_filter // g) + tuple(kernel))
    w = jnp.swapaxes(w, 1, 2).reshape((num_filter, c_in // g) + tuple(kernel))
    w = jnp.flip(w, axis=tuple(range(2, 2 + n)))
    padding = []
    for i in range(n):
        dk = dilate[i] * (kernel[i] - 1)
        padding.append((dk - pad[i], dk - pad[i] + adj[i]))
    out = lax.conv_general_dilated(
        data, w, window_strides=(1,) * n, padding=padding, lhs_dilation=stride,
        rhs_dilation=dilate, dimension_numbers=_conv_dims(n), feature_group_count=g,
    )
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * n)
    return out


# ---------------------------------------------------------------------------
# pooling


def _pool_out_size(size: int, k: int, s: int, p: int, convention: str) -> int:
    if convention == "valid":
        return (size + 2 * p - k) // s + 1
    if convention == "full":
        return math.ceil((size + 2 * p - k) / s) + 1
    return math.ceil((size + 2 * p) / s)  # same


def _avg_divisor(size, k, s, p, out, include_pad):
    """MXNet's per-window divisor along one dimension (pool.h)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    full = end - start
    clipped = np.minimum(end, size) - np.maximum(start, 0)
    return np.maximum(full if include_pad else clipped, 0)


@register(
    "Pooling",
    attrs={
        "kernel": Attr(SHAPE, ()),
        "pool_type": Attr(STR, "max", ("max", "avg", "sum", "lp")),
        "global_pool": Attr(BOOL, False),
        "cudnn_off": Attr(BOOL, False),
        "pooling_convention": Attr(STR, "valid", ("valid", "full", "same")),
        "stride": Attr(SHAPE, ()),
        "pad": Attr(SHAPE, ()),
        "p_value": Attr(OPT_INT, None),
        "count_include_pad": Attr(OPT_BOOL, None),
        "layout": Attr(OPT_STR, None, (None, "NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC")),
    },
    # MXNet's graph counts a hidden workspace output for max pooling.
    json_outputs=lambda attrs: 2 if attrs["pool_type"] == "max" else 1,
)
def pooling(data, *, kernel, pool_type, global_pool, cudnn_off, pooling_convention, stride, pad,
            p_value, count_include_pad, layout):
    """Max/average/sum/Lp pooling over the spatial axes of NCW/NCHW/NCDHW input.

    ``global_pool`` pools each whole feature map (output spatial size 1).
    ``pooling_convention='full'`` (Gluon's ``ceil_mode``) rounds the output size
    up; windows may then lie partly or entirely in the padding, and MXNet keeps
    them: max pooling gives ``-FLT_MAX`` (the dtype's lowest value) for a window
    with no real element. Average pooling divides by the window clipped to the
    padded input (``count_include_pad``, the default) or to the real input
    (``count_include_pad=False``; an empty window gives 0). ``'same'`` (1-D only,
    no pad) gives ``ceil(in / stride)`` outputs, windows clipped at the end.
    ``lp`` (``p_value`` 1, 2 or 3) computes ``sum|x|``, ``sqrt(sum x^2)`` or
    ``cbrt(sum x^3)`` as MXNet does.
    """
    _check_layout("Pooling", layout, data.ndim)
    n = data.ndim - 2
    spatial = data.shape[2:]
    if global_pool:
        kernel, stride, pad = tuple(spatial), (1,) * n, (0,) * n
        convention = "valid"
    else:
        kernel = _spatial("Pooling", kernel, n, 1, "kernel")
        stride = _spatial("Pooling", stride, n, 1, "stride")
        pad = _spatial("Pooling", pad, n, 0, "pad")
        positive("Pooling", "kernel", kernel)
        positive("Pooling", "stride", stride)
        non_negative("Pooling", "pad", pad)
        for i, (d, k, p) in enumerate(zip(spatial, kernel, pad)):
            if k > d + 2 * p:
                raise OpError(f"operator Pooling: kernel {tuple(kernel)} exceeds the input "
                              f"{tuple(spatial)} padded by {tuple(pad)}: spatial dimension {i} "
                              f"is {d + 2 * p} wide after padding")
        convention = pooling_convention
        if convention == "same" and (n != 1 or any(pad)):
            raise OpError("operator Pooling: pooling_convention='same' supports only 1-D "
                          "input without pad (as MXNet)")
    outs = [_pool_out_size(d, k, s, p, convention)
            for d, k, s, p in zip(spatial, kernel, stride, pad)]
    if any(o <= 0 for o in outs):
        raise OpError(f"operator Pooling: kernel {kernel} with pad {pad} is larger than the "
                      f"input {tuple(spatial)}")
    # pad explicitly: before by pad, after as far as the last window reaches
    widths = [(0, 0), (0, 0)]
    for d, k, s, p, o in zip(spatial, kernel, stride, pad, outs):
        widths.append((p, max((o - 1) * s + k - d - p, 0)))
    window = (1, 1) + tuple(kernel)
    strides = (1, 1) + tuple(stride)
    if pool_type == "max":
        low = (jnp.finfo(data.dtype).min if jnp.issubdtype(data.dtype, jnp.floating)
               else jnp.iinfo(data.dtype).min)
        x = jnp.pad(data, widths, constant_values=low)
        init = -jnp.inf if jnp.issubdtype(data.dtype, jnp.floating) else low
        out = lax.reduce_window(x, init, lax.max, window, strides, "VALID")
    else:
        if pool_type == "lp":
            if p_value not in (1, 2, 3):
                raise OpError(f"operator Pooling: lp pooling needs p_value 1, 2 or 3, got "
                              f"{p_value}")
            src = jnp.abs(data) if p_value == 1 else data ** p_value
        else:
            src = data
        x = jnp.pad(src, widths)
        out = lax.reduce_window(x, 0, lax.add, window, strides, "VALID")
        if pool_type == "avg":
            include = True if count_include_pad is None else count_include_pad
            div = np.ones((), np.float64)
            for d, k, s, p, o in zip(spatial, kernel, stride, pad, outs):
                per_dim = _avg_divisor(d, k, s, p, o, include).astype(np.float64)
                div = np.multiply.outer(div, per_dim)
            safe = np.where(div > 0, div, 1.0).astype(data.dtype)
            out = jnp.where(jnp.asarray(div > 0), out / jnp.asarray(safe), 0).astype(data.dtype)
        elif pool_type == "lp" and p_value == 2:
            out = jnp.sqrt(out)
        elif pool_type == "lp" and p_value == 3:
            out = jnp.cbrt(out)
    return out


# ---------------------------------------------------------------------------
# padding and up-sampling


@register(
    "Pad",
    attrs={
        "mode": Attr(STR, "constant", ("constant", "edge", "reflect")),
        "pad_width": Attr(SHAPE),
        "constant_value": Attr(FLOAT, 0.0),
    },
    aliases=("pad",),
)
def pad_op(data, *, mode, pad_width, constant_value):
    """Pad each axis by ``pad_width = (before0, after0, before1, after1, ...)``.

    ``constant`` fills with ``constant_value``; ``edge`` repeats the border value;
    ``reflect`` mirrors without repeating the border. MXNet accepts 4-D and 5-D
    input and pads only the spatial axes (the first four widths must be 0).
    """
    if len(pad_width) != 2 * data.ndim:
        raise OpError(f"operator Pad: pad_width {pad_width} must have 2 * ndim = "
                      f"{2 * data.ndim} entries for input shape {tuple(data.shape)}")
    widths = [(pad_width[2 * i], pad_width[2 * i + 1]) for i in range(data.ndim)]
    if mode == "constant":
        return jnp.pad(data, widths, constant_values=jnp.array(constant_value, data.dtype))
    if mode == "reflect":
        for axis, (lo, hi) in enumerate(widths):
            if lo >= data.shape[axis] or hi >= data.shape[axis]:
                raise OpError(f"operator Pad: reflect padding {(lo, hi)} must be smaller than "
                              f"axis {axis} of size {data.shape[axis]}")
        return jnp.pad(data, widths, mode="reflect")
    return jnp.pad(data, widths, mode="edge")


@register(
    "UpSampling",
    inputs=("*data",),
    attrs={
        "scale": Attr(INT),
        "num_filter": Attr(INT, 0),
        "sample_type": Attr(STR, "nearest", ("nearest", "bilinear")),
        "multi_input_mode": Attr(STR, "concat", ("concat", "sum")),
        "num_args": Attr(INT),
        "workspace": Attr(INT, 512),
    },
)
def upsampling(*data, scale, num_filter, sample_type, multi_input_mode, num_args, workspace):
    """Nearest-neighbour up-sampling of NCHW input by the integer ``scale``.

    With several inputs each is up-sampled to ``scale`` times the first input's
    size and they are concatenated on axis 1 (``multi_input_mode='concat'``)
    or summed. ``bilinear`` (a learned deconvolution in MXNet) is not supported.
    """
    if sample_type != "nearest":
        raise OpError("operator UpSampling: only sample_type='nearest' is supported")
    target_h = data[0].shape[2] * scale
    outs = []
    for x in data:
        if x.ndim != 4:
            raise OpError(f"operator UpSampling: input must be 4-D, got {tuple(x.shape)}")
        s = target_h // x.shape[2]
        outs.append(jnp.repeat(jnp.repeat(x, s, axis=2), s, axis=3))
    if len(outs) == 1:
        return outs[0]
    if multi_input_mode == "sum":
        total = outs[0]
        for o in outs[1:]:
            total = total + o
        return total
    return jnp.concatenate(outs, axis=1)
