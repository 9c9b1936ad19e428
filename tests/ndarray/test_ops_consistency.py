"""Eager vs hybridized agreement and finite-difference gradient checks, one spec per op use.

(a) ``nd.<op>`` run eagerly and the same call inside a hybridized ``HybridBlock``
    (``hybrid_forward(F, *xs)``) give the same outputs and input gradients
    (float32, 1e-5 relative).
(b) In float64, the autograd gradient of ``sum(head * f(x))`` (hybridized) matches
    central finite differences (``eps = 1e-6``). Inputs are drawn away from kinks
    (relu/abs at 0, rounding at integers and halves, clip bounds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybrid as mx
from hybrid import autograd, gluon
from tests.compiled import compiled_somewhere
from tests.numeric import central_difference

RTOL_HYBRID, ATOL_HYBRID = 1e-5, 1e-6
RTOL_FD, ATOL_FD = 1e-5, 1e-6
EPS = 1e-6


# ---------------------------------------------------------------------------
# inputs


def _draw(kind, shape, rng: np.random.Generator) -> np.ndarray:
    """Values of one input kind, away from the kinks of the ops that use it."""
    if isinstance(kind, tuple):
        tag, arg = kind
        if tag == "idx":  # integer indices (as float, the way MXNet users pass them)
            return rng.integers(0, arg, size=shape).astype(np.float64)
        if tag == "raw":  # out-of-range indices for take/pick modes
            return np.asarray(arg, dtype=np.float64).reshape(shape)
        raise ValueError(tag)
    size = shape
    if kind == "any":  # |x| in [0.2, 1): away from 0 (relu, abs, leaky, sign, floor...)
        return rng.choice([-1.0, 1.0], size=size) * rng.uniform(0.2, 1.0, size=size)
    if kind == "pos":
        return rng.uniform(0.5, 2.0, size=size)
    if kind == "unit":  # inside (-1, 1) for arcsin/arctanh/erfinv
        return rng.choice([-1.0, 1.0], size=size) * rng.uniform(0.1, 0.8, size=size)
    if kind == "gt1":
        return rng.uniform(1.2, 3.0, size=size)
    if kind == "frac":  # away from integers and halves (round, rint, floor...)
        whole = rng.integers(-3, 3, size=size)
        return whole + rng.uniform(0.1, 0.4, size=size) * rng.choice([-1.0, 1.0], size=size)
    if kind == "cond":
        return rng.integers(0, 2, size=size).astype(np.float64)
    if kind == "spd":  # symmetric positive definite matrices on the last two axes
        a = rng.standard_normal(size)
        return a @ np.swapaxes(a, -1, -2) / size[-1] + np.eye(size[-1])
    if kind == "tril":  # lower triangular, diagonal in [1, 2]
        a = np.tril(rng.uniform(-1.0, 1.0, size=size), -1)
        return a + np.eye(size[-1]) * rng.uniform(1.0, 2.0, size=size)
    raise ValueError(kind)


_NON_DIFF_KINDS = ("cond",)


def _is_diff_kind(kind) -> bool:
    return not isinstance(kind, tuple) and kind not in _NON_DIFF_KINDS


@dataclass
class Spec:
    """One op use: ``fn(F, *xs)`` with inputs ``[(shape, kind), ...]``."""

    name: str
    fn: Callable
    inputs: list
    grad: bool = True
    """False for ops whose outputs carry no gradient (argmax, one_hot...): forward only."""
    fd: bool = True
    fd_kinds: list | None = None
    """Input kinds for the finite-difference check when they differ from ``inputs``."""
    train: bool = True
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def diff_positions(self, kinds=None) -> list[int]:
        kinds = kinds or [k for _, k in self.inputs]
        return [i for i, k in enumerate(kinds) if _is_diff_kind(k)]

    def draw(self, dtype, kinds=None) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + 1000 * len(self.name))
        kinds = kinds or [k for _, k in self.inputs]
        return [_draw(k, s, rng).astype(dtype) for (s, _), k in zip(self.inputs, kinds)]


def _u(name, shape=(2, 3, 4), kind="any", **kw):
    return Spec(name, lambda F, x, _n=name: getattr(F, _n)(x), [(shape, kind)], **kw)


def _b(name, lshape=(2, 3, 4), rshape=(1, 3, 1), lkind="any", rkind="any", **kw):
    return Spec(name, lambda F, a, b, _n=name: getattr(F, _n)(a, b),
                [(lshape, lkind), (rshape, rkind)], **kw)


S = (2, 3, 4)

SPECS: list[Spec] = []

# unary math: the ops the brief names one by one, the rest grouped by input domain (one
# multi-output block per group keeps the number of compilations down)
for _name in ("relu", "sigmoid", "tanh", "softsign", "erf"):
    SPECS.append(_u(_name))
_UNARY_GROUPS = {
    "any": ("abs", "negative", "square", "reciprocal", "exp", "expm1", "sin", "cos", "arctan",
            "sinh", "cosh", "arcsinh", "degrees", "radians", "sign"),
    "pos": ("sqrt", "rsqrt", "cbrt", "rcbrt", "log", "log2", "log10", "log1p", "gamma",
            "gammaln"),
    "unit": ("tan", "arcsin", "arccos", "arctanh", "erfinv"),
    "gt1": ("arccosh",),
    "frac": ("floor", "ceil", "round", "rint", "fix", "trunc"),
}
for _kind, _names in _UNARY_GROUPS.items():
    SPECS.append(Spec(f"unary-{_kind}-{'-'.join(_names)}" if len(_names) < 3 else
                      f"unary-{_kind}({len(_names)} ops)",
                      lambda F, x, _ns=_names: [getattr(F, n)(x) for n in _ns],
                      [((3, 4), _kind)]))
SPECS += [
    Spec("hard_sigmoid", lambda F, x: F.hard_sigmoid(x, alpha=0.3, beta=0.4), [(S, "any")]),
    Spec("smooth_l1", lambda F, x: F.smooth_l1(x, scalar=1.5), [(S, "any")]),
    Spec("clip", lambda F, x: F.clip(x, a_min=-0.55, a_max=0.45), [(S, "any")]),
]

# binary: broadcast and same-shape
for _name, _lk, _rk in [
    ("broadcast_add", "any", "any"), ("broadcast_sub", "any", "any"),
    ("broadcast_mul", "any", "any"), ("broadcast_div", "any", "pos"),
    ("broadcast_power", "pos", "any"), ("broadcast_maximum", "any", "any"),
    ("broadcast_minimum", "any", "any"), ("broadcast_hypot", "any", "any"),
    ("broadcast_mod", "pos", "pos"),
]:
    SPECS.append(_b(_name, lkind=_lk, rkind=_rk))
SPECS.append(Spec("broadcast_add-rank", lambda F, a, b: F.broadcast_add(a, b),
                  [((3, 1), "any"), ((2, 1, 4), "any")]))
for _name in ("broadcast_greater",):
    SPECS.append(_b(_name))
for _name, _rk in [("elemwise_add", "any"), ("elemwise_sub", "any"), ("elemwise_mul", "any"),
                   ("elemwise_div", "pos")]:
    SPECS.append(_b(_name, S, S, rkind=_rk))
SPECS.append(Spec("add_n", lambda F, a, b, c: F.add_n(a, b, c), [(S, "any")] * 3))

# array-scalar ops (operators emit _plus_scalar, _rminus_scalar, ... in both modes), as one
# multi-output block per input domain
SPECS += [
    Spec("scalar-ops-any", lambda F, x: [
        x + 2.5, x - 1.5, 2.0 - x, x * 3.0, x / 4.0, 3.0 / x, 2.0 ** x, x > 0.0,
        F._internal._maximum_scalar(x, scalar=0.1), F._internal._minimum_scalar(x, scalar=-0.1),
        F._internal._hypot_scalar(x, scalar=0.7),
    ], [((3, 4), "any")]),
    Spec("scalar-ops-pos", lambda F, x: [x ** 2.5, F._internal._mod_scalar(x, scalar=0.7),
                                         F._internal._rmod_scalar(x, scalar=2.5)],
         [((3, 4), "pos")]),
]

# reductions with axis / keepdims / exclude
_REDUCE_KWARGS = [
    {},
    {"axis": 1},
    {"axis": (0, 2), "keepdims": True},
    {"axis": 1, "exclude": True},
    {"axis": -1, "keepdims": True, "exclude": True},
]
# (test_reductions_eager_hybridized_and_numpy below draws further shapes and axes)
_REDUCE_CHOICE = {"sum": (0, 2, 4), "mean": (1, 3), "prod": (4,), "max": (3,),
                  "min": (2,), "nansum": (4,), "nanprod": (2,)}
for _name, _choice in _REDUCE_CHOICE.items():
    for _i in _choice:
        _kw = _REDUCE_KWARGS[_i]
        SPECS.append(Spec(f"{_name}-{_i}", lambda F, x, _n=_name, _k=_kw: getattr(F, _n)(x, **_k),
                          [(S, "any")]))
for _i, _kw in enumerate([{}, {"ord": 1, "axis": 1}, {"ord": 2, "axis": (0, 2), "keepdims": True}]):
    SPECS.append(Spec(f"norm-{_i}", lambda F, x, _k=_kw: F.norm(x, **_k), [(S, "any")]))
SPECS += [
    Spec("argmax", lambda F, x: F.argmax(x, axis=1), [(S, "any")], grad=False),
    Spec("argmin-keepdims", lambda F, x: F.argmin(x, axis=-1, keepdims=True), [(S, "any")],
         grad=False),
]

# shape manipulation
for _i, (_data, _shape, _kw) in enumerate([
    ((2, 3, 4), (4, 0, 2), {}), ((2, 3, 4), (-3, -2), {}), ((2, 6), (0, -4, 3, -1), {}),
    ((2, 3, 4), (-1, 0), {"reverse": True}), ((2, 3, 4, 5), (-3, -4, 2, -1, -2), {}),
]):
    SPECS.append(Spec(f"reshape-{_i}", lambda F, x, _s=_shape, _k=_kw: F.reshape(x, shape=_s, **_k),
                      [(_data, "any")]))
SPECS += [
    Spec("transpose", lambda F, x: F.transpose(x), [(S, "any")]),
    Spec("transpose-axes", lambda F, x: F.transpose(x, axes=(1, 2, 0)), [(S, "any")]),
    Spec("swapaxes", lambda F, x: F.swapaxes(x, dim1=0, dim2=2), [(S, "any")]),
    Spec("expand_dims", lambda F, x: F.expand_dims(x, axis=1), [(S, "any")]),
    Spec("squeeze", lambda F, x: F.squeeze(x), [((2, 1, 3, 1), "any")]),
    Spec("squeeze-axis", lambda F, x: F.squeeze(x, axis=(1,)), [((2, 1, 3, 1), "any")]),
    Spec("flatten", lambda F, x: F.flatten(x), [((2, 3, 2, 2), "any")]),
    Spec("concat", lambda F, a, b, c: F.concat(a, b, c, dim=1),
         [((2, 1, 4), "any"), ((2, 3, 4), "any"), ((2, 2, 4), "any")]),
    Spec("stack", lambda F, a, b, c: F.stack(a, b, c, axis=1), [((2, 4), "any")] * 3),
    Spec("split", lambda F, x: F.split(x, num_outputs=3, axis=1), [((2, 6, 2), "any")]),
    Spec("split-squeeze", lambda F, x: F.split(x, num_outputs=2, axis=0, squeeze_axis=True),
         [(S, "any")]),
    Spec("slice", lambda F, x: F.slice(x, begin=(0, 1, None), end=(2, None, 3), step=(1, 1, 2)),
         [(S, "any")]),
    Spec("slice-negstep", lambda F, x: F.slice(x, begin=(None, 3), end=(None, 0), step=(1, -2)),
         [((3, 5), "any")]),
    Spec("slice_axis", lambda F, x: F.slice_axis(x, axis=2, begin=1, end=-1), [(S, "any")]),
    Spec("slice_like", lambda F, x, y: F.slice_like(x, y, axes=(0, 2)),
         [(S, "any"), ((1, 2, 3), "cond")]),
    Spec("tile", lambda F, x: F.tile(x, reps=(2, 1, 3)), [((2, 3), "any")]),
    Spec("repeat", lambda F, x: F.repeat(x, repeats=2, axis=1), [(S, "any")]),
    Spec("flip", lambda F, x: F.flip(x, axis=1), [(S, "any")]),
    Spec("broadcast_to", lambda F, x: F.broadcast_to(x, shape=(2, 3, 4)), [((2, 1, 4), "any")]),
    Spec("broadcast_like", lambda F, x, y: F.broadcast_like(x, y), [((1, 3, 1), "any"),
                                                                    (S, "cond")]),
    Spec("broadcast_axis", lambda F, x: F.broadcast_axis(x, axis=(0, 2), size=(2, 4)),
         [((1, 3, 1), "any")]),
]

# indexing and selection
SPECS += [
    Spec("take", lambda F, a, i: F.take(a, i),
         [((5, 3), "any"), ((2, 4), ("raw", [7.0, -1.0, 2.0, 4.0, 0.0, 1.0, 3.0, 3.0]))]),
    Spec("take-wrap", lambda F, a, i: F.take(a, i, axis=1, mode="wrap"),
         [((2, 5), "any"), ((4,), ("raw", [7.0, -1.0, 2.0, 4.0]))]),
    Spec("pick", lambda F, x, i: F.pick(x, i, axis=1), [((3, 4), "any"), ((3,), ("idx", 4))]),
    Spec("pick-axis0-keepdims", lambda F, x, i: F.pick(x, i, axis=0, keepdims=True),
         [((3, 4), "any"), ((4,), ("idx", 3))]),
    Spec("pick-wrap", lambda F, x, i: F.pick(x, i, axis=-1, mode="wrap"),
         [((3, 4), "any"), ((3,), ("raw", [5.0, -1.0, 2.0]))]),
    Spec("one_hot", lambda F, i: F.one_hot(i, depth=5, on_value=2.0, off_value=-1.0),
         [((2, 3), ("idx", 6))], grad=False),
    Spec("where", lambda F, c, x, y: F.where(c, x, y), [(S, "cond"), (S, "any"), (S, "any")]),
    Spec("where-rows", lambda F, c, x, y: F.where(c, x, y),
         [((2,), "cond"), (S, "any"), (S, "any")]),
    Spec("topk-value", lambda F, x: F.topk(x, axis=-1, k=2, ret_typ="value"), [(S, "any")]),
    Spec("topk-indices", lambda F, x: F.topk(x, axis=1, k=2), [(S, "any")], grad=False),
    Spec("sort", lambda F, x: F.sort(x, axis=1, is_ascend=False), [(S, "any")]),
    Spec("argsort", lambda F, x: F.argsort(x, axis=0), [(S, "any")], grad=False),
    Spec("SequenceMask", lambda F, x, n: F.SequenceMask(x, n, use_sequence_length=True,
                                                       value=-1.0),
         [((4, 3, 2), "any"), ((3,), ("raw", [1.0, 4.0, 2.0]))]),
    Spec("SequenceLast", lambda F, x, n: F.SequenceLast(x, n, use_sequence_length=True),
         [((4, 3, 2), "any"), ((3,), ("raw", [1.0, 4.0, 2.0]))]),
    Spec("SequenceReverse", lambda F, x, n: F.SequenceReverse(x, n, use_sequence_length=True),
         [((4, 3, 2), "any"), ((3,), ("raw", [1.0, 4.0, 2.0]))]),
]

# matrix products
for _ta in (False, True):
    for _tb in (False, True):
        _ls = (3, 4) if not _ta else (4, 3)
        _rs = (4, 5) if not _tb else (5, 4)
        SPECS.append(Spec(f"dot-{int(_ta)}{int(_tb)}",
                          lambda F, a, b, _a=_ta, _b=_tb: F.dot(a, b, transpose_a=_a,
                                                                transpose_b=_b),
                          [(_ls, "any"), (_rs, "any")]))
        SPECS.append(Spec(f"batch_dot-{int(_ta)}{int(_tb)}",
                          lambda F, a, b, _a=_ta, _b=_tb: F.batch_dot(a, b, transpose_a=_a,
                                                                      transpose_b=_b),
                          [((2,) + _ls, "any"), ((2,) + _rs, "any")]))
SPECS += [
    Spec("dot-nd", lambda F, a, b: F.dot(a, b), [((2, 3, 4), "any"), ((4, 2, 2), "any")]),
    Spec("dot-nd-tt", lambda F, a, b: F.dot(a, b, transpose_a=True, transpose_b=True),
         [((4, 3, 2), "any"), ((5, 4), "any")]),
    Spec("dot-1d", lambda F, a, b: F.dot(a, b), [((4,), "any"), ((4,), "any")]),
    Spec("linalg_gemm2", lambda F, a, b: F.linalg.gemm2(a, b, transpose_b=True, alpha=-1.5),
         [((2, 3, 4), "any"), ((2, 5, 4), "any")]),
]

# linear algebra (nd.linalg.*)
SPECS += [
    Spec("linalg_gemm", lambda F, a, b, c: F.linalg.gemm(a, b, c, transpose_a=True, alpha=2.0,
                                                         beta=-0.5),
         [((2, 4, 3), "any"), ((2, 4, 5), "any"), ((2, 3, 5), "any")]),
    Spec("linalg_gemm-axis", lambda F, a, b, c: F.linalg.gemm(a, b, c, axis=-3),
         [((3, 2, 4), "any"), ((4, 2, 5), "any"), ((3, 2, 5), "any")]),
    Spec("linalg_potrf", lambda F, a: F.linalg.potrf(a), [((2, 3, 3), "spd")]),
    Spec("linalg_potri", lambda F, a: F.linalg.potri(a), [((3, 3), "tril")]),
    Spec("linalg_trsm", lambda F, a, b: F.linalg.trsm(a, b, alpha=1.5),
         [((2, 3, 3), "tril"), ((2, 3, 4), "any")]),
    Spec("linalg_trsm-right-t", lambda F, a, b: F.linalg.trsm(a, b, rightside=True,
                                                              transpose=True),
         [((3, 3), "tril"), ((4, 3), "any")]),
    Spec("linalg_trmm", lambda F, a, b: F.linalg.trmm(a, b, lower=False, alpha=2.0),
         [((3, 3), "any"), ((3, 2), "any")]),
    Spec("linalg_syrk", lambda F, a: F.linalg.syrk(a, transpose=True, alpha=0.5),
         [((2, 4, 3), "any")]),
    Spec("linalg_sumlogdiag", lambda F, a: F.linalg.sumlogdiag(a), [((2, 3, 3), "spd")]),
    Spec("linalg_extractdiag", lambda F, a: F.linalg.extractdiag(a, offset=1),
         [((2, 3, 3), "any")]),
    Spec("linalg_makediag", lambda F, a: F.linalg.makediag(a, offset=-1), [((2, 3), "any")]),
    Spec("linalg_inverse", lambda F, a: F.linalg.inverse(a), [((2, 3, 3), "spd")]),
    Spec("linalg_det", lambda F, a: F.linalg.det(a), [((3, 3), "spd")]),
    Spec("linalg_slogdet", lambda F, a: F.linalg.slogdet(a), [((2, 3, 3), "spd")]),
    Spec("moments", lambda F, x: F.moments(x, axes=(0, 2), keepdims=True), [(S, "any")]),
    Spec("diag-1d", lambda F, x: F.diag(x, k=1), [((3,), "any")]),
    Spec("diag-nd", lambda F, x: F.diag(x, k=-1, axis1=0, axis2=2), [(S, "any")]),
    Spec("depth_to_space", lambda F, x: F.depth_to_space(x, block_size=2),
         [((1, 8, 2, 3), "any")]),
    Spec("space_to_depth", lambda F, x: F.space_to_depth(x, block_size=2),
         [((1, 2, 4, 2), "any")]),
    Spec("batch_take", lambda F, a, i: F.batch_take(a, i),
         [((3, 4), "any"), ((3,), ("raw", [0.0, 5.0, 2.0]))]),
    Spec("gather_nd", lambda F, x, i: F.gather_nd(x, i),
         [(S, "any"), ((2, 3), ("raw", [1.0, 0.0, 1.0, 2.0, 1.0, 2.0]))]),
    Spec("scatter_nd", lambda F, x, i: F.scatter_nd(x, i, shape=(2, 3, 2)),
         [((3, 2), "any"), ((2, 3), ("raw", [1.0, 0.0, 1.0, 2.0, 1.0, 0.0]))]),
]

# neural-network ops
SPECS += [
    Spec("FullyConnected", lambda F, x, w, b: F.FullyConnected(x, w, b, num_hidden=5),
         [((2, 3, 2), "any"), ((5, 6), "any"), ((5,), "any")]),
    Spec("FullyConnected-noflat", lambda F, x, w, b: F.FullyConnected(x, w, b, num_hidden=5,
                                                                      flatten=False),
         [((2, 3, 4), "any"), ((5, 4), "any"), ((5,), "any")]),
    Spec("FullyConnected-nobias", lambda F, x, w: F.FullyConnected(x, w, num_hidden=3,
                                                                   no_bias=True),
         [((2, 4), "any"), ((3, 4), "any")]),
    Spec("L2Normalization", lambda F, x: F.L2Normalization(x, mode="channel"), [(S, "any")]),
    Spec("softmax", lambda F, x: F.softmax(x), [(S, "any")]),
    Spec("softmax-axis-temp", lambda F, x: F.softmax(x, axis=1, temperature=2.0), [(S, "any")]),
    Spec("softmax-length", lambda F, x, n: F.softmax(x, n, axis=-1, use_length=True),
         [((2, 3, 4), "any"), ((2, 3), ("raw", [1.0, 4.0, 2.0, 3.0, 4.0, 1.0]))]),
    Spec("log_softmax", lambda F, x: F.log_softmax(x, axis=1), [(S, "any")]),
    Spec("softmin", lambda F, x: F.softmin(x, axis=-1), [(S, "any")]),
    # d(BlockGrad(x) * x)/dx is x (no gradient through BlockGrad), not the derivative 2x.
    Spec("BlockGrad-sum", lambda F, x: F.elemwise_mul(F.BlockGrad(x), x), [(S, "any")], fd=False),
    Spec("ones_like-sum", lambda F, x: F.elemwise_add(F.ones_like(x), F.square(x)), [(S, "any")]),
    Spec("zeros_like-sum", lambda F, x: F.elemwise_mul(F.zeros_like(x) + 2.0, x), [(S, "any")]),
    Spec("cast-f64", lambda F, x: F.cast(x, dtype="float64"), [(S, "any")]),
    Spec("Dropout-predict", lambda F, x: F.Dropout(x, p=0.5), [(S, "any")], train=False),
]
for _act in ("relu", "sigmoid", "tanh", "softrelu", "softsign", "log_sigmoid", "mish"):
    SPECS.append(Spec(f"Activation-{_act}", lambda F, x, _a=_act: F.Activation(x, act_type=_a),
                      [(S, "any")]))
for _act, _kw in [("leaky", {"slope": 0.3}), ("elu", {"slope": 0.7}), ("gelu", {})]:
    SPECS.append(Spec(f"LeakyReLU-{_act}",
                      lambda F, x, _a=_act, _k=_kw: F.LeakyReLU(x, act_type=_a, **_k),
                      [(S, "any")]))
SPECS += [
    # MXNet's selu gradient for negative outputs is lambda * (alpha + y), not the derivative
    # (see lowering/ops/nn.py and the leakyrelu_op_selu golden case): finite differences
    # are checked on positive inputs only.
    Spec("LeakyReLU-selu", lambda F, x: F.LeakyReLU(x, act_type="selu"), [(S, "any")],
         fd_kinds=["pos"]),
    Spec("LeakyReLU-prelu", lambda F, x, g: F.LeakyReLU(x, g, act_type="prelu"),
         [(S, "any"), ((3,), "pos")]),
    Spec("LeakyReLU-rrelu-predict", lambda F, x: F.LeakyReLU(x, act_type="rrelu"), [(S, "any")],
         train=False),
]

_IDS = [s.name for s in SPECS]
assert len(set(_IDS)) == len(_IDS), "spec names must be unique"


# ---------------------------------------------------------------------------
# runners


class _OpBlock(gluon.HybridBlock):
    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def hybrid_forward(self, F, *xs):
        return self._fn(F, *xs)


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _heads(outs, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]


def _run(spec: Spec, values, call, heads=None):
    """Outputs and gradients (of the differentiable inputs) of ``call(*xs)``."""
    xs = [mx.nd.array(v, dtype=v.dtype) for v in values]
    diff = spec.diff_positions() if spec.grad else []
    for i in diff:
        xs[i].attach_grad()
    with autograd.record(train_mode=spec.train):
        outs = _as_list(call(*xs))
    if diff:
        if heads is None:
            heads = _heads(outs, 7)
        autograd.backward(outs, [mx.nd.array(h, dtype=h.dtype) for h in heads])
    grads = [xs[i].grad.asnumpy() for i in diff]
    return [o.asnumpy() for o in outs], grads, heads


def _eager(spec):
    return lambda *xs: spec.fn(mx.nd, *xs)


def _hybridized(spec):
    block = _OpBlock(spec.fn)
    block.hybridize()

    def call(*xs):
        out = block(*xs)
        assert compiled_somewhere(block), "the hybridized call did not compile"
        return out

    return call


def _close(actual, expected, rtol, atol, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("spec", SPECS, ids=_IDS)
def test_eager_matches_hybridized(spec: Spec):
    values = spec.draw(np.float32)
    e_outs, e_grads, heads = _run(spec, values, _eager(spec))
    h_outs, h_grads, _ = _run(spec, values, _hybridized(spec), heads)
    assert len(e_outs) == len(h_outs)
    for i, (a, b) in enumerate(zip(h_outs, e_outs)):
        _close(a, b, RTOL_HYBRID, ATOL_HYBRID, f"{spec.name} output {i}")
    for i, (a, b) in enumerate(zip(h_grads, e_grads)):
        _close(a, b, RTOL_HYBRID, ATOL_HYBRID, f"{spec.name} grad of input {i}")


def _objective(spec, call, values, heads) -> float:
    """``sum(head * f(x))`` in float64, run like the recorded call (same compiled program)."""
    xs = [mx.nd.array(v, dtype=v.dtype) for v in values]
    for i in spec.diff_positions():
        xs[i].attach_grad()
    with autograd.record(train_mode=spec.train):
        outs = _as_list(call(*xs))
    return float(sum(np.sum(h * o.asnumpy().astype(np.float64)) for h, o in zip(heads, outs)))


FD_SPECS = [s for s in SPECS if s.grad and s.fd]


@pytest.mark.parametrize("spec", FD_SPECS, ids=[s.name for s in FD_SPECS])
def test_gradient_matches_finite_differences(spec: Spec):
    # Through the hybridized block (one compiled program per spec; test_eager_matches_hybridized
    # ties it to the eager ops).
    values = spec.draw(np.float64, spec.fd_kinds)
    call = _hybridized(spec)
    _, grads, heads = _run(spec, values, call)
    diff = spec.diff_positions()
    assert len(grads) == len(diff)
    for pos, grad in zip(diff, grads):
        assert grad.dtype == np.float64
        def objective(xp, pos=pos):
            shifted = list(values)
            shifted[pos] = xp
            return _objective(spec, call, shifted, heads)

        numeric = central_difference(objective, values[pos], EPS)
        np.testing.assert_allclose(grad, numeric, rtol=RTOL_FD, atol=ATOL_FD,
                                   err_msg=f"{spec.name}: gradient of input {pos}")


# ---------------------------------------------------------------------------
# ops whose gradient is not the derivative of the forward, and random ops


def test_blockgrad_and_like_ops_have_zero_gradient():
    x = mx.nd.array(np.random.default_rng(0).standard_normal((2, 3)))
    x.attach_grad()
    for op in (mx.nd.BlockGrad, mx.nd.stop_gradient, mx.nd.zeros_like, mx.nd.ones_like):
        with autograd.record():
            y = op(x)
        y.backward(mx.nd.ones((2, 3)))
        np.testing.assert_array_equal(x.grad.asnumpy(), np.zeros((2, 3)), err_msg=op.__name__)


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("mode,train", [("always", False), ("training", True)])
def test_dropout_active_scales_kept_units(hybridize, mode, train):
    p = 0.4
    x_np = np.random.default_rng(3).uniform(0.5, 1.5, size=(8, 50)).astype(np.float32)
    x = mx.nd.array(x_np)
    x.attach_grad()
    call = _OpBlock(lambda F, a: F.Dropout(a, p=p, mode=mode))
    if hybridize:
        call.hybridize()
    head = np.random.default_rng(4).standard_normal(x_np.shape).astype(np.float32)
    with autograd.record(train_mode=train):
        y = call(x)
    y.backward(mx.nd.array(head))
    out = y.asnumpy()
    assert out.shape == x_np.shape and out.dtype == np.float32
    kept = out != 0
    np.testing.assert_allclose(out[kept], x_np[kept] / (1 - p), rtol=1e-6)
    assert 0.45 < kept.mean() < 0.75  # 400 draws with keep probability 0.6
    grad = x.grad.asnumpy()
    np.testing.assert_allclose(grad, np.where(kept, head / (1 - p), 0), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hybridize", [False, True])
def test_dropout_training_mode_is_identity_when_predicting(hybridize):
    x = mx.nd.array(np.arange(12, dtype=np.float32).reshape(3, 4))
    call = _OpBlock(lambda F, a: F.Dropout(a, p=0.5))
    if hybridize:
        call.hybridize()
    with autograd.predict_mode():
        np.testing.assert_array_equal(call(x).asnumpy(), x.asnumpy())
    np.testing.assert_array_equal(call(x).asnumpy(), x.asnumpy())  # outside record: predict


# ---------------------------------------------------------------------------
# property-based: reductions over random shapes and axes


@st.composite
def _reduction_case(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    axes = draw(st.lists(st.integers(-ndim, ndim - 1), max_size=ndim, unique_by=lambda a: a % ndim))
    axis = None if not axes else (axes[0] if len(axes) == 1 and draw(st.booleans()) else
                                  tuple(axes))
    op = draw(st.sampled_from(["sum", "mean", "max", "min", "prod"]))
    keepdims = draw(st.booleans())
    exclude = draw(st.booleans()) if axis is not None else False
    return op, shape, dict(axis=axis, keepdims=keepdims, exclude=exclude)


@settings(max_examples=12, deadline=None)
@given(_reduction_case())
def test_reductions_eager_hybridized_and_numpy(case):
    op, shape, kwargs = case
    spec = Spec(f"{op}", lambda F, x: getattr(F, op)(x, **kwargs), [(shape, "any")])
    values = spec.draw(np.float32)
    e_outs, e_grads, heads = _run(spec, values, _eager(spec))
    h_outs, h_grads, _ = _run(spec, values, _hybridized(spec), heads)
    _close(h_outs[0], e_outs[0], RTOL_HYBRID, ATOL_HYBRID, "output")
    _close(h_grads[0], e_grads[0], RTOL_HYBRID, ATOL_HYBRID, "grad")
    # numpy reference for the forward (MXNet: a full reduction has shape (1,))
    x = values[0]
    axis = kwargs["axis"]
    axes = tuple(range(x.ndim)) if axis is None else \
        tuple(a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis))
    if kwargs["exclude"]:
        axes = tuple(i for i in range(x.ndim) if i not in axes)
    want = getattr(np, {"sum": "sum", "mean": "mean", "max": "max", "min": "min",
                        "prod": "prod"}[op])(x, axis=axes, keepdims=kwargs["keepdims"])
    want = np.asarray(want)
    if want.ndim == 0:
        want = want.reshape(1)
    np.testing.assert_allclose(e_outs[0], want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# MXNet's gradients at ties and kinks (its backward kernels, not jax's conventions)


def _grads(fn, *values, head=None):
    xs = [mx.nd.array(np.asarray(v, dtype=np.float32)) for v in values]
    for x in xs:
        x.attach_grad()
    with autograd.record():
        y = fn(*xs)
    y.backward(mx.nd.ones(y.shape) if head is None else mx.nd.array(head))
    return [x.grad.asnumpy() for x in xs]


@pytest.mark.parametrize("hybridize", [False, True])
def test_gradients_at_ties_follow_mxnet(hybridize):
    def run(fn, *values):
        block = _OpBlock(fn)
        if hybridize:
            block.hybridize()
        return _grads(block, *values)

    data = [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]
    # reductions: every element equal to the max/min gets the whole head gradient
    (g,) = run(lambda F, x: F.max(x, axis=1), data)
    np.testing.assert_array_equal(g, [[0, 1, 1], [1, 1, 0]])
    (g,) = run(lambda F, x: F.min(x, axis=0, keepdims=True), [[1.0, 3.0], [1.0, 2.0]])
    np.testing.assert_array_equal(g, [[1, 0], [1, 1]])
    # maximum/minimum: lhs gets the gradient on ties (a >= b, a <= b)
    ga, gb = run(lambda F, a, b: F.broadcast_maximum(a, b), [[1.0, 3.0, 2.0]], [[3.0], [2.0]])
    np.testing.assert_array_equal(ga, [[0, 2, 1]])
    np.testing.assert_array_equal(gb, [[2], [1]])
    ga, gb = run(lambda F, a, b: F.broadcast_minimum(a, b), [[1.0, 3.0]], [[1.0], [2.0]])
    np.testing.assert_array_equal(ga, [[2, 0]])
    np.testing.assert_array_equal(gb, [[1], [1]])
    (g,) = run(lambda F, x: F._internal._maximum_scalar(x, scalar=0.0), [[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(g, [[0, 1, 1]])
    (g,) = run(lambda F, x: F._internal._minimum_scalar(x, scalar=0.0), [[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(g, [[1, 1, 0]])
    # clip passes the gradient on its bounds; hard_sigmoid does not
    (g,) = run(lambda F, x: F.clip(x, a_min=0.0, a_max=1.0), [[-1.0, 0.0, 0.5, 1.0, 3.0]])
    np.testing.assert_array_equal(g, [[0, 1, 1, 1, 0]])
    (g,) = run(lambda F, x: F.hard_sigmoid(x), [[-2.5, 0.0, 2.5, 3.0]])
    np.testing.assert_allclose(g, [[0, 0.2, 0, 0]], rtol=1e-6)
    # relu / leaky / elu at exactly 0
    (g,) = run(lambda F, x: F.relu(x), [[0.0, 1.0]])
    np.testing.assert_array_equal(g, [[0, 1]])
    (g,) = run(lambda F, x: F.LeakyReLU(x, act_type="leaky", slope=0.3), [[0.0, 1.0]])
    np.testing.assert_allclose(g, [[0.3, 1]], rtol=1e-6)
    (g,) = run(lambda F, x: F.LeakyReLU(x, act_type="elu", slope=0.3), [[0.0, 1.0]])
    np.testing.assert_allclose(g, [[0.3, 1]], rtol=1e-6)


def test_mxnet_specific_forward_semantics():
    nd = mx.nd
    # mod takes the divisor's sign and gives 0 for a zero divisor
    out = nd.broadcast_mod(nd.array([5.0, -1.0, 3.0, 1.0]), nd.array([0.0, 0.75, -2.0, 2.0]))
    np.testing.assert_allclose(out.asnumpy(), [0.0, 0.5, -1.0, 1.0])
    # float indices are truncated toward zero, then clipped or wrapped
    idx = nd.array([-0.5, 7.0, 2.7, -1.0])
    np.testing.assert_array_equal(nd.take(nd.arange(5), idx).asnumpy(), [0, 4, 2, 0])
    np.testing.assert_array_equal(nd.take(nd.arange(5), idx, mode="wrap").asnumpy(), [0, 2, 2, 4])
    # reshape_like with ranges, norm with out_dtype
    got = nd.reshape_like(nd.zeros((30, 7)), nd.zeros((15, 2, 4)), lhs_begin=0, lhs_end=1,
                          rhs_begin=0, rhs_end=2)
    assert got.shape == (15, 2, 7)
    assert nd.reshape_like(nd.zeros((30, 7)), nd.zeros((15, 14))).shape == (15, 14)
    n = nd.norm(nd.ones((2, 3)), out_dtype="float64")
    assert n.dtype == np.float64 and n.shape == (1,)
    # index outputs of argmax/argmin/argmax_channel keep the input dtype
    for dtype in ("float32", "float64", "int32"):
        x = nd.array([[1, 5, 2], [7, 0, 3]], dtype=dtype)
        for got, want in [(nd.argmax(x, axis=1), [1, 0]), (nd.argmin(x, axis=0), [0, 1, 0]),
                          (nd.argmax_channel(x), [1, 0]), (nd.argmax(x), [3])]:
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got.asnumpy(), want)
    # creation ops without array inputs
    np.testing.assert_array_equal(nd.eye(2, 3, 1).asnumpy(), [[0, 1, 0], [0, 0, 1]])
    assert nd.eye(3).shape == (3, 3) and nd.eye(2, dtype="int32").dtype == np.int32
    np.testing.assert_allclose(nd.linspace(0, 1, 5).asnumpy(), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(nd.linspace(0, 1, 4, endpoint=False).asnumpy(),
                               [0, 0.25, 0.5, 0.75])
    # ravel/unravel round trip
    idx = nd.array([[3, 6, 6], [4, 5, 1]])
    flat = nd.ravel_multi_index(idx, shape=(7, 6))
    np.testing.assert_array_equal(flat.asnumpy(), [22, 41, 37])
    np.testing.assert_array_equal(nd.unravel_index(flat, shape=(7, 6)).asnumpy(), idx.asnumpy())
    # dot with transpose flags on N-D operands: the operand is a (shape[0], rest) matrix
    a = np.random.default_rng(0).standard_normal((4, 3, 2)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    got = nd.dot(nd.array(a), nd.array(b), transpose_a=True, transpose_b=True).asnumpy()
    np.testing.assert_allclose(got, np.einsum("kij,lk->ijl", a, b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,expected", [
    ({}, 1.0),
    ({"grad_scale": 3.0, "normalization": "batch"}, 1.5),
    ({"normalization": "valid", "valid_thresh": 0.6}, 0.5),
])
def test_makeloss_gradient_ignores_head(kwargs, expected):
    (g,) = _grads(lambda x: mx.nd.MakeLoss(x, **kwargs), [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]],
                  head=np.full((2, 3), 7.0, np.float32))
    np.testing.assert_allclose(g, np.full((2, 3), expected), rtol=1e-6)
