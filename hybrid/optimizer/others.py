"""Remaining optimizers: ``Ftrl``, ``DCASGD``, ``SGLD`` and the ``Test`` optimizer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .optimizer import Optimizer, _as, _op, _py_clip, register

__all__ = ["Ftrl", "DCASGD", "SGLD", "Test"]


@register
class Ftrl(Optimizer):
    """FTRL-proximal (``mx.optimizer.Ftrl``), via ``ftrl_update``::

        g = clip(grad * rescale_grad, clip_gradient)
        z = z + g - (sqrt(n + g * g) - sqrt(n)) * weight / lr
        n = n + g * g
        weight = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (abs(z) > lamda1)

    ``learning_rate`` (default 0.1) is assigned after the base constructor, so it does not
    overwrite a scheduler's ``base_lr``. State: ``(z, n)`` (float32).
    """

    def __init__(self, lamda1: float = 0.01, learning_rate: float = 0.1, beta: float = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lamda1 = lamda1
        self.beta = beta
        self.lr = learning_rate

    def _state_arrays(self, index, weight):
        return (jnp.zeros(weight.shape, jnp.float32), jnp.zeros(weight.shape, jnp.float32))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        z, n = state
        new_w, new_z, new_n = _op("ftrl_update")(
            weight, grad, z, n, lr=lr, lamda1=self.lamda1, beta=self.beta, wd=wd,
            rescale_grad=rescale_grad, clip_gradient=self._clip_attr(),
        )
        return new_w, (new_z, new_n)


@register
class DCASGD(Optimizer):
    """Delay-compensated asynchronous SGD (``mx.optimizer.DCASGD``), Python-side formula::

        g = clip(grad * rescale_grad, clip_gradient)
        mom = momentum * mom - lr * (g + wd * weight + lamda * g * g * (weight - previous))
        previous = weight
        weight = weight + mom

    (without momentum, ``mom`` is just the second term). State: ``(mom or None, previous
    weight)``. MXNet 1.9 raises for ``momentum > 0`` (``if mom:`` on an NDArray); here the
    documented formula is applied.
    """

    def __init__(self, momentum: float = 0.0, lamda: float = 0.04, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.weight_previous: dict = {}
        self.lamda = lamda

    def _state_arrays(self, index, weight):
        mom = None if self.momentum == 0.0 else jnp.zeros(weight.shape, weight.dtype)
        return (mom, jnp.array(weight, copy=True))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        mom, previous = state
        dt = weight.dtype
        g = _py_clip(grad * _as(rescale_grad, dt), self.clip_gradient)
        step = -_as(lr, dt) * (
            g + _as(wd, dt) * weight + _as(self.lamda, dt) * g * g * (weight - previous)
        )
        new_mom = step if mom is None else mom * _as(self.momentum, dt) + step
        return weight + new_mom, (None if mom is None else new_mom, weight)


def _new_key() -> jax.Array:
    """Raw (uint32) data of a fresh key from the global generator (``mx.random.seed``)."""
    from .. import random as _random

    return jax.random.key_data(_random.next_key())


@register
class SGLD(Optimizer):
    """Stochastic Gradient Langevin Dynamics (``mx.optimizer.SGLD``)::

        g = clip(grad * rescale_grad, clip_gradient)
        weight = weight - lr / 2 * (g + wd * weight) + normal(0, sqrt(lr))

    State: the raw data of a JAX PRNG key, taken from the global generator
    (``mx.random.seed``) when the state is created and split at every step.
    """

    def _state_arrays(self, index, weight):
        return _new_key()

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        dt = weight.dtype
        g = _py_clip(grad * _as(rescale_grad, dt), self.clip_gradient)
        new_w = weight + -_as(lr, dt) / 2 * (g + _as(wd, dt) * weight)
        key, sub = jax.random.split(jax.random.wrap_key_data(state))
        noise = jax.random.normal(sub, weight.shape, dt) * jnp.sqrt(_as(lr, dt))
        return new_w + noise, jax.random.key_data(key)


@register
class Test(Optimizer):
    """The ``Test`` optimizer: ``weight += rescale_grad * grad``; the state copies the weight."""

    def _state_arrays(self, index, weight):
        return jnp.zeros(weight.shape, jnp.float32)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        new_w = weight + grad * _as(rescale_grad, weight.dtype)
        return new_w, new_w.astype(state.dtype)
