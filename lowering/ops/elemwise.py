"""Element-wise operators: unary math, binary (same-shape and broadcasting), scalar forms.

MXNet semantics kept here:

* ``elemwise_*`` (what Symbol ``a + b`` emits) need identical shapes;
  ``broadcast_*`` (what NDArray ``a + b`` emits) align shapes from the right.
* Comparisons and logical ops return 0/1 in the input dtype, not bool.
* Integer division truncates toward zero and stays integer.
* ``round`` rounds halves away from zero; ``rint`` rounds halves down
  (``floor`` unless the fraction is above one half); ``fix`` truncates.
* ``mod`` takes the sign of the divisor (Python's ``%``); ``x mod 0`` is 0.
* Ties follow MXNet's backward kernels: ``maximum(a, b)`` sends the gradient to
  ``a`` where ``a >= b`` (else to ``b``), ``minimum`` to ``a`` where ``a <= b``;
  ``hard_sigmoid`` has zero gradient where it touches 0 or 1.
* Scalar ops keep the array's dtype (``int32 + 2.5`` stays int32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
from jax import lax

from ..attrs import BOOL, FLOAT, INT, NUMBER, STR, Attr
from ..registry import OpError, register

# ---------------------------------------------------------------------------
# unary


def _rint(x):
    floor = jnp.floor(x)
    return jnp.where(x - floor > 0.5, floor + 1, floor)


def _round_half_away(x):
    return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def _zero_grad(fn):
    """Piecewise-constant functions: MXNet defines their gradient as zero."""

    def wrapped(x):
        return lax.stop_gradient(fn(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else fn(x)

    return wrapped


_UNARY = {
    "abs": jnp.abs,
    "negative": jnp.negative,
    "sign": _zero_grad(jnp.sign),
    "square": jnp.square,
    "sqrt": jnp.sqrt,
    "rsqrt": lax.rsqrt,
    "cbrt": jnp.cbrt,
    "rcbrt": lambda x: 1.0 / jnp.cbrt(x),
    "reciprocal": jnp.reciprocal,
    "exp": jnp.exp,
    "expm1": jnp.expm1,
    "log": jnp.log,
    "log2": jnp.log2,
    "log10": jnp.log10,
    "log1p": jnp.log1p,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "arcsin": jnp.arcsin,
    "arccos": jnp.arccos,
    "arctan": jnp.arctan,
    "sinh": jnp.sinh,
    "cosh": jnp.cosh,
    "tanh": jnp.tanh,
    "arcsinh": jnp.arcsinh,
    "arccosh": jnp.arccosh,
    "arctanh": jnp.arctanh,
    "degrees": jnp.degrees,
    "radians": jnp.radians,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "softsign": lambda x: x / (1 + jnp.abs(x)),
    "erf": jsp.erf,
    "erfinv": jsp.erfinv,
    "gamma": jsp.gamma,
    "gammaln": jsp.gammaln,
    "floor": _zero_grad(jnp.floor),
    "ceil": _zero_grad(jnp.ceil),
    "trunc": _zero_grad(jnp.trunc),
    "fix": _zero_grad(jnp.trunc),
    "round": _zero_grad(_round_half_away),
    "rint": _zero_grad(_rint),
    "logical_not": lambda x: (x == 0).astype(x.dtype),
}


def _register_unary(name, fn):
    register(name)(lambda data: fn(data))


for _name, _fn in _UNARY.items():
    _register_unary(_name, _fn)


@register("hard_sigmoid", attrs={"alpha": Attr(FLOAT, 0.2), "beta": Attr(FLOAT, 0.5)})
def hard_sigmoid(data, alpha, beta):
    """``clip(alpha * x + beta, 0, 1)``; the gradient is ``alpha`` only where the value is
    strictly inside ``(0, 1)`` (MXNet's ``hard_sigmoid_backward``)."""
    z = alpha * data + beta
    inside = (z > 0) & (z < 1)
    return jnp.where(inside, z, lax.stop_gradient(jnp.clip(z, 0.0, 1.0))).astype(data.dtype)


@register("_copy", aliases=("identity",))
def copy(data):
    """The identity (a new array)."""
    return data


@register("BlockGrad", aliases=("stop_gradient",))
def block_grad(data):
    """Passes ``data`` through; no gradient flows back."""
    return lax.stop_gradient(data)


@register(
    "make_loss",
    aliases=("MakeLoss",),
    attrs={
        "grad_scale": Attr(FLOAT, 1.0),
        "valid_thresh": Attr(FLOAT, 0.0),
        "normalization": Attr(STR, "null", ("null", "batch", "valid")),
    },
)
def make_loss(data, grad_scale, valid_thresh, normalization):
    """Identity forward; the backward ignores the head gradient and gives ``grad_scale``
    everywhere, divided by the batch size (``normalization='batch'``) or by the number of
    elements above ``valid_thresh`` (at least 1; ``'valid'``), as MXNet's ``MakeLoss``."""

    @jax.custom_vjp
    def f(x):
        return x

    def backward(x, g):
        scale = jnp.asarray(grad_scale, g.dtype)
        if normalization == "batch":
            scale = scale / x.shape[0]
        elif normalization == "valid":
            valid = jnp.sum((x > valid_thresh).astype(g.dtype))
            scale = scale / jnp.maximum(valid, 1)
        return (jnp.full_like(g, scale),)

    f.defvjp(lambda x: (x, x), backward)
    return f(data)


# ---------------------------------------------------------------------------
# binary


def _true_div(a, b):
    if jnp.issubdtype(a.dtype, jnp.integer) and jnp.issubdtype(b.dtype, jnp.integer):
        return lax.div(a, jnp.where(b == 0, 1, b).astype(a.dtype))
    return a / b


def _maximum(a, b):
    # where(), not jnp.maximum: on ties jax would split the gradient in halves; MXNet's
    # _backward_maximum gives it all to lhs (a >= b). NaN in either operand propagates.
    return jnp.where(jnp.isnan(a) | (a >= b), a, b) if _inexact(a, b) else jnp.maximum(a, b)


def _minimum(a, b):
    # MXNet's _backward_minimum: lhs gets the gradient where a <= b.
    return jnp.where(jnp.isnan(a) | (a <= b), a, b) if _inexact(a, b) else jnp.minimum(a, b)


def _inexact(a, b):
    return jnp.issubdtype(jnp.result_type(a, b), jnp.inexact)


def _mod(a, b):
    # Sign of the divisor (Python's %), and 0 where the divisor is 0 (MXNet's mshadow_op::mod).
    zero = b == 0
    safe = jnp.where(zero, jnp.ones_like(b), b)
    out = jnp.mod(a, safe)
    return jnp.where(zero, jnp.zeros_like(out), out)


def _compare(fn):
    def cmp(a, b):
        dtype = jnp.result_type(a, b)
        return lax.stop_gradient(fn(a, b).astype(dtype))

    return cmp


def _logical(fn):
    def op(a, b):
        dtype = jnp.result_type(a, b)
        return lax.stop_gradient(fn(a != 0, b != 0).astype(dtype))

    return op


_BINARY = {
    "add": jnp.add,
    "sub": jnp.subtract,
    "mul": jnp.multiply,
    "div": _true_div,
    "mod": _mod,
    "power": jnp.power,
    "maximum": _maximum,
    "minimum": _minimum,
    "hypot": jnp.hypot,
    "equal": _compare(jnp.equal),
    "not_equal": _compare(jnp.not_equal),
    "greater": _compare(jnp.greater),
    "greater_equal": _compare(jnp.greater_equal),
    "lesser": _compare(jnp.less),
    "lesser_equal": _compare(jnp.less_equal),
    "logical_and": _logical(jnp.logical_and),
    "logical_or": _logical(jnp.logical_or),
    "logical_xor": _logical(jnp.logical_xor),
}

# MXNet's names: broadcast_<op> for the broadcasting form; the same-shape form is
# elemwise_<op> for the four arithmetic ops and _<op> for the rest.
_SAME_SHAPE_NAMES = {
    "add": ("elemwise_add", ("_plus", "_add", "_Plus")),
    "sub": ("elemwise_sub", ("_minus", "_sub", "_Minus")),
    "mul": ("elemwise_mul", ("_mul", "_Mul")),
    "div": ("elemwise_div", ("_div", "_Div")),
}
_BROADCAST_ALIASES = {"add": ("broadcast_plus",), "sub": ("broadcast_minus",)}


def _same_shape(name, fn):
    def op(lhs, rhs):
        if lhs.shape != rhs.shape:
            raise OpError(
                f"operator {name}: shapes of lhs {tuple(lhs.shape)} and rhs {tuple(rhs.shape)} "
                "must be equal (use broadcast_* to broadcast)"
            )
        return fn(lhs, rhs)

    return op


def _broadcast(name, fn):
    def op(lhs, rhs):
        try:
            jnp.broadcast_shapes(lhs.shape, rhs.shape)
        except ValueError:
            raise OpError(
                f"operator {name}: shapes lhs {tuple(lhs.shape)} and rhs {tuple(rhs.shape)} "
                "cannot be broadcast together"
            ) from None
        return fn(lhs, rhs)

    return op


for _key, _fn in _BINARY.items():
    _same, _aliases = _SAME_SHAPE_NAMES.get(_key, (f"_{_key}", ()))
    register(_same, inputs=("lhs", "rhs"), aliases=_aliases)(_same_shape(_same, _fn))
    _bname = f"broadcast_{_key}"
    register(_bname, inputs=("lhs", "rhs"), aliases=_BROADCAST_ALIASES.get(_key, ()))(
        _broadcast(_bname, _fn)
    )


# ---------------------------------------------------------------------------
# array (op) scalar


def _scalar_like(x, scalar):
    return jnp.asarray(scalar, dtype=x.dtype)


def _scalar_op(fn, reverse):
    def op(data, scalar, is_int):
        s = _scalar_like(data, scalar)
        return fn(s, data) if reverse else fn(data, s)

    return op


_SCALAR = {
    "_plus_scalar": ("add", False),
    "_minus_scalar": ("sub", False),
    "_rminus_scalar": ("sub", True),
    "_mul_scalar": ("mul", False),
    "_div_scalar": ("div", False),
    "_rdiv_scalar": ("div", True),
    "_mod_scalar": ("mod", False),
    "_rmod_scalar": ("mod", True),
    "_power_scalar": ("power", False),
    "_rpower_scalar": ("power", True),
    "_maximum_scalar": ("maximum", False),
    "_minimum_scalar": ("minimum", False),
    "_hypot_scalar": ("hypot", False),
    "_equal_scalar": ("equal", False),
    "_not_equal_scalar": ("not_equal", False),
    "_greater_scalar": ("greater", False),
    "_greater_equal_scalar": ("greater_equal", False),
    "_lesser_scalar": ("lesser", False),
    "_lesser_equal_scalar": ("lesser_equal", False),
    "_logical_and_scalar": ("logical_and", False),
    "_logical_or_scalar": ("logical_or", False),
    "_logical_xor_scalar": ("logical_xor", False),
}
_SCALAR_ALIASES = {
    "_plus_scalar": ("_PlusScalar",),
    "_minus_scalar": ("_MinusScalar",),
    "_rminus_scalar": ("_RMinusScalar",),
    "_mul_scalar": ("_MulScalar",),
    "_div_scalar": ("_DivScalar",),
    "_rdiv_scalar": ("_RDivScalar",),
    "_power_scalar": ("_PowerScalar",),
    "_rpower_scalar": ("_RPowerScalar",),
    "_maximum_scalar": ("_MaximumScalar",),
    "_minimum_scalar": ("_MinimumScalar",),
}
_SCALAR_ATTRS = {"scalar": Attr(NUMBER, 1.0), "is_int": Attr(BOOL, True)}

for _name, (_key, _rev) in _SCALAR.items():
    register(_name, attrs=_SCALAR_ATTRS, aliases=_SCALAR_ALIASES.get(_name, ()))(
        _scalar_op(_BINARY[_key], _rev)
    )


@register("smooth_l1", attrs={"scalar": Attr(FLOAT, 1.0)})
def smooth_l1(data, scalar):
    """``0.5 (sigma x)^2`` when ``|x| < 1/sigma^2``, else ``|x| - 0.5/sigma^2``."""
    s2 = scalar * scalar
    return jnp.where(jnp.abs(data) < 1.0 / s2, 0.5 * s2 * data * data, jnp.abs(data) - 0.5 / s2)


@register("add_n", inputs=("*args",), attrs={"num_args": Attr(INT)}, aliases=("ElementWiseSum",))
def add_n(*args, num_args):
    """Sum of all inputs (same shapes)."""
    out = args[0]
    for a in args[1:]:
        out = out + a
    return out
