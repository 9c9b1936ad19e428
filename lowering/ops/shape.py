"""Shape manipulation: reshape (with MXNet's special codes), transpose, concat, split, slice...

Defaults that differ from numpy: ``concat`` joins on ``dim=1``, ``split``
splits ``axis=1``, ``flatten`` keeps axis 0 and collapses the rest.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..attrs import AXIS, BOOL, DTYPE, INT, OPT_INT, SHAPE, TUPLE_OPT_INT, Attr
from ..registry import OpError, register


def infer_reshape(src: tuple[int, ...], spec: tuple[int, ...], reverse: bool = False) -> tuple:
    """Output shape of MXNet ``reshape(shape=spec, reverse=reverse)`` on input shape ``src``.

    Codes: ``0`` copy this input dim, ``-1`` infer it, ``-2`` copy all remaining
    dims, ``-3`` merge two consecutive dims, ``-4 a b`` split one dim into ``a, b``
    (one of them may be -1). ``reverse`` matches the codes from the right.
    """
    src_l = list(src)
    spec_l = list(spec)
    if reverse:
        src_l.reverse()
        spec_l.reverse()
    out: list[int] = []
    src_idx = 0
    infer_at = -1
    i = 0

    def take() -> int:
        nonlocal src_idx
        if src_idx >= len(src_l):
            raise OpError(f"operator reshape: shape {tuple(spec)} does not fit input shape {src}")
        dim = src_l[src_idx]
        src_idx += 1
        return dim

    while i < len(spec_l):
        code = spec_l[i]
        if code > 0:
            out.append(code)
            src_idx += 1
        elif code == 0:
            out.append(take())
        elif code == -1:
            if infer_at >= 0:
                raise OpError(f"operator reshape: shape {tuple(spec)} has more than one -1")
            infer_at = len(out)
            out.append(1)
            src_idx += 1
        elif code == -2:
            out.extend(src_l[src_idx:])
            src_idx = len(src_l)
        elif code == -3:
            out.append(take() * take())
        elif code == -4:
            if i + 2 >= len(spec_l):
                raise OpError(f"operator reshape: -4 in {tuple(spec)} needs two values after it")
            d0, d1 = spec_l[i + 1], spec_l[i + 2]
            i += 2
            dim = take()
            if d0 == -1:
                d0 = dim // d1
            if d1 == -1:
                d1 = dim // d0
            if d0 * d1 != dim:
                raise OpError(
                    f"operator reshape: -4 splits dim {dim} of input shape {src} into "
                    f"{d0} x {d1}, which does not match"
                )
            out.extend([d0, d1])
        else:
            raise OpError(f"operator reshape: invalid code {code} in shape {tuple(spec)}")
        i += 1
    total = math.prod(src)
    if infer_at >= 0:
        rest = math.prod(d for j, d in enumerate(out) if j != infer_at)
        if rest == 0 or total % rest:
            raise OpError(f"operator reshape: cannot reshape input shape {src} to {tuple(spec)}")
        out[infer_at] = total // rest
    if reverse:
        out.reverse()
    if math.prod(out) != total:
        raise OpError(
            f"operator reshape: target shape {tuple(out)} (from {tuple(spec)}) has "
            f"{math.prod(out)} elements but input shape {src} has {total}"
        )
    return tuple(out)


@register(
    "Reshape",
    attrs={"shape": Attr(SHAPE, ()), "reverse": Attr(BOOL, False)},
    aliases=("reshape",),
)
def reshape(data, shape, reverse):
    """Reshape with MXNet's special codes 0/-1/-2/-3/-4 (see ``infer_reshape``)."""
    return jnp.reshape(data, infer_reshape(tuple(data.shape), shape, reverse))


@register(
    "reshape_like",
    inputs=("lhs", "rhs"),
    attrs={
        "lhs_begin": Attr(OPT_INT, None),
        "lhs_end": Attr(OPT_INT, None),
        "rhs_begin": Attr(OPT_INT, None),
        "rhs_end": Attr(OPT_INT, None),
    },
)
def reshape_like(lhs, rhs, lhs_begin, lhs_end, rhs_begin, rhs_end):
    """Reshape ``lhs`` to the shape of ``rhs`` (same number of elements).

    With the range attributes only ``lhs.shape[lhs_begin:lhs_end]`` is replaced by
    ``rhs.shape[rhs_begin:rhs_end]`` (None means the start/end; negative values count
    from the end): ``(30, 7)`` like ``(15, 2, 4)`` with ``lhs 0:1``, ``rhs 0:2`` gives
    ``(15, 2, 7)``.
    """

    def bounds(begin, end, ndim):
        b = 0 if begin is None else begin % ndim if begin < 0 else begin
        e = ndim if end is None else end % ndim if end < 0 else end
        return b, e

    lb, le = bounds(lhs_begin, lhs_end, lhs.ndim)
    rb, re_ = bounds(rhs_begin, rhs_end, rhs.ndim)
    target = tuple(lhs.shape[:lb]) + tuple(rhs.shape[rb:re_]) + tuple(lhs.shape[le:])
    if math.prod(target) != lhs.size:
        raise OpError(
            f"operator reshape_like: cannot reshape lhs {tuple(lhs.shape)} to {target} "
            f"(from rhs {tuple(rhs.shape)})"
        )
    return jnp.reshape(lhs, target)


@register("Flatten", aliases=("flatten",))
def flatten(data):
    """Keep axis 0, collapse the rest: ``(N, a, b) -> (N, a*b)``."""
    if data.ndim == 0:
        return data.reshape(1, 1)
    return data.reshape(data.shape[0], -1)


@register("expand_dims", attrs={"axis": Attr(INT)})
def expand_dims(data, axis):
    """Insert a new axis of size 1 at ``axis`` (negative counts from the new rank)."""
    return jnp.expand_dims(data, axis)


@register("squeeze", attrs={"axis": Attr(AXIS, None)})
def squeeze(data, axis):
    """Remove size-1 axes (all of them, or those in ``axis``); never returns rank 0."""
    out = jnp.squeeze(data, axis=axis)
    return out.reshape((1,)) if out.ndim == 0 else out


@register("transpose", attrs={"axes": Attr(SHAPE, ())})
def transpose(data, axes):
    """Permute axes; the default reverses them."""
    if axes and sorted(a % data.ndim for a in axes) != list(range(data.ndim)):
        raise OpError(
            f"operator transpose: axes {axes} are not a permutation for input shape "
            f"{tuple(data.shape)}"
        )
    return jnp.transpose(data, axes or None)


@register("SwapAxis", attrs={"dim1": Attr(INT, 0), "dim2": Attr(INT, 0)}, aliases=("swapaxes",))
def swapaxes(data, dim1, dim2):
    """Exchange two axes."""
    return jnp.swapaxes(data, dim1, dim2)


@register("flip", attrs={"axis": Attr(AXIS)}, aliases=("reverse",))
def flip(data, axis):
    """Reverse the order of elements along ``axis``."""
    return jnp.flip(data, axis=axis)


@register("tile", attrs={"reps": Attr(SHAPE)})
def tile(data, reps):
    """Repeat the whole array ``reps`` times along each axis (numpy's tile)."""
    return jnp.tile(data, reps)


@register("repeat", attrs={"repeats": Attr(INT), "axis": Attr(OPT_INT, None)})
def repeat(data, repeats, axis):
    """Repeat each element; ``axis=None`` flattens first."""
    return jnp.repeat(data, repeats, axis=axis)


@register("broadcast_to", attrs={"shape": Attr(SHAPE)})
def broadcast_to(data, shape):
    """Broadcast to ``shape``; a 0 in ``shape`` keeps that input dim."""
    if len(shape) != data.ndim:
        raise OpError(
            f"operator broadcast_to: shape {shape} must have the rank of the input "
            f"{tuple(data.shape)}"
        )
    target = tuple(d if t == 0 else t for d, t in zip(data.shape, shape))
    for d, t in zip(data.shape, target):
        if d != t and d != 1:
            raise OpError(
                f"operator broadcast_to: cannot broadcast input {tuple(data.shape)} to {shape}"
            )
    return jnp.broadcast_to(data, target)


@register(
    "broadcast_axis",
    attrs={"axis": Attr(SHAPE, ()), "size": Attr(SHAPE, ())},
    aliases=("broadcast_axes",),
)
def broadcast_axis(data, axis, size):
    """Broadcast the size-1 axes ``axis`` to ``size``."""
    target = list(data.shape)
    for a, s in zip(axis, size):
        target[a % data.ndim] = s
    return jnp.broadcast_to(data, tuple(target))


@register(
    "broadcast_like",
    inputs=("lhs", "rhs"),
    attrs={"lhs_axes": Attr(SHAPE, ()), "rhs_axes": Attr(SHAPE, ())},
)
def broadcast_like(lhs, rhs, lhs_axes, rhs_axes):
    """Broadcast ``lhs`` to the shape of ``rhs`` (or only the given axes)."""
    if not lhs_axes:
        return jnp.broadcast_to(lhs, rhs.shape)
    target = list(lhs.shape)
    for la, ra in zip(lhs_axes, rhs_axes):
        target[la % lhs.ndim] = rhs.shape[ra % rhs.ndim]
    return jnp.broadcast_to(lhs, tuple(target))


def _check_same_rank(op, arrays, axis):
    ref = arrays[0].shape
    for i, a in enumerate(arrays[1:], 1):
        if a.ndim != len(ref) or any(
            x != y for j, (x, y) in enumerate(zip(a.shape, ref)) if j != axis % len(ref)
        ):
            raise OpError(
                f"operator {op}: input {i} has shape {tuple(a.shape)}, incompatible with "
                f"input 0 shape {tuple(ref)} along axes other than {axis}"
            )


@register("concat", inputs=("*data",), attrs={"num_args": Attr(INT), "dim": Attr(INT, 1)},
          aliases=("Concat",))
def concat(*data, num_args, dim):
    """Join arrays along ``dim`` (default 1)."""
    _check_same_rank("concat", data, dim)
    return jnp.concatenate(data, axis=dim)


@register("stack", inputs=("*data",), attrs={"num_args": Attr(INT), "axis": Attr(INT, 0)})
def stack(*data, num_args, axis):
    """Stack same-shape arrays along a new axis."""
    for i, a in enumerate(data[1:], 1):
        if a.shape != data[0].shape:
            raise OpError(
                f"operator stack: input {i} has shape {tuple(a.shape)} but input 0 has "
                f"{tuple(data[0].shape)}"
            )
    return jnp.stack(data, axis=axis)


def _split_outputs(attrs):
    return attrs["num_outputs"]


@register(
    "split",
    attrs={"num_outputs": Attr(INT), "axis": Attr(INT, 1), "squeeze_axis": Attr(BOOL, False)},
    num_outputs=_split_outputs,
    aliases=("SliceChannel",),
)
def split(data, num_outputs, axis, squeeze_axis):
    """Split into ``num_outputs`` equal parts along ``axis`` (default 1)."""
    if data.shape[axis] % num_outputs:
        raise OpError(
            f"operator split: axis {axis} of shape {tuple(data.shape)} is not divisible into "
            f"{num_outputs} parts"
        )
    parts = jnp.split(data, num_outputs, axis=axis)
    if squeeze_axis:
        parts = [jnp.squeeze(p, axis=axis) for p in parts]
    return tuple(parts)


def _slice_index(shape, begin, end, step):
    index = []
    for i in range(len(shape)):
        b = begin[i] if i < len(begin) else None
        e = end[i] if i < len(end) else None
        s = step[i] if i < len(step) and step[i] is not None else 1
        if s == 0:
            raise OpError("operator slice: step cannot be 0")
        index.append(slice(b, e, s))
    return tuple(index)


@register(
    "slice",
    attrs={
        "begin": Attr(TUPLE_OPT_INT),
        "end": Attr(TUPLE_OPT_INT),
        "step": Attr(TUPLE_OPT_INT, ()),
    },
    aliases=("crop",),
)
def slice_(data, begin, end, step):
    """Basic slicing ``data[b0:e0:s0, b1:e1:s1, ...]``; None entries mean the default."""
    if len(begin) != len(end) or len(begin) > data.ndim:
        raise OpError(
            f"operator slice: begin {begin} and end {end} must have equal length, at most the "
            f"rank of input shape {tuple(data.shape)}"
        )
    return data[_slice_index(data.shape, begin, end, step)]


@register(
    "slice_axis",
    attrs={"axis": Attr(INT), "begin": Attr(INT), "end": Attr(OPT_INT, None)},
)
def slice_axis(data, axis, begin, end):
    """``data`` sliced ``begin:end`` along ``axis`` (``end=None`` -> to the end).

    Negative ``begin``/``end`` count from the end of the axis. As in MXNet the
    slice must be non-empty and inside the axis: ``0 <= begin < end <= size``
    after that, else the call is refused.
    """
    if not -data.ndim <= axis < data.ndim:
        raise OpError(f"operator slice_axis: axis {axis} is out of range for input of shape "
                      f"{tuple(data.shape)} (must be in [{-data.ndim}, {data.ndim - 1}])")
    axis %= data.ndim
    size = data.shape[axis]
    b = begin + size if begin < 0 else begin
    e = size if end is None else (end + size if end < 0 else end)
    if b < 0:
        raise OpError(f"operator slice_axis: invalid begin={begin} for axis {axis} of size "
                      f"{size} (shape {tuple(data.shape)})")
    if e > size or e < 0:
        raise OpError(f"operator slice_axis: invalid end={end} for axis {axis} of size {size} "
                      f"(shape {tuple(data.shape)})")
    if not b < e:
        raise OpError(f"operator slice_axis: invalid begin, end: begin={begin}, end={end} "
                      f"give an empty slice of axis {axis} of size {size} "
                      f"(shape {tuple(data.shape)})")
    index = [slice(None)] * data.ndim
    index[axis] = slice(b, e)
    return data[tuple(index)]


@register("slice_like", inputs=("data", "shape_like"), attrs={"axes": Attr(SHAPE, ())})
def slice_like(data, shape_like, axes):
    """Slice ``data`` from the start to the shape of ``shape_like`` (on ``axes`` or all)."""
    axes = axes or tuple(range(shape_like.ndim))
    index = [slice(None)] * data.ndim
    for a in axes:
        index[a % data.ndim] = slice(0, shape_like.shape[a % shape_like.ndim])
    return data[tuple(index)]


@register("diag", attrs={"k": Attr(INT, 0), "axis1": Attr(INT, 0), "axis2": Attr(INT, 1)})
def diag(data, k, axis1, axis2):
    """1-D input: the square matrix with ``data`` on diagonal ``k``. N-D input: diagonal
    ``k`` of the matrices on ``(axis1, axis2)``, as a new last axis (numpy's ``diagonal``)."""
    if data.ndim == 1:
        return jnp.diag(data, k)
    return jnp.diagonal(data, offset=k, axis1=axis1, axis2=axis2)


def _check_block(op, data, units):
    """``units``: axis -> the number that must divide it."""
    if data.ndim != 4:
        raise OpError(f"operator {op}: input must be 4-D NCHW, got shape {tuple(data.shape)}")
    for axis, unit in units.items():
        if unit <= 0 or data.shape[axis] % unit:
            raise OpError(
                f"operator {op}: axis {axis} of input shape {tuple(data.shape)} is not "
                f"divisible by {unit}"
            )


@register("depth_to_space", attrs={"block_size": Attr(INT)})
def depth_to_space(data, block_size):
    """NCHW ``(N, C, H, W) -> (N, C/b^2, H*b, W*b)``: reshape to ``(N, b, b, C/b^2, H, W)``,
    transpose ``(0, 3, 4, 1, 5, 2)``, reshape (MXNet's DCR order)."""
    _check_block("depth_to_space", data, {1: block_size * block_size})
    n, c, h, w = data.shape
    b = block_size
    x = data.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c // (b * b), h * b, w * b)


@register("space_to_depth", attrs={"block_size": Attr(INT)})
def space_to_depth(data, block_size):
    """NCHW ``(N, C, H, W) -> (N, C*b^2, H/b, W/b)``, the inverse of ``depth_to_space``:
    reshape to ``(N, C, H/b, b, W/b, b)``, transpose ``(0, 3, 5, 1, 2, 4)``, reshape."""
    _check_block("space_to_depth", data, {2: block_size, 3: block_size})
    n, c, h, w = data.shape
    b = block_size
    x = data.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return x.reshape(n, c * b * b, h // b, w // b)


@register("cast", attrs={"dtype": Attr(DTYPE)}, aliases=("Cast",))
def cast(data, dtype):
    """Convert to ``dtype``."""
    return data.astype(dtype)


@register("zeros_like")
def zeros_like(data):
    """Zeros of the input's shape and dtype.

    Recorded by autograd like any op (MXNet gives the input a zero gradient), so
    ``zeros_like(x).backward()`` works and leaves ``x.grad`` at zero.
    """
    return jnp.zeros_like(data)


@register("ones_like")
def ones_like(data):
    """Ones of the input's shape and dtype (zero gradient, as ``zeros_like``)."""
    return jnp.ones_like(data)


@register("shape_array", differentiable=False)
def shape_array(data):
    """The input's shape as an int64 array."""
    return jnp.asarray(data.shape, dtype=jnp.int64 if _x64() else jnp.int32)


@register("size_array", differentiable=False)
def size_array(data):
    """The input's size as a 1-element int64 array."""
    return jnp.asarray([data.size], dtype=jnp.int64 if _x64() else jnp.int32)


def _x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)
