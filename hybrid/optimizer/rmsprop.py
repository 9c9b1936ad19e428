"""Adaptive per-coordinate optimizers: ``RMSProp``, ``AdaGrad``, ``AdaDelta``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .optimizer import Optimizer, _as, _op, _py_clip, register

__all__ = ["RMSProp", "AdaGrad", "AdaDelta"]


def _zeros32(weight) -> jnp.ndarray:
    # MXNet creates these states with nd.zeros' default dtype, float32.
    return jnp.zeros(weight.shape, jnp.float32)


@register
class RMSProp(Optimizer):
    """RMSProp (``mx.optimizer.RMSProp``).

    ``centered=False`` (Tieleman & Hinton, ``rmsprop_update``)::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        n = (1 - gamma1) * g * g + gamma1 * n
        weight = clip(weight - lr * g / sqrt(n + epsilon), clip_weights)

    ``centered=True`` (Graves 2013, ``rmspropalex_update``) also tracks the mean gradient
    ``g_avg`` and a momentum term ``delta = gamma2 * delta - lr * g / sqrt(n - g_avg**2 +
    epsilon)``; ``weight = clip(weight + delta, clip_weights)``.

    State: ``(n,)`` or ``(n, g_avg, delta)``.
    """

    def __init__(self, learning_rate: float = 0.001, gamma1: float = 0.9, gamma2: float = 0.9,
                 epsilon: float = 1e-8, centered: bool = False, clip_weights: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.centered = centered
        self.epsilon = epsilon
        self.clip_weights = clip_weights

    def _state_arrays(self, index, weight):
        if self.centered:
            return (_zeros32(weight), _zeros32(weight), _zeros32(weight))
        return (_zeros32(weight),)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        kwargs = {
            "lr": lr, "wd": wd, "gamma1": self.gamma1, "epsilon": self.epsilon,
            "rescale_grad": rescale_grad, "clip_gradient": self._clip_attr(),
            "clip_weights": float(self.clip_weights) if self.clip_weights else -1.0,
        }
        if not self.centered:
            (n,) = state
            new_w, new_n = _op("rmsprop_update")(weight, grad, n, **kwargs)
            return new_w, (new_n,)
        n, g, delta = state
        new_w, new_n, new_g, new_delta = _op("rmspropalex_update")(
            weight, grad, n, g, delta, gamma2=self.gamma2, **kwargs
        )
        return new_w, (new_n, new_g, new_delta)


@register
class AdaGrad(Optimizer):
    """AdaGrad (``mx.optimizer.AdaGrad``), Python-side formula::

        g = clip(grad * rescale_grad, clip_gradient)
        history = history + g * g
        weight = weight - lr * (g / sqrt(history + eps) + wd * weight)

    State: ``history`` (float32).

    Parameters
    ----------
    eps : float
        Added to the history inside the square root.
    """

    def __init__(self, eps: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def _state_arrays(self, index, weight):
        return _zeros32(weight)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        dt = weight.dtype
        g = _py_clip(grad * _as(rescale_grad, dt), self.clip_gradient)
        history = state + jnp.square(g)
        div = g / jnp.sqrt(history + _as(self.float_stable_eps, history.dtype))
        new_w = weight + (div + weight * _as(wd, dt)) * -_as(lr, dt)
        return new_w.astype(dt), history


@register
class AdaDelta(Optimizer):
    """AdaDelta (``mx.optimizer.AdaDelta``), Python-side formula (no learning rate)::

        g = clip(grad * rescale_grad, clip_gradient)
        acc_g = rho * acc_g + (1 - rho) * g * g
        delta = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        weight = weight - (delta + wd * weight)

    State: ``(acc_g, acc_delta)`` (float32). Like MXNet, the eager ``update`` multiplies
    the caller's ``grad`` NDArray by ``rescale_grad`` in place (not with multi-precision).
    """

    def __init__(self, rho: float = 0.90, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """``wd`` is read before the count advances; the learning rate is not used (``lr``)."""
        wd = self._get_wd(index)
        self._update_count(index)
        return self.lr, wd, self._index_update_count[index]

    def _state_arrays(self, index, weight):
        return (_zeros32(weight), _zeros32(weight))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        acc_g, acc_delta = state
        dt = weight.dtype
        g = _py_clip(grad * _as(rescale_grad, dt), self.clip_gradient)
        rho = _as(self.rho, acc_g.dtype)
        one_minus = _as(1.0 - self.rho, acc_g.dtype)
        eps = _as(self.epsilon, acc_g.dtype)
        acc_g = acc_g * rho + one_minus * g * g
        delta = jnp.sqrt(acc_delta + eps) / jnp.sqrt(acc_g + eps) * g
        acc_delta = acc_delta * rho + one_minus * delta * delta
        new_w = weight - (delta + _as(wd, dt) * weight)
        return new_w.astype(dt), (acc_g, acc_delta)

    def _eager(self, index, weight, grad, state, multi_precision) -> None:
        if isinstance(index, (list, tuple)):
            super()._eager(index, weight, grad, state, multi_precision)
            return
        data = jnp.asarray(grad._data)
        mp = self._uses_master_copy(data) if multi_precision is None else multi_precision
        super()._eager(index, weight, grad, state, multi_precision)
        if not mp:
            grad._set_data(data * _as(self.rescale_grad, data.dtype))
