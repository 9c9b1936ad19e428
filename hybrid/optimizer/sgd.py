"""SGD-family optimizers: ``SGD`` (``ccSGD``), ``NAG``, ``Signum``, ``LARS``, ``LBSGD``."""

from __future__ import annotations

import logging
from typing import Any

import jax
import jax.numpy as jnp

from lowering.ops.optimizer import multi_sgd_step, nag_step

from ..base import MXNetError
from .optimizer import (
    Optimizer,
    Pytree,
    _as,
    _check_finite_tuple_params,
    _op,
    batched_prepare,
    register,
)

__all__ = ["SGD", "ccSGD", "NAG", "Signum", "LARS", "LBSGD"]


def _zeros_like(weight: jax.Array) -> jax.Array:
    return jnp.zeros(weight.shape, weight.dtype)


class _MomentumMixin:
    """Shared by SGD-like optimizers: a momentum buffer iff ``momentum != 0``."""

    momentum: float

    def _state_arrays(self, index: int, weight: jax.Array) -> Pytree:
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _sgd_kwargs(self, rescale_grad: Any) -> dict:
        kwargs = {"rescale_grad": rescale_grad, "clip_gradient": self._clip_attr()}
        return kwargs


@register
class SGD(_MomentumMixin, Optimizer):
    """SGD with momentum and weight decay (``mx.optimizer.SGD``).

    Standard update (``sgd_update`` / ``sgd_mom_update``)::

        rescaled_grad = lr * (clip(rescale_grad * grad, clip_gradient) + wd * weight)
        state = momentum * state + rescaled_grad
        weight = weight - state

    (the momentum buffer is stored with the opposite sign, ``mom = -state``). State:
    the momentum buffer, or ``None`` when ``momentum == 0``. With ``multi_precision`` and
    float16 weights the state is ``(momentum, weight32)`` and the ``mp_sgd_*`` operators
    are used.

    Parameters
    ----------
    momentum : float
        The momentum value.
    lazy_update : bool
        Lazy updates for row_sparse gradients (gradients are dense here: no effect).
    """

    _mp_state_first = True
    _native_mp = True

    def __init__(self, momentum: float = 0.0, lazy_update: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update
        self.aggregate_num = 4

    @batched_prepare
    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """As the base class; a non-finite ``lr``/``wd`` raises ``MXNetError`` (as MXNet's
        ``multi_sgd_update`` attribute parser does, after the count was advanced)."""
        lr, wd, t = super().prepare_update(index)
        _check_finite_tuple_params("multi_sgd_update", lr, wd)
        return lr, wd, t

    def _check_prepared(self, lrs, wds, ts) -> None:
        _check_finite_tuple_params("multi_sgd_update", lrs, wds)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        # MXNet's Updater always aggregates dense SGD updates: multi_[mp_]sgd[_mom]_update.
        momentum = self.momentum if self.momentum > 0 else 0.0
        new_w, new_mom, _ = multi_sgd_step(weight, grad, state, lr, momentum, wd, rescale_grad,
                                           self._clip_attr())
        return new_w, new_mom

    def _mp_step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        mom, w32 = state
        momentum = self.momentum if self.momentum > 0 else 0.0
        new_w, new_mom, new_w32 = multi_sgd_step(weight, grad, mom, lr, momentum, wd,
                                                 rescale_grad, self._clip_attr(), weight32=w32)
        return new_w, (new_mom, new_w32)


@register
class ccSGD(SGD):  # noqa: N801  (MXNet's name)
    """[DEPRECATED] Same as ``SGD``; kept for backward compatibility."""


@register
class NAG(_MomentumMixin, Optimizer):
    """Nesterov accelerated gradient (``mx.optimizer.NAG``), via ``nag_mom_update``::

        step = lr * (clip(rescale_grad * grad, clip_gradient) + wd * weight)
        mom = momentum * mom - step
        weight = weight + momentum * mom - step

    With ``momentum == 0`` it is ``sgd_update``. State: momentum or ``None``;
    ``(momentum, weight32)`` with multi-precision float16 weights.
    """

    _mp_state_first = True
    _native_mp = True

    def __init__(self, momentum: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.aggregate_num = 4

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        kwargs = self._sgd_kwargs(rescale_grad)
        if state is not None:
            momentum = self.momentum if self.momentum > 0 else 0.0
            new_w, new_mom, _ = nag_step(weight, grad, state, lr, momentum, wd, rescale_grad,
                                         self._clip_attr())
            return new_w, new_mom
        return _op("sgd_update")(weight, grad, lr=lr, wd=wd, lazy_update=True, **kwargs), None

    def _mp_step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        mom, w32 = state
        kwargs = self._sgd_kwargs(rescale_grad)
        if mom is not None:
            momentum = self.momentum if self.momentum > 0 else 0.0
            new_w, new_mom, new_w32 = nag_step(weight, grad, mom, lr, momentum, wd,
                                               rescale_grad, self._clip_attr(), weight32=w32)
            return new_w, (new_mom, new_w32)
        new_w, new_w32 = _op("mp_sgd_update")(
            weight, grad, w32, lr=lr, wd=wd, lazy_update=True, **kwargs
        )
        return new_w, (None, new_w32)


@register
class Signum(Optimizer):
    """Signum / signSGD (``mx.optimizer.Signum``), via ``signum_update``/``signsgd_update``::

        rescaled_grad = rescale_grad * clip(grad, clip_gradient) + wd * weight
        state = momentum * state + (1 - momentum) * rescaled_grad
        weight = (1 - lr * wd_lh) * weight - lr * sign(state)

    With ``momentum == 0``: ``weight = (1 - lr * wd) * weight - lr * sign(grad)``.
    State: momentum or ``None``.

    Parameters
    ----------
    momentum : float
        The momentum value.
    wd_lh : float
        Decoupled weight decay (Loshchilov & Hutter).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9, wd_lh: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.wd_lh = wd_lh

    def _state_arrays(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        kwargs = {"rescale_grad": rescale_grad, "clip_gradient": self._clip_attr()}
        if state is not None:
            momentum = self.momentum if self.momentum > 0 else 0.0
            wd_lh = self.wd_lh if self.wd_lh else 0.0
            return _op("signum_update")(
                weight, grad, state, lr=lr, wd=wd, momentum=momentum, wd_lh=wd_lh, **kwargs
            )
        if self.wd_lh:
            # MXNet passes wd_lh on to signsgd_update, which has no such argument.
            raise MXNetError(
                f"Signum with momentum={self.momentum!r} runs signsgd_update, which does not "
                f"support decoupled weight decay: wd_lh={self.wd_lh!r} must be 0 "
                "(MXNet 1.9: Cannot find argument 'wd_lh' in operator signsgd_update)")
        return _op("signsgd_update")(weight, grad, lr=lr, wd=wd, **kwargs), None


@register
class LARS(_MomentumMixin, Optimizer):
    """LARS: SGD with a layer-wise learning rate (``mx.optimizer.LARS``).

    For parameters whose name (``idx2name``, else ``str(index)``) does not end in
    ``gamma``, ``beta`` or ``bias``::

        w_norm = ||weight||;  g_norm = ||rescale_grad * grad||
        lr = lr * eta * w_norm / (g_norm + wd * w_norm + eps)   if w_norm > 0 and g_norm > 0

    then the SGD update. With ``momentum_correction`` the momentum is scaled by
    ``lr / previous lr`` (the learning-rate change since the previous step).

    State: ``(momentum or None, previous_lr)`` where ``previous_lr`` is a scalar (0 before
    the first step). MXNet keeps the previous learning rate in the optimizer object and
    applies the correction only to the first aggregated group of each step; here every
    parameter tracks its own (the intended semantics; identical without a scheduler).

    Parameters
    ----------
    momentum : float
        The momentum value.
    eta : float
        LARS coefficient.
    eps : float
        Added to the denominator.
    momentum_correction : bool
        Scale the momentum by the learning-rate ratio.
    """

    _mp_state_first = True
    _native_mp = True

    def __init__(self, momentum: float = 0.0, lazy_update: bool = True, eta: float = 0.001,
                 eps: float = 0, momentum_correction: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.momentum_correction = momentum_correction
        self.lazy_update = lazy_update
        self.aggregate_num = 4
        self.eta = eta
        self.eps = eps
        self.skip = 0
        self.last_lr = None
        self.cur_lr = None

    def set_wd_mult(self, args_wd_mult: dict) -> None:
        """As ``Optimizer.set_wd_mult`` but only names ending in ``_weight`` keep weight decay."""
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not n.endswith("_weight"):
                self.wd_mult[n] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__wd_mult__" in attr[name]:
                    self.wd_mult[name] = float(attr[name]["__wd_mult__"])
        self.wd_mult.update(args_wd_mult)

    def _state_arrays(self, index, weight):
        mom = _zeros_like(weight) if self.momentum != 0.0 else None
        return (mom, jnp.zeros((), jnp.result_type(float)))

    def _uses_lars(self, index: int) -> bool:
        name = self.idx2name[index] if index in self.idx2name else str(index)
        return not (name.endswith("gamma") or name.endswith("beta") or name.endswith("bias"))

    def _layer_lr(self, index, weight, grad, lr, wd, rescale_grad) -> jax.Array:
        """MXNet's ``multi_sum_sq`` + ``multi_lars`` (float32, the kernel's order of terms).

        The sums of squares are of the arrays the Updater holds: for float16 weights
        (multi-precision too) the float16 weight and gradient, squared in float16.
        """
        f32 = jnp.float32
        lr32 = _as(lr, f32)
        if not self._uses_lars(index):
            return lr32
        w_ss = jnp.sum(jnp.square(weight).astype(f32))
        g_ss = jnp.sum(jnp.square(grad).astype(f32))
        w_norm = jnp.sqrt(w_ss)
        valid = (w_norm > 0) & (g_ss > 0)
        den = jnp.sqrt(g_ss) * _as(rescale_grad, f32) + _as(wd, f32) * w_norm + _as(self.eps, f32)
        return jnp.where(valid, lr32 * _as(self.eta, f32) * w_norm / den, lr32)

    def _momentum(self, lr_hi: jax.Array, last_lr: jax.Array) -> Any:
        if not self.momentum > 0:
            return 0.0
        if not self.momentum_correction:
            return self.momentum
        ratio = jnp.where(last_lr != 0, lr_hi / jnp.where(last_lr != 0, last_lr, 1), 1)
        return self.momentum * ratio

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        # MXNet aggregates dense LARS updates: multi_lars, then preloaded_multi_sgd_[mom_]update.
        mom, last_lr = state
        lr_hi = jnp.asarray(lr, last_lr.dtype)
        layer_lr = self._layer_lr(index, weight, grad, lr, wd, rescale_grad)
        new_w, new_mom, _ = multi_sgd_step(weight, grad, mom, layer_lr,
                                           self._momentum(lr_hi, last_lr), _as(wd, jnp.float32),
                                           rescale_grad, self._clip_attr())
        return new_w, (new_mom, lr_hi)

    def _mp_step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        (mom, last_lr), w32 = state
        lr_hi = jnp.asarray(lr, last_lr.dtype)
        layer_lr = self._layer_lr(index, weight, grad, lr, wd, rescale_grad)
        new_w, new_mom, new_w32 = multi_sgd_step(
            weight, grad, mom, layer_lr, self._momentum(lr_hi, last_lr), _as(wd, jnp.float32),
            rescale_grad, self._clip_attr(), weight32=w32)
        return new_w, ((new_mom, lr_hi), new_w32)


@register
class LBSGD(Optimizer):
    """Large-batch SGD with learning-rate warmup (``mx.optimizer.LBSGD``).

    Gradients are accumulated over ``batch_scale`` steps; on every ``batch_scale``-th
    step (counted from ``begin_epoch * updates_per_epoch + 1``) the SGD update runs with
    the mean accumulated gradient and ``lr * mult``, where ``mult`` follows the warmup
    strategy (``'linear'``, ``'power2'``, ``'sqrt'`` over ``warmup_epochs *
    updates_per_epoch`` updates up to ``batch_scale``, or ``'lars'``:
    ``clip(sqrt(|w|^2 / (|g|^2 + wd |w|^2 + 1e-18)), 0.01, 100)``); other steps leave the
    weight unchanged. The learning rate is read before the update count is advanced.

    MXNet stores the first gradient of an accumulation window by reference, and gluon
    overwrites the gradient buffer in place at the next backward, so the accumulated sum
    then reads the *current* gradient instead. This is reproduced (it is what
    ``gluon.Trainer`` with MXNet 1.9 computes): the state remembers whether the
    accumulator is "the gradient buffer".

    State: ``(momentum or None, cum_grad, num_cums, cum_is_grad)``.
    """

    def __init__(self, momentum: float = 0.0, multi_precision: bool = False,
                 warmup_strategy: str = "linear", warmup_epochs: int = 5, batch_scale: int = 1,
                 updates_per_epoch: int = 32, begin_epoch: int = 0, num_epochs: int = 60,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        logging.info("Running Large-Batch SGD Algorithm")
        logging.info(
            "(Batch_scale=%f, warmup_epochs=%d, warmup_strategy=%s, updates_per_epoch=%d)",
            batch_scale, warmup_epochs, warmup_strategy, updates_per_epoch,
        )
        self.momentum = momentum
        self.multi_precision = multi_precision
        self.warmup_strategy = warmup_strategy
        self.warmup_epochs = warmup_epochs
        self.batch_scale = batch_scale
        self.updates_per_epoch = updates_per_epoch
        self.init_updates = begin_epoch * updates_per_epoch
        self.num_epochs = num_epochs
        self.lbmult = 1
        self.cumgrads: dict = {}
        self.adaptive = False
        self.admult = 1

    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """``lr`` and ``wd`` are read BEFORE the count is advanced (as MXNet's LBSGD)."""
        lr, wd = self._get_lr(index), self._get_wd(index)
        self._update_count(index)
        return lr, wd, self._index_update_count[index]

    def _state_arrays(self, index, weight):
        mom = _zeros_like(weight) if self.momentum != 0.0 else None
        return (mom, _zeros_like(weight), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.bool_))

    def _get_lbmult(self, nup: jax.Array) -> jax.Array:
        """The warmup multiplier at accumulation count ``nup`` (may be traced)."""
        nwup = self.warmup_epochs * self.updates_per_epoch
        maxmult = float(self.batch_scale)
        if nwup <= 1:
            warm = jnp.asarray(1.0)
        else:
            frac = jnp.asarray(nup, jnp.result_type(float)) / nwup
            if self.warmup_strategy == "linear":
                warm = 1.0 + (maxmult - 1) * frac
            elif self.warmup_strategy == "power2":
                warm = 1.0 + (maxmult - 1) * frac * frac
            elif self.warmup_strategy == "sqrt":
                warm = 1.0 + (maxmult - 1) * jnp.sqrt(frac)
            else:
                warm = jnp.asarray(1.0)
        return jnp.where(nup >= nwup, maxmult, warm)

    @staticmethod
    def _get_lars(weight: jax.Array, g: jax.Array, wd: Any) -> jax.Array:
        weight2 = jnp.sum(weight * weight)
        grad2 = jnp.sum(g * g)
        lars = jnp.sqrt(weight2 / (grad2 + _as(wd, weight2.dtype) * weight2 + 1e-18))
        return jnp.clip(lars, 0.01, 100.0)

    def _step(self, index, weight, grad, state, lr, wd, rescale_grad, t):
        mom, cum, num_cums, cum_is_grad = state
        first = num_cums <= 0
        previous = jnp.where(cum_is_grad, grad, cum)
        cum = jnp.where(first, grad, previous + grad)
        num_cums = jnp.where(first, self.init_updates + 1, num_cums + 1).astype(jnp.int32)
        do_update = (num_cums % self.batch_scale) == 0
        g = cum / _as(self.batch_scale, cum.dtype)
        if self.warmup_strategy == "lars":
            lbmult = self._get_lars(weight, g, wd)
        else:
            lbmult = self._get_lbmult(num_cums)
        layer_lr = jnp.asarray(lr) * lbmult
        kwargs = {"rescale_grad": rescale_grad, "clip_gradient": self._clip_attr()}
        if mom is not None:
            momentum = self.momentum if self.momentum > 0 else 0.0
            new_w, new_mom = _op("sgd_mom_update")(
                weight, g, mom, lr=layer_lr, momentum=momentum, wd=wd, lazy_update=True,
                **kwargs,
            )
            new_mom = jnp.where(do_update, new_mom, mom)
        else:
            new_w = _op("sgd_update")(weight, g, lr=layer_lr, wd=wd, lazy_update=True, **kwargs)
            new_mom = None
        new_w = jnp.where(do_update, new_w, weight)
        new_cum = jnp.where(do_update, jnp.zeros_like(cum), cum)
        new_is_grad = first & ~do_update
        return new_w, (new_mom, new_cum, num_cums, new_is_grad)
