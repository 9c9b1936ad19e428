"""Normalization layers: BatchNorm, BatchNormReLU, LayerNorm, InstanceNorm, GroupNorm.

As in MXNet 1.9, BatchNorm's ``running_mean``/``running_var`` are parameters
with ``grad_req='null'``; the op treats them as auxiliary states, updating them
during a train-mode forward (and exporting them as ``aux:`` entries).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..block import HybridBlock


class _Normalization(HybridBlock):
    """What the normalization layers share: ``gamma``/``beta`` and the repr."""

    _kwargs: dict

    def _affine(self, shape: tuple, center: bool, scale: bool, beta_initializer,
                gamma_initializer, frozen_differentiable: bool = True) -> None:
        """``gamma`` and ``beta`` of ``shape``; ``scale``/``center`` False freezes them
        (``grad_req='null'``; BatchNorm also marks them non-differentiable)."""
        self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                     shape=shape, init=gamma_initializer,
                                     allow_deferred_init=True,
                                     differentiable=scale or frozen_differentiable)
        self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                    shape=shape, init=beta_initializer,
                                    allow_deferred_init=True,
                                    differentiable=center or frozen_differentiable)

    _repr_in_channels = True
    """Whether the repr ends with ``in_channels`` (not for GroupNorm)."""
    _unknown_in_channels: Any = 0
    """How MXNet's repr shows a not-yet-inferred channel count (BatchNorm: None)."""

    def __repr__(self) -> str:
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        if not self._repr_in_channels:
            return f"{self.__class__.__name__}({content})"
        in_channels = self.gamma.shape[0] or self._unknown_in_channels
        return f"{self.__class__.__name__}({content}, in_channels={in_channels})"


class BatchNorm(_Normalization):
    """Batch normalization over every axis but ``axis`` (MXNet ``BatchNorm``).

    Train mode (``autograd.record(train_mode=True)``) normalizes with the batch
    statistics and updates ``running = momentum * running + (1 - momentum) *
    batch`` (biased batch variance); predict mode uses the running statistics.
    ``scale=False`` freezes gamma at 1 (the op gets ``fix_gamma=True``);
    ``center=False`` freezes beta. ``use_global_stats=True`` always uses (and
    never updates) the running statistics.
    """

    _op_name = "BatchNorm"
    _unknown_in_channels = None

    def __init__(self, axis: int = 1, momentum: float = 0.9, epsilon: float = 1e-5,
                 center: bool = True, scale: bool = True, use_global_stats: bool = False,
                 beta_initializer="zeros", gamma_initializer="ones",
                 running_mean_initializer="zeros", running_variance_initializer="ones",
                 in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kwargs = {"axis": axis, "eps": epsilon, "momentum": momentum,
                        "fix_gamma": not scale, "use_global_stats": use_global_stats}
        self._axis = axis
        if in_channels != 0:
            self.in_channels = in_channels
        self._affine((in_channels,), center, scale, beta_initializer, gamma_initializer,
                     frozen_differentiable=False)
        self.running_mean = self.params.get("running_mean", grad_req="null",
                                            shape=(in_channels,),
                                            init=running_mean_initializer,
                                            allow_deferred_init=True, differentiable=False)
        self.running_var = self.params.get("running_var", grad_req="null",
                                           shape=(in_channels,),
                                           init=running_variance_initializer,
                                           allow_deferred_init=True, differentiable=False)

    def cast(self, dtype) -> None:
        """Cast the parameters; float16 becomes float32 (statistics stay in float32)."""
        if np.dtype(dtype).name == "float16":
            dtype = "float32"
        super().cast(dtype)

    def _op(self, F):
        return F.BatchNorm

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        return self._op(F)(x, gamma, beta, running_mean, running_var, name="fwd",
                           **self._kwargs)



class BatchNormReLU(BatchNorm):
    """``relu(BatchNorm(x))`` as one op (``contrib.BatchNormWithReLU``); same arguments
    as :class:`BatchNorm`."""

    def _op(self, F):
        return F.contrib.BatchNormWithReLU


class LayerNorm(_Normalization):
    """Normalize over ``axis`` (default the last) per sample, then ``* gamma + beta``
    with gamma/beta of shape ``(in_channels,)``."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 in_channels: int = 0, prefix: str | None = None, params=None) -> None:
        super().__init__(prefix=prefix, params=params)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
        self._affine((in_channels,), center, scale, beta_initializer, gamma_initializer)

    def hybrid_forward(self, F, data, gamma, beta):
        return F.LayerNorm(data, gamma=gamma, beta=beta, axis=self._axis, eps=self._epsilon)


class InstanceNorm(_Normalization):
    """Normalize each (sample, channel) over the spatial axes; ``scale`` defaults to False
    (gamma frozen at its initial value, 1)."""

    def __init__(self, axis: int = 1, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 in_channels: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
        self._affine((in_channels,), center, scale, beta_initializer, gamma_initializer)

    def hybrid_forward(self, F, x, gamma, beta):
        if self._axis == 1:
            return F.InstanceNorm(x, gamma, beta, name="fwd", eps=self._epsilon)
        x = F.swapaxes(x, 1, self._axis)
        out = F.InstanceNorm(x, gamma, beta, name="fwd", eps=self._epsilon)
        return F.swapaxes(out, 1, self._axis)


class GroupNorm(_Normalization):
    """Group normalization over ``num_groups`` channel groups (axis 1).

    MXNet 1.9: gamma and beta have shape ``(num_groups,)`` (one value per group).
    """

    _repr_in_channels = False

    def __init__(self, num_groups: int = 1, epsilon: float = 1e-5, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 prefix: str | None = None, params=None) -> None:
        super().__init__(prefix=prefix, params=params)
        self._kwargs = {"eps": epsilon, "num_groups": num_groups, "center": center,
                        "scale": scale}
        self._num_groups = num_groups
        self._epsilon = epsilon
        self._affine((num_groups,), center, scale, beta_initializer, gamma_initializer)

    def hybrid_forward(self, F, data, gamma, beta):
        return F.GroupNorm(data, gamma=gamma, beta=beta, num_groups=self._num_groups,
                           eps=self._epsilon)


__all__ = ["BatchNorm", "BatchNormReLU", "LayerNorm", "InstanceNorm", "GroupNorm"]
