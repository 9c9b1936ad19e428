"""Adam-family optimizers: ``Adam``, ``Adamax``, ``Nadam``, ``LAMB``, ``FTML``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .optimizer import (
    Optimizer,
    Pytree,
    _as,
    _check_finite_tuple_params,
    _hi,
    _op,
    _py_clip,
    batched_prepare,
    register,
)

__all__ = ["Adam", "Adamax", "Nadam", "LAMB", "FTML"]


def _zeros_like(weight: jax.Array, dtype: Any = None) -> jax.Array:
    return jnp.zeros(weight.shape, weight.dtype if dtype is None else dtype)


def _check_bias_correction(opt: Optimizer, t: int) -> None:
    if 1.0 - opt.beta1**t == 0:
        raise ZeroDivisionError(
            f"{type(opt).__name__}: float division by zero: the bias correction "
            f"1 - beta1**t is 0 for beta1={opt.beta1!r} at update {t} of the parameter")


@register
class Adam(Optimizer):
    """Adam (``mx.optimizer.Adam``), via ``adam_update`` with bias correction folded into lr::

        lr_t = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        weight = weight - lr_t * m / (sqrt(v) + epsilon)

    Weight decay is L2 (added to the gradient), not decoupled. State: ``(mean, var)``.
    """

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, lazy_update: bool = True, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    @batched_prepare
    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """As the base class; ``ZeroDivisionError`` when ``1 - beta1 ** t`` is 0 (MXNet
        divides by it in Python, e.g. ``beta1=1``)."""
        lr, wd, t = super().prepare_update(index)
        _check_bias_correction(self, t)
        return lr, wd, t

    def _check_prepared(self, lrs, wds, ts) -> None:
        for t in np.unique(ts):
            _check_bias_correction(self, int(t))

    def _state_arrays(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        mean, var = state
        tt = _hi(t)
        coef1 = 1.0 - _hi(self.beta1) ** tt
        coef2 = 1.0 - _hi(self.beta2) ** tt
        lr_t = _hi(lr) * (jnp.sqrt(coef2) / coef1)  # Python: lr *= sqrt(coef2) / coef1
        new_w, new_mean, new_var = _op("adam_update")(
            weight, grad, mean, var, lr=lr_t, beta1=self.beta1, beta2=self.beta2,
            epsilon=self.epsilon, wd=wd, rescale_grad=rescale_grad,
            clip_gradient=self._clip_attr(), lazy_update=self.lazy_update,
        )
        return new_w, (new_mean, new_var)


@register
class Adamax(Optimizer):
    """AdaMax (``mx.optimizer.Adamax``), Adam with the infinity norm (Python-side formula)::

        g = clip(grad * rescale_grad + wd * weight, clip_gradient)
        m = beta1 * m + (1 - beta1) * g
        u = maximum(beta2 * u, abs(g))
        weight = weight - lr / (1 - beta1 ** t) * m / u

    State: ``(m, u)``.
    """

    def __init__(self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    @batched_prepare
    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """As the base class; ``ZeroDivisionError`` when ``1 - beta1 ** t`` is 0."""
        lr, wd, t = super().prepare_update(index)
        _check_bias_correction(self, t)
        return lr, wd, t

    def _check_prepared(self, lrs, wds, ts) -> None:
        for t in np.unique(ts):
            _check_bias_correction(self, int(t))

    def _state_arrays(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        m, u = state
        dt = weight.dtype
        lr_t = _hi(lr) / (1.0 - _hi(self.beta1) ** _hi(t))
        g = grad * _as(rescale_grad, dt) + _as(wd, dt) * weight
        g = _py_clip(g, self.clip_gradient)
        m = m * _as(self.beta1, dt) + _as(1.0 - self.beta1, dt) * g
        u = jnp.maximum(_as(self.beta2, dt) * u, jnp.abs(g))
        return weight - _as(lr_t, dt) * m / u, (m, u)


@jax.tree_util.register_pytree_node_class
class SharedSchedule:
    """Nadam's momentum schedule in a fused state: a pytree node holding one scalar.

    ``trace`` (not part of the pytree) is the JAX trace the box was made in, so that a
    chain of updates is only continued within one traced function.
    """

    def __init__(self, value: Any, trace: Any = None) -> None:
        self.value = value
        self.trace = trace

    def tree_flatten(self) -> tuple[tuple[Any], None]:
        return (self.value,), None

    @classmethod
    def tree_unflatten(cls, aux: None, children: tuple[Any]) -> SharedSchedule:
        return cls(children[0])

    def __repr__(self) -> str:
        return f"SharedSchedule({self.value!r})"


@register
class Nadam(Optimizer):
    """Nesterov Adam (``mx.optimizer.Nadam``), Python-side formula::

        g = clip(grad * rescale_grad + wd * weight, clip_gradient)
        momentum_t   = beta1 * (1 - 0.5 * 0.96 ** (t * schedule_decay))
        momentum_t_1 = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * schedule_decay))
        m_schedule = m_schedule * momentum_t;  m_schedule_next = m_schedule * momentum_t_1
        m = beta1 * m + (1 - beta1) * g;       v = beta2 * v + (1 - beta2) * g * g
        m_bar = (1 - momentum_t) * g / (1 - m_schedule)
                + momentum_t_1 * m / (1 - m_schedule_next)
        weight = weight - lr * m_bar / (sqrt(v / (1 - beta2 ** t)) + epsilon)

    State: ``(m, v, m_schedule)`` (``m_schedule`` a scalar starting at 1). MXNet keeps one
    ``m_schedule`` in the optimizer, multiplied at every update of every parameter; the
    eager ``update`` reproduces that, while ``fused_step`` keeps one schedule per
    parameter (the same for a single parameter).
    """

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, schedule_decay: float = 0.004, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.schedule_decay = schedule_decay
        self.m_schedule = 1.0

    def _state_arrays(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight), _hi(1.0))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        m, v, m_schedule = state
        dt = weight.dtype
        g = grad * _as(rescale_grad, dt) + _as(wd, dt) * weight
        g = _py_clip(g, self.clip_gradient)
        tt = _hi(t)
        momentum_t = self.beta1 * (1.0 - 0.5 * (_hi(0.96) ** (tt * self.schedule_decay)))
        momentum_t_1 = self.beta1 * (1.0 - 0.5 * (_hi(0.96) ** ((tt + 1) * self.schedule_decay)))
        m_schedule = jnp.asarray(m_schedule, _hi(0.0).dtype) * momentum_t
        m_schedule_next = m_schedule * momentum_t_1
        m = m * _as(self.beta1, dt) + _as(1.0 - self.beta1, dt) * g
        v = v * _as(self.beta2, dt) + _as(1.0 - self.beta2, dt) * g * g
        grad_prime = g / _as(1.0 - m_schedule, dt)
        m_prime = m / _as(1.0 - m_schedule_next, dt)
        v_prime = v / _as(1.0 - _hi(self.beta2) ** tt, dt)
        m_bar = _as(1.0 - momentum_t, dt) * grad_prime + _as(momentum_t_1, dt) * m_prime
        new_w = weight - _as(lr, dt) * m_bar / (jnp.sqrt(v_prime) + _as(self.epsilon, dt))
        return new_w, (m, v, m_schedule)

    # -- MXNet's schedule is one value for the whole optimizer -------------------------
    # In the fused interface each state holds the schedule as a SharedSchedule box. Within
    # one trace (gluon.Trainer traces all parameters in one function, in update order) the
    # boxes are chained: each parameter continues from the previous parameter's schedule,
    # and every state returned from that trace holds the same box, whose value when the
    # outputs are flattened is the schedule after the last parameter, as in MXNet.

    def create_state_arrays(self, index: int, weight: jax.Array) -> Pytree:
        """As the base class, with the schedule scalar in a :class:`SharedSchedule` box."""
        state = super().create_state_arrays(index, weight)
        return self._map_schedule(weight, state, SharedSchedule)

    def _map_schedule(self, weight: jax.Array, state: Pytree, fn: Callable) -> Pytree:
        if self._uses_master_copy(weight):
            w32, (m, v, sched) = state
            return (w32, (m, v, fn(sched)))
        m, v, sched = state
        return (m, v, fn(sched))

    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """As the base class; also starts a new chain of the shared schedule."""
        self._chain = None
        return super().prepare_update(index)

    def fused_step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        """The base fused step with MXNet's optimizer-wide momentum schedule (see above)."""
        trace = getattr(weight, "_trace", None)
        chain = getattr(self, "_chain", None)
        boxed = []
        self._map_schedule(weight, state, lambda b: boxed.append(b) or b)
        box = boxed[0]
        incoming = box.value if isinstance(box, SharedSchedule) else box
        if chain is not None and trace is not None and chain.trace is trace:
            incoming = chain.value
        else:
            chain = SharedSchedule(incoming, trace)
        plain = self._map_schedule(weight, state, lambda _: incoming)
        new_w, new_state = super().fused_step(index, weight, grad, plain, lr, wd,
                                              rescale_grad, t)
        after = []
        self._map_schedule(weight, new_state, lambda v: after.append(v) or v)
        chain.value = after[0]
        self._chain = chain if trace is not None else None
        out_box = chain if trace is not None else SharedSchedule(after[0])
        return new_w, self._map_schedule(weight, new_state, lambda _: out_box)

    def __getstate__(self) -> dict:
        ret = super().__getstate__()
        ret.pop("_chain", None)
        return ret

    def _eager(self, index, weight, grad, state, multi_precision) -> None:
        if isinstance(index, (list, tuple)):
            super()._eager(index, weight, grad, state, multi_precision)
            return
        # The shared (optimizer-wide) schedule of MXNet: feed it in, read it back.
        inner = state if len(state) == 3 else state[1]
        sched = inner[2]
        sched._set_data(jnp.asarray(self.m_schedule, jnp.asarray(sched._data).dtype))
        super()._eager(index, weight, grad, state, multi_precision)
        self.m_schedule = float(jnp.asarray(sched._data))


@register
class LAMB(Optimizer):
    """LAMB (``mx.optimizer.LAMB``), via ``lamb_update_phase1``/``lamb_update_phase2``::

        g = clip(rescale_grad * grad, clip_gradient)
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
        (m, v) /= (1 - beta1 ** t, 1 - beta2 ** t)         if bias_correction
        r = m / (sqrt(v) + epsilon) + wd * weight
        r1 = clip(||weight||, lower_bound, upper_bound);  r2 = ||r||
        weight = weight - lr * (r1 / r2 if r1 > 0 and r2 > 0 else 1) * r

    State: ``(mean, var)``; with multi-precision float16 weights ``(weight32, (mean, var))``
    and the update done on ``weight32`` (as MXNet's aggregated ``multi_mp_lamb_update``).
    """

    _native_mp = True

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-6, lower_bound: float | None = None,
                 upper_bound: float | None = None, bias_correction: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.bias_correction = bias_correction
        self.aggregate_num = 45

    @batched_prepare
    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """As the base class; a non-finite ``lr``/``wd`` raises ``MXNetError`` (as MXNet's
        ``multi_lamb_update`` attribute parser does)."""
        lr, wd, t = super().prepare_update(index)
        _check_finite_tuple_params("multi_lamb_update", lr, wd)
        return lr, wd, t

    def _check_prepared(self, lrs, wds, ts) -> None:
        _check_finite_tuple_params("multi_lamb_update", lrs, wds)

    def _state_arrays(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _phase1_kwargs(self, wd: Any, rescale_grad: Any, t: Any) -> dict:
        return {
            "beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon, "t": t,
            "bias_correction": self.bias_correction, "wd": wd, "rescale_grad": rescale_grad,
            "clip_gradient": self._clip_attr(),
        }

    def _phase2(self, weight: jax.Array, g: jax.Array, lr: Any,
                master: jax.Array | None = None) -> jax.Array:
        """Step 2 of MXNet's ``multi_[mp_]lamb_update`` (what its Updater runs).

        ``r1 = sqrt(sum(weight**2))`` of the array the Updater holds (the float16 weight,
        squared in float16, with multi-precision), ``r2 = sqrt(sum(g**2))``, the trust ratio
        ``r = r1 / r2`` (1 if either is 0) and ``w - (lr * r) * g`` on ``master`` if given.
        """
        f32 = jnp.float32
        r1 = jnp.sqrt(jnp.sum(jnp.square(weight).astype(f32)))
        r2 = jnp.sqrt(jnp.sum(jnp.square(g.astype(f32))))
        if self.lower_bound:
            r1 = jnp.maximum(r1, _as(self.lower_bound, f32))
        if self.upper_bound:
            r1 = jnp.minimum(r1, _as(self.upper_bound, f32))
        ok = (r1 != 0) & (r2 != 0)
        target = weight if master is None else master
        dt = target.dtype
        ratio = jnp.where(ok, r1 / jnp.where(ok, r2, 1), 1).astype(dt)
        return target - (_as(lr, dt) * ratio) * g.astype(dt)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        mean, var = state
        g, new_mean, new_var = _op("lamb_update_phase1")(
            weight, grad, mean, var, **self._phase1_kwargs(wd, rescale_grad, t)
        )
        return self._phase2(weight, g, lr), (new_mean, new_var)

    def _mp_step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        w32, (mean, var) = state
        g, new_mean, new_var = _op("mp_lamb_update_phase1")(
            weight, grad, mean, var, w32, **self._phase1_kwargs(wd, rescale_grad, t)
        )
        new_w32 = self._phase2(weight, g, lr, master=w32)
        return new_w32.astype(weight.dtype), (new_w32, (new_mean, new_var))


@register
class FTML(Optimizer):
    """FTML, Follow the Moving Leader (``mx.optimizer.FTML``), via ``ftml_update``::

        g = clip(grad * rescale_grad + wd * weight, clip_gradient)
        v = beta2 * v + (1 - beta2) * g * g
        d_t = (1 - beta1 ** t) / lr * (sqrt(v / (1 - beta2 ** t)) + epsilon)
        z = beta1 * z + (1 - beta1) * g - (d_t - beta1 * d_(t-1)) * weight
        weight = -z / d_t

    State: ``(d, v, z)``.
    """

    def __init__(self, beta1: float = 0.6, beta2: float = 0.999, epsilon: float = 1e-8,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def _state_arrays(self, index, weight) -> Pytree:
        return (_zeros_like(weight), _zeros_like(weight), _zeros_like(weight))

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        d, v, z = state
        new_w, new_d, new_v, new_z = _op("ftml_update")(
            weight, grad, d, v, z, lr=lr, beta1=self.beta1, beta2=self.beta2,
            epsilon=self.epsilon, t=t, wd=wd, rescale_grad=rescale_grad,
            clip_grad=self._clip_attr(),
        )
        return new_w, (new_d, new_v, new_z)
