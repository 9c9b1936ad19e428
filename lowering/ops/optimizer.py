"""Optimizer update operators (``sgd_update``, ``adam_update``, ...), pure and out-of-place.

MXNet's update operators write the new weight to ``out`` and update their state
inputs (momentum, moments, master weights) in place. Here every operator is a
pure function: it returns the new weight (or, for ``lamb_update_phase1``, the
update direction ``g``) as output 0, followed by the new value of every state
input it would have mutated, in the order those inputs are listed.
:data:`UPDATED_INPUTS` names those inputs per operator, so a caller can emulate
MXNet's in-place semantics by writing output ``k + 1`` back into input
``UPDATED_INPUTS[op][k]``.

Semantics kept from MXNet 1.9:

* ``clip_gradient < 0`` (the default ``-1``) disables clipping; clipping is
  ``max(min(x, c), -c)``. Whether clipping happens is decided from the static
  attribute value; ``lr``, ``wd``, ``rescale_grad`` and ``t`` may be traced
  scalars (the compiled trainer step calls these implementations inside
  ``jax.jit``), so no implementation branches in Python on them.
* Scalars are cast to the dtype the kernel computes in (the weight dtype, or
  float32 for the ``mp_*`` multi-precision kernels, whose master weights and
  states are float32 while the weight and gradient may be float16).
* Where the gradient is clipped (before or after adding ``wd * weight``)
  differs between operators exactly as in MXNet; every docstring gives the
  formula.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..attrs import BOOL, FLOAT, INT, Attr
from ..registry import register

UPDATED_INPUTS: dict[str, tuple[str, ...]] = {
    "sgd_update": (),
    "sgd_mom_update": ("mom",),
    "mp_sgd_update": ("weight32",),
    "mp_sgd_mom_update": ("mom", "weight32"),
    "nag_mom_update": ("mom",),
    "mp_nag_mom_update": ("mom", "weight32"),
    "adam_update": ("mean", "var"),
    "rmsprop_update": ("n",),
    "rmspropalex_update": ("n", "g", "delta"),
    "ftml_update": ("d", "v", "z"),
    "ftrl_update": ("z", "n"),
    "signsgd_update": (),
    "signum_update": ("mom",),
    "lamb_update_phase1": ("mean", "var"),
    "lamb_update_phase2": (),
    "mp_lamb_update_phase1": ("mean", "var"),
    "mp_lamb_update_phase2": (),
    "_contrib_adamw_update": ("mean", "var"),
    "_contrib_mp_adamw_update": ("mean", "var", "weight32"),
}
"""Op name -> the state inputs whose new values follow output 0, in output order."""


def _c(value, dtype):
    """``value`` (Python number or traced scalar) as a scalar of ``dtype``."""
    return jnp.asarray(value, dtype=dtype)


def _clip(x, bound):
    """mshadow's ``clip::Map``: ``max(min(x, bound), -bound)``."""
    return jnp.maximum(jnp.minimum(x, bound), -bound)


def _powf(base, exponent, dtype):
    """``powf(base, exponent)`` as MXNet's kernels compute it (a float ``base``, result
    rounded to ``dtype``): evaluated in float64 and rounded, i.e. correctly rounded, which
    XLA's float32 ``pow`` (exp/log based) is not. ``exponent`` may be traced."""
    hi = jnp.result_type(float)
    b = jnp.asarray(jnp.asarray(base, dtype).astype(jnp.float32), hi)
    return jnp.power(b, jnp.asarray(exponent, hi)).astype(dtype)


def _sign(x):
    """``(x > 0) - (x < 0)`` in ``x``'s dtype (0 for 0 and NaN, as MXNet's kernels)."""
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


_LR = {"lr": Attr(FLOAT)}
_COMMON = {
    "wd": Attr(FLOAT, 0.0),
    "rescale_grad": Attr(FLOAT, 1.0),
    "clip_gradient": Attr(FLOAT, -1.0),
}
_LAZY = {"lazy_update": Attr(BOOL, True)}
_MOMENTUM = {"momentum": Attr(FLOAT, 0.0)}


def _rescaled_clipped(grad, rescale_grad, clip_gradient, dtype):
    """``clip(rescale_grad * grad, clip_gradient)`` (clipping only when ``clip_gradient >= 0``)."""
    g = _c(rescale_grad, dtype) * grad.astype(dtype)
    if clip_gradient >= 0:
        g = _clip(g, _c(clip_gradient, dtype))
    return g


# ---------------------------------------------------------------------------
# SGD and momentum SGD


def _sgd(weight, grad, lr, wd, rescale_grad, clip_gradient, dtype):
    lr, wd = _c(lr, dtype), _c(wd, dtype)
    w = weight.astype(dtype)
    if clip_gradient >= 0:
        step = lr * _rescaled_clipped(grad, rescale_grad, clip_gradient, dtype)
    else:
        step = (lr * _c(rescale_grad, dtype)) * grad.astype(dtype)
    return (1 - lr * wd) * w - step


def _sgd_mom(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, dtype):
    # MXNet's SGDMomKernel / MultiSGDKernel, term by term in the kernel's order:
    #   mom = momentum*mom - (lr*wd)*w - lr*clip(rescale*grad)   (clipping)
    #   mom = momentum*mom - (lr*wd)*w - (lr*rescale)*grad       (no clipping)
    lr, wd, momentum = _c(lr, dtype), _c(wd, dtype), _c(momentum, dtype)
    w = weight.astype(dtype)
    m = jnp.zeros((), dtype) if mom is None else mom.astype(dtype)
    if clip_gradient >= 0:
        grad_term = lr * _rescaled_clipped(grad, rescale_grad, clip_gradient, dtype)
    else:
        grad_term = (lr * _c(rescale_grad, dtype)) * grad.astype(dtype)
    new_mom = momentum * m - (lr * wd) * w - grad_term
    return w + new_mom, new_mom


def multi_sgd_step(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient,
                   weight32=None):
    """One tensor of MXNet's aggregated ``multi_[mp_]sgd[_mom]_update`` kernel.

    This is what ``SGD`` (and ``LARS`` through ``preloaded_multi_sgd_*``) run in MXNet 1.9
    whenever the Updater aggregates (always, for dense arrays). Unlike ``sgd_update`` the
    no-momentum form is ``w + (-(lr*wd)*w - (lr*rescale)*grad)``, so its rounding differs.
    ``mom`` is ``None`` without momentum (``momentum`` is then ignored). With ``weight32``
    the update runs in float32 on the master copy. Returns ``(new_weight, new_mom,
    new_weight32)`` (``new_mom``/``new_weight32`` ``None`` where not given).
    """
    if weight32 is not None:
        w32, new_mom = _sgd_mom(weight32, grad, mom, lr, momentum if mom is not None else 0.0,
                                wd, rescale_grad, clip_gradient, jnp.float32)
        return w32.astype(weight.dtype), (None if mom is None else new_mom), w32
    new_w, new_mom = _sgd_mom(weight, grad, mom, lr, momentum if mom is not None else 0.0, wd,
                              rescale_grad, clip_gradient, weight.dtype)
    return new_w, (None if mom is None else new_mom), None


@register(
    "sgd_update",
    inputs=("weight", "grad"),
    attrs={**_LR, **_COMMON, **_LAZY},
    differentiable=False,
)
def sgd_update(weight, grad, lr, wd, rescale_grad, clip_gradient, lazy_update):
    """Plain SGD step. Returns the new weight::

        weight = (1 - lr * wd) * weight - lr * clip(rescale_grad * grad, clip_gradient)

    ``lazy_update`` only matters for row_sparse gradients (dense here).
    """
    return _sgd(weight, grad, lr, wd, rescale_grad, clip_gradient, weight.dtype)


@register(
    "sgd_mom_update",
    inputs=("weight", "grad", "mom"),
    attrs={**_LR, **_MOMENTUM, **_COMMON, **_LAZY},
    num_outputs=2,
    differentiable=False,
)
def sgd_mom_update(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, lazy_update):
    """Momentum SGD step. Returns ``(new_weight, new_mom)``::

        mom = momentum * mom - lr * wd * weight - lr * clip(rescale_grad * grad, clip_gradient)
        weight = weight + mom
    """
    return _sgd_mom(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, weight.dtype)


@register(
    "mp_sgd_update",
    inputs=("weight", "grad", "weight32"),
    attrs={**_LR, **_COMMON, **_LAZY},
    num_outputs=2,
    differentiable=False,
)
def mp_sgd_update(weight, grad, weight32, lr, wd, rescale_grad, clip_gradient, lazy_update):
    """Multi-precision SGD: the ``sgd_update`` formula applied in float32 to the master copy.

    Returns ``(new_weight, new_weight32)`` with ``new_weight = new_weight32`` cast to
    ``weight``'s dtype (usually float16)::

        weight32 = (1 - lr * wd) * weight32 - lr * clip(rescale_grad * float32(grad), clip_gradient)
    """
    w32 = _sgd(weight32, grad, lr, wd, rescale_grad, clip_gradient, jnp.float32)
    return w32.astype(weight.dtype), w32


@register(
    "mp_sgd_mom_update",
    inputs=("weight", "grad", "mom", "weight32"),
    attrs={**_LR, **_MOMENTUM, **_COMMON, **_LAZY},
    num_outputs=3,
    differentiable=False,
)
def mp_sgd_mom_update(
    weight, grad, mom, weight32, lr, momentum, wd, rescale_grad, clip_gradient, lazy_update
):
    """Multi-precision momentum SGD (float32 ``mom`` and master weight).

    Returns ``(new_weight, new_mom, new_weight32)``::

        mom = momentum * mom - lr * wd * weight32 - lr * clip(rescale_grad * grad, clip_gradient)
        weight32 = weight32 + mom;  weight = cast(weight32)
    """
    w32, new_mom = _sgd_mom(
        weight32, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, jnp.float32
    )
    return w32.astype(weight.dtype), new_mom, w32


# ---------------------------------------------------------------------------
# Nesterov momentum


def _nag(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, dtype,
         mom_reads_new_weight):
    # MXNet's NAGMomKernel: the new weight is written first, then the momentum is updated
    # reading "the weight" again. In mp_nag_mom_update that is the updated master copy; in
    # nag_mom_update it is the updated weight when the call writes ``out=weight`` (as the
    # NAG optimizer does), the old one otherwise.
    lr, wd, momentum = _c(lr, dtype), _c(wd, dtype), _c(momentum, dtype)
    w = weight.astype(dtype)
    if clip_gradient >= 0:
        g = _rescaled_clipped(grad, rescale_grad, clip_gradient, dtype)
    else:
        g = _c(rescale_grad, dtype) * grad.astype(dtype)
    decayed = momentum * mom.astype(dtype)
    new_w = w - decayed + (momentum + 1) * (decayed - lr * (g + wd * w))
    w_read = new_w if mom_reads_new_weight else w
    return new_w, decayed - lr * (g + wd * w_read)


def nag_step(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, weight32=None):
    """The NAG optimizer's update as MXNet 1.9 runs it (``out=weight``).

    ``nag_mom_update(weight, grad, mom, out=weight)`` (or ``mp_nag_mom_update`` with
    ``weight32``): the momentum update reads the already-updated weight. Returns
    ``(new_weight, new_mom, new_weight32)`` (``new_weight32`` ``None`` without a master copy).
    """
    if weight32 is not None:
        w32, new_mom = _nag(weight32, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient,
                            jnp.float32, True)
        return w32.astype(weight.dtype), new_mom, w32
    new_w, new_mom = _nag(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient,
                          weight.dtype, True)
    return new_w, new_mom, None


@register(
    "nag_mom_update",
    inputs=("weight", "grad", "mom"),
    attrs={**_LR, **_MOMENTUM, **_COMMON},
    num_outputs=2,
    differentiable=False,
)
def nag_mom_update(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient):
    """Nesterov momentum step. Returns ``(new_weight, new_mom)``::

        step = lr * (clip(rescale_grad * grad, clip_gradient) + wd * weight)
        mom' = momentum * mom
        weight = weight - mom' + (momentum + 1) * (mom' - step)
        mom = mom' - step

    (the weight in ``step`` is the input weight; MXNet's kernel reads the updated one when
    called with ``out=weight``, see :func:`nag_step`).
    """
    return _nag(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, weight.dtype,
                False)


@register(
    "mp_nag_mom_update",
    inputs=("weight", "grad", "mom", "weight32"),
    attrs={**_LR, **_MOMENTUM, **_COMMON},
    num_outputs=3,
    differentiable=False,
)
def mp_nag_mom_update(weight, grad, mom, weight32, lr, momentum, wd, rescale_grad, clip_gradient):
    """Multi-precision ``nag_mom_update`` on the float32 master copy.

    Returns ``(new_weight, new_mom, new_weight32)``; the formula is ``nag_mom_update``'s with
    ``weight32`` in place of ``weight``, and ``new_weight = cast(new_weight32)``, except that
    (as in MXNet's kernel) the momentum update reads the UPDATED ``weight32``.
    """
    w32, new_mom = _nag(
        weight32, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, jnp.float32, True
    )
    return w32.astype(weight.dtype), new_mom, w32


# ---------------------------------------------------------------------------
# Adam family


@register(
    "adam_update",
    inputs=("weight", "grad", "mean", "var"),
    attrs={
        **_LR,
        "beta1": Attr(FLOAT, 0.9),
        "beta2": Attr(FLOAT, 0.999),
        "epsilon": Attr(FLOAT, 1e-8),
        **_COMMON,
        **_LAZY,
    },
    num_outputs=3,
    differentiable=False,
)
def adam_update(
    weight, grad, mean, var, lr, beta1, beta2, epsilon, wd, rescale_grad, clip_gradient, lazy_update
):
    """Adam step WITHOUT bias correction (the Adam optimizer folds it into ``lr``).

    Returns ``(new_weight, new_mean, new_var)``::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        mean = beta1 * mean + (1 - beta1) * g
        var = beta2 * var + (1 - beta2) * g * g
        weight = weight - lr * mean / (sqrt(var) + epsilon)
    """
    dt = weight.dtype
    g = _c(rescale_grad, dt) * grad + _c(wd, dt) * weight
    if clip_gradient >= 0:
        g = _clip(g, _c(clip_gradient, dt))
    b1, b2 = _c(beta1, dt), _c(beta2, dt)
    new_mean = b1 * mean + (1 - b1) * g
    new_var = b2 * var + (1 - b2) * g * g
    new_w = weight - _c(lr, dt) * new_mean / (jnp.sqrt(new_var) + _c(epsilon, dt))
    return new_w, new_mean, new_var


_ADAMW_ATTRS = {
    **_LR,
    "beta1": Attr(FLOAT, 0.9),
    "beta2": Attr(FLOAT, 0.999),
    "epsilon": Attr(FLOAT, 1e-8),
    "wd": Attr(FLOAT, 0.0),
    "eta": Attr(FLOAT),
    "clip_gradient": Attr(FLOAT, -1.0),
}


def _adamw(weight32, grad, mean, var, scale, lr, beta1, beta2, epsilon, wd, eta, clip_gradient):
    f32 = jnp.float32
    g = _rescaled_clipped(grad, scale, clip_gradient, f32)
    new_mean = _c(beta1, f32) * mean + (1 - _c(beta1, f32)) * g
    new_var = _c(beta2, f32) * var + (1 - _c(beta2, f32)) * g * g
    w = weight32.astype(f32)
    adam_step = _c(lr, f32) * new_mean / (jnp.sqrt(new_var) + _c(epsilon, f32))
    new_w = w - _c(eta, f32) * (adam_step + _c(wd, f32) * w)
    # MXNet skips the whole update (nothing is written) when rescale_grad is NaN, Inf or 0.
    scale = jnp.asarray(scale, f32).reshape(())
    ok = jnp.isfinite(scale) & (scale != 0)
    return (
        jnp.where(ok, new_w, w),
        jnp.where(ok, new_mean, mean),
        jnp.where(ok, new_var, var),
        ok,
    )


@register(
    "_contrib_adamw_update",
    inputs=("weight", "grad", "mean", "var", "rescale_grad"),
    attrs=_ADAMW_ATTRS,
    num_outputs=3,
    aliases=("_adamw_update",),
    differentiable=False,
)
def adamw_update(weight, grad, mean, var, rescale_grad, lr, beta1, beta2, epsilon, wd, eta,
                 clip_gradient):
    """AdamW step (``nd.contrib.adamw_update``), no bias correction, decoupled weight decay.

    ``rescale_grad`` is an array input (shape ``(1,)``). Returns
    ``(new_weight, new_mean, new_var)``; all three are returned unchanged when
    ``rescale_grad`` is NaN, Inf or 0 (MXNet skips the update)::

        g = clip(rescale_grad * grad, clip_gradient)
        mean = beta1 * mean + (1 - beta1) * g
        var = beta2 * var + (1 - beta2) * g * g
        weight = weight - eta * (lr * mean / (sqrt(var) + epsilon) + wd * weight)
    """
    new_w, new_mean, new_var, _ = _adamw(
        weight, grad, mean, var, rescale_grad, lr, beta1, beta2, epsilon, wd, eta, clip_gradient
    )
    return new_w.astype(weight.dtype), new_mean.astype(mean.dtype), new_var.astype(var.dtype)


@register(
    "_contrib_mp_adamw_update",
    inputs=("weight", "grad", "mean", "var", "weight32", "rescale_grad"),
    attrs=_ADAMW_ATTRS,
    num_outputs=4,
    aliases=("_mp_adamw_update",),
    differentiable=False,
)
def mp_adamw_update(weight, grad, mean, var, weight32, rescale_grad, lr, beta1, beta2, epsilon,
                    wd, eta, clip_gradient):
    """Multi-precision AdamW: ``_contrib_adamw_update``'s formula on the float32 master copy.

    Returns ``(new_weight, new_mean, new_var, new_weight32)`` with
    ``new_weight = cast(new_weight32)``; skipped (inputs returned) when ``rescale_grad``
    is NaN, Inf or 0.
    """
    w32, new_mean, new_var, ok = _adamw(
        weight32, grad, mean, var, rescale_grad, lr, beta1, beta2, epsilon, wd, eta, clip_gradient
    )
    new_weight = jnp.where(ok, w32.astype(weight.dtype), weight)
    return new_weight, new_mean, new_var, w32


@register(
    "ftml_update",
    inputs=("weight", "grad", "d", "v", "z"),
    attrs={
        **_LR,
        "beta1": Attr(FLOAT, 0.6),
        "beta2": Attr(FLOAT, 0.999),
        "epsilon": Attr(FLOAT, 1e-8),
        "t": Attr(INT),
        "wd": Attr(FLOAT, 0.0),
        "rescale_grad": Attr(FLOAT, 1.0),
        "clip_grad": Attr(FLOAT, -1.0),
    },
    num_outputs=4,
    differentiable=False,
)
def ftml_update(weight, grad, d, v, z, lr, beta1, beta2, epsilon, t, wd, rescale_grad, clip_grad):
    """FTML step at update count ``t`` (clipping attribute is ``clip_grad``, as in MXNet).

    Returns ``(new_weight, new_d, new_v, new_z)``::

        g = clip(rescale_grad * grad + wd * weight, clip_grad)
        v = beta2 * v + (1 - beta2) * g * g
        d_t = (1 - beta1 ** t) / lr * (sqrt(v / (1 - beta2 ** t)) + epsilon)
        z = beta1 * z + (1 - beta1) * g - (d_t - beta1 * d) * weight
        d = d_t
        weight = -z / d_t
    """
    dt = weight.dtype
    g = _c(rescale_grad, dt) * grad + _c(wd, dt) * weight
    if clip_grad >= 0:
        g = _clip(g, _c(clip_grad, dt))
    b1, b2 = _c(beta1, dt), _c(beta2, dt)
    new_v = b2 * v + (1 - b2) * g * g
    d_t = (1 - _powf(beta1, t, dt)) / _c(lr, dt) * (
        jnp.sqrt(new_v / (1 - _powf(beta2, t, dt))) + _c(epsilon, dt))
    new_z = b1 * z + (1 - b1) * g - (d_t - b1 * d) * weight
    return -new_z / d_t, d_t, new_v, new_z


# ---------------------------------------------------------------------------
# RMSProp


_RMSPROP_ATTRS = {
    **_LR,
    "gamma1": Attr(FLOAT, 0.95),
    "epsilon": Attr(FLOAT, 1e-8),
    **_COMMON,
    "clip_weights": Attr(FLOAT, -1.0),
}


def _rms_grad(weight, grad, wd, rescale_grad, clip_gradient):
    dt = weight.dtype
    g = _c(rescale_grad, dt) * grad + _c(wd, dt) * weight
    if clip_gradient >= 0:
        g = _clip(g, _c(clip_gradient, dt))
    return g


@register(
    "rmsprop_update",
    inputs=("weight", "grad", "n"),
    attrs=_RMSPROP_ATTRS,
    num_outputs=2,
    differentiable=False,
)
def rmsprop_update(weight, grad, n, lr, gamma1, epsilon, wd, rescale_grad, clip_gradient,
                   clip_weights):
    """RMSProp (Tieleman & Hinton) step; epsilon is INSIDE the square root.

    Returns ``(new_weight, new_n)``::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        n = (1 - gamma1) * g * g + gamma1 * n
        weight = clip(weight - lr * g / sqrt(n + epsilon), clip_weights)
    """
    dt = weight.dtype
    g = _rms_grad(weight, grad, wd, rescale_grad, clip_gradient)
    g1 = _c(gamma1, dt)
    new_n = (1 - g1) * (g * g) + g1 * n
    new_w = weight - _c(lr, dt) * (g / jnp.sqrt(new_n + _c(epsilon, dt)))
    if clip_weights >= 0:
        new_w = _clip(new_w, _c(clip_weights, dt))
    return new_w, new_n


@register(
    "rmspropalex_update",
    inputs=("weight", "grad", "n", "g", "delta"),
    attrs={**_RMSPROP_ATTRS, "gamma2": Attr(FLOAT, 0.9)},
    num_outputs=4,
    differentiable=False,
)
def rmspropalex_update(weight, grad, n, g, delta, lr, gamma1, epsilon, wd, rescale_grad,
                       clip_gradient, clip_weights, gamma2):
    """Centered RMSProp (Graves 2013) step.

    Returns ``(new_weight, new_n, new_g, new_delta)``::

        grad = clip(rescale_grad * grad + wd * weight, clip_gradient)
        n = (1 - gamma1) * grad * grad + gamma1 * n
        g = (1 - gamma1) * grad + gamma1 * g
        delta = gamma2 * delta - lr * grad / sqrt(n - g * g + epsilon)
        weight = clip(weight + delta, clip_weights)
    """
    dt = weight.dtype
    gr = _rms_grad(weight, grad, wd, rescale_grad, clip_gradient)
    g1 = _c(gamma1, dt)
    new_n = (1 - g1) * gr * gr + g1 * n
    new_g = (1 - g1) * gr + g1 * g
    new_delta = _c(gamma2, dt) * delta - (
        _c(lr, dt) * gr / jnp.sqrt(new_n - new_g * new_g + _c(epsilon, dt))
    )
    new_w = weight + new_delta
    if clip_weights >= 0:
        new_w = _clip(new_w, _c(clip_weights, dt))
    return new_w, new_n, new_g, new_delta


# ---------------------------------------------------------------------------
# FTRL, signSGD, Signum


@register(
    "ftrl_update",
    inputs=("weight", "grad", "z", "n"),
    attrs={**_LR, "lamda1": Attr(FLOAT, 0.01), "beta": Attr(FLOAT, 1.0), **_COMMON},
    num_outputs=3,
    differentiable=False,
)
def ftrl_update(weight, grad, z, n, lr, lamda1, beta, wd, rescale_grad, clip_gradient):
    """FTRL-proximal step. Returns ``(new_weight, new_z, new_n)``::

        g = clip(rescale_grad * grad, clip_gradient)
        z = z + g - (sqrt(n + g * g) - sqrt(n)) * weight / lr
        n = n + g * g
        weight = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (abs(z) > lamda1)
    """
    dt = weight.dtype
    g = _rescaled_clipped(grad, rescale_grad, clip_gradient, dt)
    lr = _c(lr, dt)
    lamda1 = _c(lamda1, dt)
    new_z = z + (g - (jnp.sqrt(n + g * g) - jnp.sqrt(n)) * weight / lr)
    new_n = n + g * g
    new_w = (
        (_sign(new_z) * lamda1 - new_z)
        / ((_c(beta, dt) + jnp.sqrt(new_n)) / lr + _c(wd, dt))
        * (jnp.abs(new_z) > lamda1).astype(dt)
    )
    return new_w, new_z, new_n


@register(
    "signsgd_update",
    inputs=("weight", "grad"),
    attrs={**_LR, **_COMMON},
    differentiable=False,
)
def signsgd_update(weight, grad, lr, wd, rescale_grad, clip_gradient):
    """signSGD step (``rescale_grad`` and ``clip_gradient`` cannot change a sign: unused)::

        weight = (1 - lr * wd) * weight - lr * sign(grad)
    """
    dt = weight.dtype
    lr = _c(lr, dt)
    return (1 - lr * _c(wd, dt)) * weight - lr * _sign(grad.astype(dt))


@register(
    "signum_update",
    inputs=("weight", "grad", "mom"),
    attrs={**_LR, **_MOMENTUM, **_COMMON, "wd_lh": Attr(FLOAT, 0.0)},
    num_outputs=2,
    differentiable=False,
)
def signum_update(weight, grad, mom, lr, momentum, wd, rescale_grad, clip_gradient, wd_lh):
    """Signum step (momentum kept with a negative sign, as MXNet's kernel).

    Returns ``(new_weight, new_mom)``::

        mom = momentum * mom - (1 - momentum) * wd * weight
              - (1 - momentum) * clip(rescale_grad * grad, clip_gradient)
        weight = (1 - lr * wd_lh) * weight + lr * sign(mom)
    """
    dt = weight.dtype
    m, wd = _c(momentum, dt), _c(wd, dt)
    if clip_gradient >= 0:
        grad_term = (1 - m) * _rescaled_clipped(grad, rescale_grad, clip_gradient, dt)
    else:
        grad_term = ((1 - m) * _c(rescale_grad, dt)) * grad
    new_mom = m * mom - (1 - m) * wd * weight - grad_term
    lr = _c(lr, dt)
    new_w = (1 - lr * _c(wd_lh, dt)) * weight + lr * _sign(new_mom)
    return new_w, new_mom


# ---------------------------------------------------------------------------
# LAMB


_LAMB1_ATTRS = {
    "beta1": Attr(FLOAT, 0.9),
    "beta2": Attr(FLOAT, 0.999),
    "epsilon": Attr(FLOAT, 1e-6),
    "t": Attr(INT),
    "bias_correction": Attr(BOOL, True),
    "wd": Attr(FLOAT),
    "rescale_grad": Attr(FLOAT, 1.0),
    "clip_gradient": Attr(FLOAT, -1.0),
}
_LAMB2_ATTRS = {
    **_LR,
    "lower_bound": Attr(FLOAT, -1.0),
    "upper_bound": Attr(FLOAT, -1.0),
}


def _lamb_phase1(weight, grad, mean, var, beta1, beta2, epsilon, t, bias_correction, wd,
                 rescale_grad, clip_gradient, dtype):
    g = _rescaled_clipped(grad, rescale_grad, clip_gradient, dtype)
    b1, b2 = _c(beta1, dtype), _c(beta2, dtype)
    new_mean = b1 * mean + (1 - b1) * g
    new_var = b2 * var + (1 - b2) * g * g
    m, v = new_mean, new_var
    if bias_correction:
        # MXNet computes beta ** t with std::pow(float, int), i.e. in double.
        m = m / (1 - _powf(beta1, t, dtype))
        v = v / (1 - _powf(beta2, t, dtype))
    out = m / (jnp.sqrt(v) + _c(epsilon, dtype)) + _c(wd, dtype) * weight.astype(dtype)
    return out, new_mean, new_var


def _lamb_phase2(weight, g, r1, r2, lr, lower_bound, upper_bound, dtype):
    r1 = jnp.reshape(r1, (-1,))[0].astype(dtype)
    r2 = jnp.reshape(r2, (-1,))[0].astype(dtype)
    if lower_bound >= 0:
        r1 = jnp.maximum(r1, _c(lower_bound, dtype))
    if upper_bound >= 0:
        r1 = jnp.minimum(r1, _c(upper_bound, dtype))
    lr = _c(lr, dtype)
    ratio_ok = (r1 != 0) & (r2 != 0)
    lr = jnp.where(ratio_ok, lr * r1 / jnp.where(ratio_ok, r2, 1), lr)
    return weight.astype(dtype) - lr * g.astype(dtype)


@register(
    "lamb_update_phase1",
    inputs=("weight", "grad", "mean", "var"),
    attrs=_LAMB1_ATTRS,
    num_outputs=3,
    differentiable=False,
)
def lamb_update_phase1(weight, grad, mean, var, beta1, beta2, epsilon, t, bias_correction, wd,
                       rescale_grad, clip_gradient):
    """LAMB phase 1: the update direction. Returns ``(g, new_mean, new_var)``::

        grad = clip(rescale_grad * grad, clip_gradient)
        mean = beta1 * mean + (1 - beta1) * grad
        var = beta2 * var + (1 - beta2) * grad * grad
        if bias_correction: m = mean / (1 - beta1 ** t); v = var / (1 - beta2 ** t)
        else:               m = mean;                   v = var
        g = m / (sqrt(v) + epsilon) + wd * weight
    """
    return _lamb_phase1(weight, grad, mean, var, beta1, beta2, epsilon, t, bias_correction, wd,
                        rescale_grad, clip_gradient, weight.dtype)


@register(
    "lamb_update_phase2",
    inputs=("weight", "g", "r1", "r2"),
    attrs=_LAMB2_ATTRS,
    differentiable=False,
)
def lamb_update_phase2(weight, g, r1, r2, lr, lower_bound, upper_bound):
    """LAMB phase 2: trust-ratio step. ``r1 = ||weight||``, ``r2 = ||g||`` (shape ``(1,)``)::

        if lower_bound >= 0: r1 = max(r1, lower_bound)
        if upper_bound >= 0: r1 = min(r1, upper_bound)
        lr = lr * r1 / r2  unless r1 == 0 or r2 == 0
        weight = weight - lr * g
    """
    return _lamb_phase2(weight, g, r1, r2, lr, lower_bound, upper_bound, weight.dtype)


@register(
    "mp_lamb_update_phase1",
    inputs=("weight", "grad", "mean", "var", "weight32"),
    attrs=_LAMB1_ATTRS,
    num_outputs=3,
    differentiable=False,
)
def mp_lamb_update_phase1(weight, grad, mean, var, weight32, beta1, beta2, epsilon, t,
                          bias_correction, wd, rescale_grad, clip_gradient):
    """Multi-precision LAMB phase 1: ``lamb_update_phase1`` in float32 with ``wd * weight32``.

    Returns ``(g, new_mean, new_var)``, all float32.
    """
    return _lamb_phase1(weight32, grad, mean, var, beta1, beta2, epsilon, t, bias_correction, wd,
                        rescale_grad, clip_gradient, jnp.float32)


@register(
    "mp_lamb_update_phase2",
    inputs=("weight", "g", "r1", "r2", "weight32"),
    attrs=_LAMB2_ATTRS,
    differentiable=False,
)
def mp_lamb_update_phase2(weight, g, r1, r2, weight32, lr, lower_bound, upper_bound):
    """Multi-precision LAMB phase 2: ``weight = cast(weight32 - lr' * g)`` (``lr'`` as phase 2).

    As in MXNet 1.9's kernel, ``weight32`` itself is not updated by this operator.
    """
    w32 = _lamb_phase2(weight32, g, r1, r2, lr, lower_bound, upper_bound, jnp.float32)
    return w32.astype(weight.dtype)


__all__ = ["UPDATED_INPUTS", "multi_sgd_step", "nag_step"]


def _declare_mutated_inputs() -> None:
    from ..registry import get

    for name, inputs in UPDATED_INPUTS.items():
        get(name).mutate_inputs = inputs


_declare_mutated_inputs()
