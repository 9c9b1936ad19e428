"""Contrib optimizers (``mx.optimizer.contrib``): ``GroupAdaGrad``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .optimizer import Optimizer, _as, _py_clip, batched_prepare, register

__all__ = ["GroupAdaGrad"]


@register
class GroupAdaGrad(Optimizer):
    """AdaGrad with one accumulator per row of a 2-D weight (``mx.optimizer.contrib``)::

        g = clip(grad * rescale_grad, clip_gradient)
        history = history + mean(g * g, axis=1, keepdims=True)
        weight = weight - lr * g / sqrt(history + eps)

    Weight decay is not supported (``wd`` must be 0). State: ``history`` of shape
    ``(rows, 1)`` (float32).

    Parameters
    ----------
    eps : float
        Added to the history inside the square root.
    """

    def __init__(self, eps: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    @batched_prepare
    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """As the base class; raises ``AssertionError`` if the weight decay is not 0."""
        lr, wd, t = super().prepare_update(index)
        assert wd == 0, "Weight decay is not supported for GroupAdaGrad"
        return lr, wd, t

    def _check_prepared(self, lrs, wds, ts) -> None:
        assert not wds.any(), "Weight decay is not supported for GroupAdaGrad"

    def _state_arrays(self, index, weight):
        assert len(weight.shape) == 2
        return jnp.zeros((weight.shape[0], 1), jnp.float32)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        dt = weight.dtype
        g = _py_clip(grad * _as(rescale_grad, dt), self.clip_gradient)
        history = state + jnp.mean(jnp.square(g), axis=1, keepdims=True)
        div = _as(lr, dt) * g / jnp.sqrt(history + _as(self.float_stable_eps, history.dtype))
        return (weight - div).astype(dt), history
