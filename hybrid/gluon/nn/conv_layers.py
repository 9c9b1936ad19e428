"""Convolution, transposed convolution, pooling and reflection-padding layers (MXNet 1.9).

Convolution weights are ``(channels, in_channels / groups, *kernel_size)`` and
transposed-convolution weights ``(in_channels, channels / groups, *kernel_size)``;
``in_channels=0`` leaves that dim 0 until the first call infers it. Pooling
``strides=None`` means strides equal to ``pool_size``; ``ceil_mode=True`` is
MXNet's ``pooling_convention='full'``.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from ..block import HybridBlock
from .basic_layers import Activation


def _tuple(value: Any, n: int, what: str) -> tuple[int, ...]:
    if isinstance(value, Integral):
        return (int(value),) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"{what} must be an int or a tuple of {n} ints, got {value}")
    return value


class _Conv(HybridBlock):
    """Shared implementation of the (transposed) convolution layers.

    Subclasses give MXNet's public signature plus ``_ndim`` (spatial dims) and
    ``_layouts`` (accepted layouts); everything else happens here.
    """

    _ndim = 2
    _layouts: tuple[str, ...] = ("NCHW",)

    def __init__(self, channels: int, kernel_size, strides, padding, dilation, groups: int,
                 layout: str, in_channels: int = 0, activation: str | None = None,
                 use_bias: bool = True, weight_initializer=None, bias_initializer="zeros",
                 op_name: str = "Convolution", adj=None, prefix: str | None = None,
                 params=None) -> None:
        if layout not in self._layouts:
            accepted = " and ".join(repr(name) for name in self._layouts)
            raise ValueError(f"Only supports {accepted} layout for now")
        kernel_size = _tuple(kernel_size, self._ndim, "kernel_size")
        super().__init__(prefix=prefix, params=params)
        self.outpad = None
        with self.name_scope():
            self._channels = channels
            self._in_channels = in_channels
            n = len(kernel_size)
            strides = _tuple(strides, n, "strides")
            padding = _tuple(padding, n, "padding")
            dilation = _tuple(dilation, n, "dilation")
            self._op_name = op_name
            self._kwargs = {
                "kernel": tuple(kernel_size), "stride": strides, "dilate": dilation,
                "pad": padding, "num_filter": channels, "num_group": groups,
                "no_bias": not use_bias, "layout": layout}
            if adj is not None:
                self.outpad = self._kwargs["adj"] = _tuple(adj, n, "output_padding")
            if op_name == "Convolution":
                wshape = (channels, in_channels // groups if in_channels else 0,
                          *kernel_size)
            else:
                wshape = (in_channels, channels // groups, *kernel_size)
            self.weight = self.params.get("weight", shape=wshape, init=weight_initializer,
                                          allow_deferred_init=True)
            if use_bias:
                self.bias = self.params.get("bias", shape=(channels,), init=bias_initializer,
                                            allow_deferred_init=True)
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + "_") if activation else None

    def hybrid_forward(self, F, x, weight, bias=None):
        op = getattr(F, self._op_name)
        if bias is None:
            act = op(x, weight, name="fwd", **self._kwargs)
        else:
            act = op(x, weight, bias, name="fwd", **self._kwargs)
        if self.act is not None:
            act = self.act(act)
        return act

    def _alias(self) -> str:
        return "conv"

    def __repr__(self) -> str:
        k = self._kwargs
        s = "{name}({mapping}, kernel_size={kernel}, stride={stride}"
        n = len(k["kernel"])
        if k["pad"] != (0,) * n:
            s += ", padding={pad}"
        if k["dilate"] != (1,) * n:
            s += ", dilation={dilate}"
        if self.outpad is not None and self.outpad != (0,) * n:
            s += ", output_padding={out_pad}"
        if k["num_group"] != 1:
            s += ", groups={num_group}"
        if self.bias is None:
            s += ", bias=False"
        if self.act:
            s += f", {self.act}"
        s += ")"
        shape = self.weight.shape
        mapping = f"{shape[1] if shape[1] else None} -> {shape[0]}"
        return s.format(name=self.__class__.__name__, mapping=mapping,
                        out_pad=self.outpad, **k)


class Conv1D(_Conv):
    """1-D convolution over ``NCW`` input; weight ``(channels, in_channels/groups, k)``."""

    _ndim = 1
    _layouts = ("NCW",)

    def __init__(self, channels: int, kernel_size, strides=1, padding=0, dilation=1,
                 groups: int = 1, layout: str = "NCW", activation: str | None = None,
                 use_bias: bool = True, weight_initializer=None, bias_initializer="zeros",
                 in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, **kwargs)


class Conv2D(_Conv):
    """2-D convolution over ``NCHW`` input; weight ``(channels, in_channels/groups, kh, kw)``."""

    _ndim = 2
    _layouts = ("NCHW", "NHWC")

    def __init__(self, channels: int, kernel_size, strides=(1, 1), padding=(0, 0),
                 dilation=(1, 1), groups: int = 1, layout: str = "NCHW",
                 activation: str | None = None, use_bias: bool = True, weight_initializer=None,
                 bias_initializer="zeros", in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, **kwargs)


class Conv3D(_Conv):
    """3-D convolution over ``NCDHW`` input."""

    _ndim = 3
    _layouts = ("NCDHW", "NDHWC")

    def __init__(self, channels: int, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0),
                 dilation=(1, 1, 1), groups: int = 1, layout: str = "NCDHW",
                 activation: str | None = None, use_bias: bool = True, weight_initializer=None,
                 bias_initializer="zeros", in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, **kwargs)


class Conv1DTranspose(_Conv):
    """1-D transposed convolution; weight ``(in_channels, channels/groups, k)``; output
    length ``(L-1)*stride - 2*padding + dilation*(k-1) + 1 + output_padding``."""

    _ndim = 1
    _layouts = ("NCW",)

    def __init__(self, channels: int, kernel_size, strides=1, padding=0, output_padding=0,
                 dilation=1, groups: int = 1, layout: str = "NCW",
                 activation: str | None = None, use_bias: bool = True, weight_initializer=None,
                 bias_initializer="zeros", in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, op_name="Deconvolution", adj=output_padding,
                         **kwargs)


class Conv2DTranspose(_Conv):
    """2-D transposed convolution over ``NCHW`` input; weight
    ``(in_channels, channels/groups, kh, kw)``."""

    _ndim = 2
    _layouts = ("NCHW", "NHWC")

    def __init__(self, channels: int, kernel_size, strides=(1, 1), padding=(0, 0),
                 output_padding=(0, 0), dilation=(1, 1), groups: int = 1,
                 layout: str = "NCHW", activation: str | None = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", in_channels: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, op_name="Deconvolution", adj=output_padding,
                         **kwargs)


class Conv3DTranspose(_Conv):
    """3-D transposed convolution over ``NCDHW`` input."""

    _ndim = 3
    _layouts = ("NCDHW", "NDHWC")

    def __init__(self, channels: int, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0),
                 output_padding=(0, 0, 0), dilation=(1, 1, 1), groups: int = 1,
                 layout: str = "NCDHW", activation: str | None = None, use_bias: bool = True,
                 weight_initializer=None, bias_initializer="zeros", in_channels: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(channels, kernel_size, strides, padding, dilation, groups, layout,
                         in_channels, activation, use_bias, weight_initializer,
                         bias_initializer, op_name="Deconvolution", adj=output_padding,
                         **kwargs)


# ---------------------------------------------------------------------------
# pooling


class _Pooling(HybridBlock):
    """Shared implementation of the pooling layers (op ``Pooling``)."""

    def __init__(self, pool_size, strides, padding, ceil_mode: bool, global_pool: bool,
                 pool_type: str, layout: str, count_include_pad: bool | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if strides is None:
            strides = pool_size
        n = len(pool_size)
        self._kwargs = {
            "kernel": tuple(pool_size), "stride": _tuple(strides, n, "strides"),
            "pad": _tuple(padding, n, "padding"), "global_pool": global_pool,
            "pool_type": pool_type, "layout": layout,
            "pooling_convention": "full" if ceil_mode else "valid"}
        if count_include_pad is not None:
            self._kwargs["count_include_pad"] = count_include_pad

    def _alias(self) -> str:
        return "pool"

    def hybrid_forward(self, F, x):
        return F.Pooling(x, name="fwd", **self._kwargs)

    def __repr__(self) -> str:
        k = self._kwargs
        return (f"{self.__class__.__name__}(size={k['kernel']}, stride={k['stride']}, "
                f"padding={k['pad']}, ceil_mode={k['pooling_convention'] == 'full'}, "
                f"global_pool={k['global_pool']}, pool_type={k['pool_type']}, "
                f"layout={k['layout']})")


def _pool_args(pool_size, strides, n: int):
    pool_size = _tuple(pool_size, n, "pool_size")
    if strides is not None:
        strides = _tuple(strides, n, "strides")
    return pool_size, strides


class MaxPool1D(_Pooling):
    """Max pooling over ``NCW`` input (``strides=None``: ``pool_size``)."""

    def __init__(self, pool_size=2, strides=None, padding=0, layout: str = "NCW",
                 ceil_mode: bool = False, **kwargs: Any) -> None:
        if layout not in ("NCW", "NWC"):
            raise ValueError("Only NCW and NWC layouts are valid for 1D Pooling")
        pool_size, strides = _pool_args(pool_size, strides, 1)
        super().__init__(pool_size, strides, padding, ceil_mode, False, "max", layout,
                         **kwargs)


class MaxPool2D(_Pooling):
    """Max pooling over ``NCHW`` input."""

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, layout: str = "NCHW",
                 ceil_mode: bool = False, **kwargs: Any) -> None:
        if layout not in ("NCHW", "NHWC"):
            raise ValueError("Only NCHW and NHWC layouts are valid for 2D Pooling")
        pool_size, strides = _pool_args(pool_size, strides, 2)
        super().__init__(pool_size, strides, padding, ceil_mode, False, "max", layout,
                         **kwargs)


class MaxPool3D(_Pooling):
    """Max pooling over ``NCDHW`` input."""

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding=0, ceil_mode: bool = False,
                 layout: str = "NCDHW", **kwargs: Any) -> None:
        if layout not in ("NCDHW", "NDHWC"):
            raise ValueError("Only NCDHW and NDHWC layouts are valid for 3D Pooling")
        pool_size, strides = _pool_args(pool_size, strides, 3)
        super().__init__(pool_size, strides, padding, ceil_mode, False, "max", layout,
                         **kwargs)


class AvgPool1D(_Pooling):
    """Average pooling over ``NCW`` input; ``count_include_pad`` counts padded cells."""

    def __init__(self, pool_size=2, strides=None, padding=0, layout: str = "NCW",
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 **kwargs: Any) -> None:
        if layout not in ("NCW", "NWC"):
            raise ValueError("Only NCW and NWC layouts are valid for 1D Pooling")
        pool_size, strides = _pool_args(pool_size, strides, 1)
        super().__init__(pool_size, strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, **kwargs)


class AvgPool2D(_Pooling):
    """Average pooling over ``NCHW`` input; ``count_include_pad`` counts padded cells."""

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, ceil_mode: bool = False,
                 layout: str = "NCHW", count_include_pad: bool = True, **kwargs: Any) -> None:
        if layout not in ("NCHW", "NHWC"):
            raise ValueError("Only NCHW and NHWC layouts are valid for 2D Pooling")
        pool_size, strides = _pool_args(pool_size, strides, 2)
        super().__init__(pool_size, strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, **kwargs)


class AvgPool3D(_Pooling):
    """Average pooling over ``NCDHW`` input; ``count_include_pad`` counts padded cells."""

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding=0, ceil_mode: bool = False,
                 layout: str = "NCDHW", count_include_pad: bool = True,
                 **kwargs: Any) -> None:
        if layout not in ("NCDHW", "NDHWC"):
            raise ValueError("Only NCDHW and NDHWC layouts are valid for 3D Pooling")
        pool_size, strides = _pool_args(pool_size, strides, 3)
        super().__init__(pool_size, strides, padding, ceil_mode, False, "avg", layout,
                         count_include_pad, **kwargs)


def _global(n: int, pool_type: str, default_layout: str):
    """Base class of a global pooling layer: ``global_pool=True`` over ``n`` spatial dims."""

    class _GlobalPool(_Pooling):
        def __init__(self, layout: str = default_layout, **kwargs: Any) -> None:
            super().__init__((1,) * n, None, 0, True, True, pool_type, layout, **kwargs)

    return _GlobalPool


class GlobalMaxPool1D(_global(1, "max", "NCW")):
    """Max over the whole width: ``(N, C, W) -> (N, C, 1)``."""


class GlobalMaxPool2D(_global(2, "max", "NCHW")):
    """Max over each feature map: ``(N, C, H, W) -> (N, C, 1, 1)``."""


class GlobalMaxPool3D(_global(3, "max", "NCDHW")):
    """Max over each volume: ``(N, C, D, H, W) -> (N, C, 1, 1, 1)``."""


class GlobalAvgPool1D(_global(1, "avg", "NCW")):
    """Mean over the whole width: ``(N, C, W) -> (N, C, 1)``."""


class GlobalAvgPool2D(_global(2, "avg", "NCHW")):
    """Mean over each feature map: ``(N, C, H, W) -> (N, C, 1, 1)``."""


class GlobalAvgPool3D(_global(3, "avg", "NCDHW")):
    """Mean over each volume: ``(N, C, D, H, W) -> (N, C, 1, 1, 1)``."""


class ReflectionPad2D(HybridBlock):
    """Reflection padding of the two spatial axes of ``NCHW`` input.

    An int ``padding`` ``p`` means ``pad_width=(0, 0, 0, 0, p, p, p, p)``; an
    8-tuple is passed to ``Pad(mode='reflect')`` as is.
    """

    def __init__(self, padding=0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(padding, Integral):
            padding = (0, 0, 0, 0, padding, padding, padding, padding)
        if len(padding) != 8:
            raise ValueError(f"padding must be an int or an 8-tuple, got {padding}")
        self._padding = tuple(padding)

    def hybrid_forward(self, F, x):
        return F.pad(x, mode="reflect", pad_width=self._padding)


__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
           "Conv3DTranspose", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D",
           "AvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "ReflectionPad2D"]
