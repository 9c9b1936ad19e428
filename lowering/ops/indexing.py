"""Gathering, selection, sorting and NDArray indexing.

MXNet semantics kept here: ``take`` and ``pick`` clip out-of-range indices by
default (``mode='clip'``; ``'wrap'`` wraps), and accept float indices;
``take(mode='raise')``, ``gather_nd`` and ``x[int_array]`` refuse them (see
``_raise_on_bad_indices`` for how a compiled graph does that);
``where``'s condition has the shape of ``x`` or is 1-D over the first axis;
index outputs (``topk``, ``argsort``) are float32 unless ``dtype`` says otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..attrs import BOOL, DTYPE, FLOAT, INT, OPT_INT, SHAPE, STR, Attr, Kind
from ..registry import OpError, register
from .checks import axis_index, index_bounds

_MODES = ("clip", "wrap", "raise")


def _raise_on_bad_indices(indices, size, axis, op):
    """Make the running program fail when ``indices`` leave ``[0, size)``.

    Index values are data: an eager call checks them before it runs (the op's
    ``check_values``), but a compiled graph only sees them at run time. There a
    host callback raises (JAX reports it as a runtime error whose text ends with
    the message); it costs a device-to-host copy of the indices, so it is used
    only where the caller asked for raising (``take(mode='raise')``). A graph
    holding it cannot be exported to StableHLO.
    """

    def check(idx):
        index_bounds(f"operator {op}: ", idx, size, axis, allow_negative=False,
                     error=OpError)

    jax.debug.callback(check, indices)


def _index_array(indices, size, mode):
    # MXNet casts float indices with static_cast (truncation toward zero), then clips or wraps.
    idx = indices.astype(jnp.int32)
    if mode == "wrap":
        return jnp.mod(idx, np.int32(size))
    return jnp.clip(idx, np.int32(0), np.int32(size - 1))  # no int64 scalars


def _take_values(attrs, arrays):
    a, indices = arrays
    if attrs["mode"] == "raise" and -a.ndim <= attrs["axis"] < a.ndim:
        axis = attrs["axis"] % a.ndim
        index_bounds("operator take: ", indices, a.shape[axis], axis, allow_negative=False,
                     error=OpError)


@register(
    "take",
    inputs=("a", "indices"),
    attrs={"axis": Attr(INT, 0), "mode": Attr(STR, "clip", _MODES)},
    check_values=_take_values,
)
def take(a, indices, axis, mode):
    """Gather slices of ``a`` along ``axis`` at ``indices``: out-of-range ones clipped
    (``'clip'``) or wrapped (``'wrap'``); ``'raise'`` refuses any outside
    ``[0, a.shape[axis])``, negative ones included, as MXNet 1.9 does."""
    axis = axis_index("take", axis, a.ndim)
    if mode == "raise":
        _raise_on_bad_indices(indices, a.shape[axis], axis, "take")
    idx = _index_array(indices, a.shape[axis], mode)
    return jnp.take(a, idx, axis=axis)


@register(
    "pick",
    inputs=("data", "index"),
    attrs={
        "axis": Attr(OPT_INT, -1),
        "keepdims": Attr(BOOL, False),
        "mode": Attr(STR, "clip", ("clip", "wrap")),
    },
)
def pick(data, index, axis, keepdims, mode):
    """One element per position along ``axis``: ``out[i, j] = data[i, index[i, j], j]``;
    out-of-range indices are clipped or wrapped (MXNet's pick has no ``'raise'``)."""
    if axis is None:
        data = data.reshape(-1)
        axis = 0
    axis = axis_index("pick", axis, data.ndim)
    expected = data.shape[:axis] + data.shape[axis + 1 :]
    if tuple(index.shape) not in (expected, data.shape[:axis] + (1,) + data.shape[axis + 1 :]):
        raise OpError(
            f"operator pick: index shape {tuple(index.shape)} must be {expected} for data "
            f"shape {tuple(data.shape)} and axis {axis}"
        )
    idx = _index_array(index.reshape(expected), data.shape[axis], mode)
    out = jnp.take_along_axis(data, jnp.expand_dims(idx, axis), axis=axis)
    return out if keepdims else jnp.squeeze(out, axis=axis)


def _one_hot_attrs(attrs):
    if attrs["depth"] < 0:
        raise OpError(f"operator one_hot: depth={attrs['depth']} must be a non-negative "
                      "integer")


@register(
    "one_hot",
    inputs=("indices",),
    attrs={
        "depth": Attr(INT),
        "on_value": Attr(FLOAT, 1.0),
        "off_value": Attr(FLOAT, 0.0),
        "dtype": Attr(DTYPE, "float32"),
    },
    differentiable=False,
    check_attrs=_one_hot_attrs,
)
def one_hot(indices, depth, on_value, off_value, dtype):
    """One-hot rows of length ``depth``; out-of-range indices give all ``off_value``."""
    idx = indices.astype(jnp.int32)
    hot = idx[..., None] == jnp.arange(depth, dtype=jnp.int32)
    return jnp.where(hot, on_value, off_value).astype(dtype)


@register("batch_take", inputs=("a", "indices"))
def batch_take(a, indices):
    """``out[i] = a[i, indices[i]]`` with ``a`` seen as ``(indices.size, -1)``; indices are
    clipped to the row length."""
    rows = a.reshape(indices.size, -1)
    idx = _index_array(indices.reshape(-1), rows.shape[1], "clip")
    return jnp.take_along_axis(rows, idx[:, None], axis=1).reshape(indices.shape)


def _nd_index(op, indices, shape):
    if indices.ndim < 1 or indices.shape[0] > len(shape):
        raise OpError(
            f"operator {op}: indices of shape {tuple(indices.shape)} need a first axis of at "
            f"most {len(shape)} (the rank of shape {tuple(shape)})"
        )
    return tuple(indices[i].astype(jnp.int32) for i in range(indices.shape[0]))


def _gather_nd_values(attrs, arrays):
    data, indices = arrays
    if indices.ndim < 1 or indices.shape[0] > data.ndim:
        return  # the impl refuses the shapes
    idx = np.asarray(indices)
    for i in range(idx.shape[0]):
        index_bounds("", idx[i], data.shape[i], i, allow_negative=True)


@register("gather_nd", inputs=("data", "indices"), check_values=_gather_nd_values)
def gather_nd(data, indices):
    """``out[y...] = data[indices[0, y...], ..., indices[M-1, y...]]``: ``indices`` of shape
    ``(M, Y...)`` gives an output of shape ``Y + data.shape[M:]``.

    Negative indices count from the end. Out-of-range ones raise ``IndexError``
    in an eager call (as MXNet); in a compiled graph, which cannot see them, they
    give NaN (the lowest integer for integer data) instead of a clamped element.
    """
    return data.at[_nd_index("gather_nd", indices, data.shape)].get(mode="fill")


@register("scatter_nd", inputs=("data", "indices"), attrs={"shape": Attr(SHAPE)})
def scatter_nd(data, indices, shape):
    """Zeros of ``shape`` with ``out[indices[:, y...]] = data[y...]``, the inverse of
    ``gather_nd`` (for repeated indices one of the values is kept)."""
    out = jnp.zeros(shape, data.dtype)
    return out.at[_nd_index("scatter_nd", indices, shape)].set(data)


@register(
    "_ravel_multi_index",
    attrs={"shape": Attr(SHAPE)},
    aliases=("ravel_multi_index",),
    differentiable=False,
)
def ravel_multi_index(data, shape):
    """Flat (row-major) indices of the multi-indices ``data[:, ...]`` into ``shape``, in the
    input dtype."""
    flat = jnp.zeros(data.shape[1:], jnp.int64 if _x64() else jnp.int32)
    for i, dim in enumerate(shape):
        flat = flat * dim + data[i].astype(flat.dtype)
    return flat.astype(data.dtype)


@register(
    "_unravel_index",
    attrs={"shape": Attr(SHAPE)},
    aliases=("unravel_index",),
    differentiable=False,
)
def unravel_index(data, shape):
    """Multi-indices (stacked on a new first axis) of the flat indices ``data`` into ``shape``."""
    flat = data.astype(jnp.int64 if _x64() else jnp.int32)
    out = []
    for dim in reversed(shape):
        out.append(flat % dim)
        flat = flat // dim
    return jnp.stack(out[::-1]).astype(data.dtype)


def _x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


@register("where", inputs=("condition", "x", "y"))
def where(condition, x, y):
    """``x`` where ``condition`` is non-zero, else ``y``.

    ``condition`` has the shape of ``x``, or is 1-D of length ``x.shape[0]`` and
    selects whole rows.
    """
    if x.shape != y.shape:
        raise OpError(f"operator where: x {tuple(x.shape)} and y {tuple(y.shape)} differ")
    if condition.shape != x.shape:
        if condition.ndim == 1 and condition.shape[0] == x.shape[0]:
            condition = condition.reshape((-1,) + (1,) * (x.ndim - 1))
        else:
            raise OpError(
                f"operator where: condition shape {tuple(condition.shape)} must equal x shape "
                f"{tuple(x.shape)} or be ({x.shape[0]},)"
            )
    return jnp.where(condition != 0, x, y)


@register("clip", attrs={"a_min": Attr(FLOAT), "a_max": Attr(FLOAT)})
def clip(data, a_min, a_max):
    """Clamp to ``[a_min, a_max]``; the gradient passes where ``a_min <= x <= a_max``
    (bounds included, as MXNet's ``clip_grad``) and is zero outside."""
    lo, hi = jnp.asarray(a_min, data.dtype), jnp.asarray(a_max, data.dtype)
    clipped = jnp.clip(data, lo, hi)
    if not jnp.issubdtype(data.dtype, jnp.inexact):
        return clipped
    return jnp.where((data >= lo) & (data <= hi), data, lax.stop_gradient(clipped))


def _topk_outputs(attrs):
    return 2 if attrs["ret_typ"] == "both" else 1


@register(
    "topk",
    attrs={
        "axis": Attr(OPT_INT, -1),
        "k": Attr(INT, 1),
        "ret_typ": Attr(STR, "indices", ("value", "indices", "mask", "both")),
        "is_ascend": Attr(BOOL, False),
        "dtype": Attr(DTYPE, "float32"),
    },
    num_outputs=_topk_outputs,
)
def topk(data, axis, k, ret_typ, is_ascend, dtype):
    """The ``k`` largest (or smallest) entries along ``axis``: values, indices, both or a
    mask. ``k <= 0`` means all of them; ``k`` above the axis length is refused."""
    if axis is None:
        data = data.reshape(-1)
        axis = 0
    axis = axis_index("topk", axis, data.ndim)
    n = data.shape[axis]
    if k > n:
        raise OpError(f"operator topk: k must be at most {n} (the length of axis {axis} of "
                      f"shape {tuple(data.shape)}), got k = {k}")
    if k <= 0:
        k = n
    moved = jnp.moveaxis(data, axis, -1)
    keyed = moved if is_ascend else -moved
    order = jnp.argsort(keyed, axis=-1, stable=True)[..., :k]
    values = jnp.take_along_axis(moved, order, axis=-1)
    if ret_typ == "mask":
        mask = jnp.zeros(moved.shape, data.dtype)
        mask = jnp.put_along_axis(mask, order, 1, axis=-1, inplace=False)
        return lax.stop_gradient(jnp.moveaxis(mask, -1, axis))
    indices = lax.stop_gradient(jnp.moveaxis(order, -1, axis).astype(dtype))
    values = jnp.moveaxis(values, -1, axis)
    if ret_typ == "value":
        return values
    if ret_typ == "indices":
        return indices
    return values, indices


@register("sort", attrs={"axis": Attr(OPT_INT, -1), "is_ascend": Attr(BOOL, True)})
def sort(data, axis, is_ascend):
    """Sorted copy along ``axis``."""
    if axis is None:
        data, axis = data.reshape(-1), 0
    axis = axis_index("sort", axis, data.ndim)
    out = jnp.sort(data, axis=axis)
    return out if is_ascend else jnp.flip(out, axis=axis)


@register(
    "argsort",
    attrs={
        "axis": Attr(OPT_INT, -1),
        "is_ascend": Attr(BOOL, True),
        "dtype": Attr(DTYPE, "float32"),
    },
    differentiable=False,
)
def argsort(data, axis, is_ascend, dtype):
    """Indices that sort ``data`` along ``axis`` (float32 by default)."""
    if axis is None:
        data, axis = data.reshape(-1), 0
    axis = axis_index("argsort", axis, data.ndim)
    keyed = data if is_ascend else -data
    return jnp.argsort(keyed, axis=axis, stable=True).astype(dtype)


def _seq_inputs(attrs):
    return ("data", "sequence_length") if attrs["use_sequence_length"] else ("data",)


def _seq_positions(data, axis):
    shape = [1] * data.ndim
    shape[axis] = data.shape[axis]
    return jnp.arange(data.shape[axis]).reshape(shape)


def _seq_lengths(data, lengths, axis):
    batch_axis = 1 - axis
    shape = [1] * data.ndim
    shape[batch_axis] = data.shape[batch_axis]
    return lengths.astype(jnp.int32).reshape(shape)


_SEQ_ATTRS = {"use_sequence_length": Attr(BOOL, False), "axis": Attr(INT, 0)}


@register(
    "SequenceMask",
    inputs=("data", "sequence_length"),
    attrs={**_SEQ_ATTRS, "value": Attr(FLOAT, 0.0)},
    active_inputs=_seq_inputs,
)
def sequence_mask(data, sequence_length=None, *, use_sequence_length, axis, value):
    """Set steps at or beyond each sequence's length to ``value`` (time on ``axis`` 0 or 1)."""
    if not use_sequence_length:
        return data
    keep = _seq_positions(data, axis) < _seq_lengths(data, sequence_length, axis)
    return jnp.where(keep, data, jnp.asarray(value, data.dtype))


@register(
    "SequenceLast",
    inputs=("data", "sequence_length"),
    attrs=_SEQ_ATTRS,
    active_inputs=_seq_inputs,
)
def sequence_last(data, sequence_length=None, *, use_sequence_length, axis):
    """The last valid step of each sequence (the last step when lengths are not used)."""
    if not use_sequence_length:
        return jnp.take(data, data.shape[axis] - 1, axis=axis)
    moved = jnp.moveaxis(data, axis, 0)
    last = sequence_length.astype(jnp.int32) - 1
    return moved[last, jnp.arange(moved.shape[1])]


@register(
    "SequenceReverse",
    inputs=("data", "sequence_length"),
    attrs=_SEQ_ATTRS,
    active_inputs=_seq_inputs,
)
def sequence_reverse(data, sequence_length=None, *, use_sequence_length, axis):
    """Reverse each sequence's first ``length`` steps (time on axis 0), leaving padding in place."""
    if not use_sequence_length:
        return jnp.flip(data, axis=0)
    steps = data.shape[0]
    t = jnp.arange(steps)[:, None]
    length = sequence_length.astype(jnp.int32)[None, :]
    src = jnp.where(t < length, length - 1 - t, t)
    src = src.reshape(src.shape + (1,) * (data.ndim - 2))
    return jnp.take_along_axis(data, jnp.broadcast_to(src, data.shape), axis=0)


# ---------------------------------------------------------------------------
# NDArray / Symbol indexing (``x[key]`` and ``x[key] = v``)

INDEX_KEY = Kind("index", lambda v: v)
"""An encoded index (see ``encode_index``); internal, never read from JSON."""


def encode_index(key, num_arrays_before: int = 1):
    """Turn a Python index into a hashable attr plus the list of array positions.

    Returns ``(encoded, arrays)``: ``encoded`` is a tuple whose items are ints,
    ``None``, ``Ellipsis`` (as ``"..."``), ``("s", start, stop, step)`` for slices
    and ``("a", j)`` for the j-th index array (input ``num_arrays_before + j``);
    ``arrays`` are the index arrays in order.
    """
    if not isinstance(key, tuple):
        key = (key,)
    encoded = []
    arrays = []
    for item in key:
        if isinstance(item, slice):
            encoded.append(("s", item.start, item.stop, item.step))
        elif item is None:
            encoded.append(None)
        elif item is Ellipsis:
            encoded.append("...")
        elif isinstance(item, (int,)) and not isinstance(item, bool):
            encoded.append(int(item))
        else:
            encoded.append(("a", len(arrays)))
            arrays.append(item)
    return tuple(encoded), arrays


def window_index(key, shape: tuple[int, ...]):
    """A basic index as a window at traced positions, or None.

    A key of in-range ints, unit-step slices, ``None`` and ``...`` selects a box of
    fixed size wherever it sits, so its positions can be an operand instead of part
    of the program: ``x[i, 2]`` for a hundred ``i`` compiles once. Returns
    ``(encoded, starts)`` with ``encoded = (("w", sizes, out_shape),)`` and
    ``starts`` the int32 start per axis, or None for any other key (kept static).
    """
    items = key if isinstance(key, tuple) else (key,)
    if any(not (item is None or item is Ellipsis or isinstance(item, slice)
                or (isinstance(item, int) and not isinstance(item, bool))) for item in items):
        return None
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    if used > len(shape) or sum(1 for item in items if item is Ellipsis) > 1:
        return None
    starts, sizes, out_shape, axis = [], [], [], 0
    for item in items:
        if item is None:
            out_shape.append(1)
        elif item is Ellipsis:
            for _ in range(len(shape) - used):
                starts.append(0)
                sizes.append(shape[axis])
                out_shape.append(shape[axis])
                axis += 1
        elif isinstance(item, slice):
            if item.step not in (None, 1):
                return None
            start, stop, _ = item.indices(shape[axis])
            starts.append(start)
            sizes.append(max(stop - start, 0))
            out_shape.append(sizes[-1])
            axis += 1
        else:
            if not -shape[axis] <= item < shape[axis]:
                return None  # the static path raises numpy's IndexError
            starts.append(item % shape[axis])
            sizes.append(1)
            axis += 1
    for d in shape[axis:]:
        starts.append(0)
        sizes.append(d)
        out_shape.append(d)
    return (("w", tuple(sizes), tuple(out_shape)),), np.asarray(starts, np.int32)


def _window(data, item, starts):
    _, sizes, out_shape = item
    box = lax.dynamic_slice(data, [starts[i] for i in range(len(sizes))], sizes)
    return box.reshape(out_shape)


def _decode(encoded, arrays):
    out = []
    for item in encoded:
        if isinstance(item, tuple) and item[0] == "s":
            out.append(slice(item[1], item[2], item[3]))
        elif isinstance(item, tuple) and item[0] == "a":
            idx = arrays[item[1]]
            if jnp.issubdtype(idx.dtype, jnp.floating):
                idx = idx.astype(jnp.int32)
            out.append(idx)
        elif item == "...":
            out.append(Ellipsis)
        else:
            out.append(item)
    return tuple(out)


def _check_int_index(data, encoded):
    pos = 0
    for item in encoded:
        if isinstance(item, int) and not isinstance(item, bool):
            if pos >= data.ndim or not -data.shape[pos] <= item < data.shape[pos]:
                raise OpError(
                    f"index {item} is out of bounds for axis {pos} with size "
                    f"{data.shape[pos] if pos < data.ndim else 0} (shape {tuple(data.shape)})"
                )
        if item is not None:
            pos += 1


def _item_axes(encoded, ndim):
    """The data axis each item of an encoded key indexes (None for ``None``/``...``)."""
    used = sum(1 for item in encoded if item is not None and item != "...")
    axes, pos = [], 0
    for item in encoded:
        if item is None:
            axes.append(None)
        elif item == "...":
            axes.append(None)
            pos += max(ndim - used, 0)
        else:
            axes.append(pos)
            pos += 1
    return axes


def _check_index_values(shape, encoded, arrays):
    """numpy's ``IndexError`` for an int or an int-array entry outside its axis."""
    for item, axis in zip(encoded, _item_axes(encoded, len(shape))):
        if axis is None:
            continue
        size = shape[axis] if axis < len(shape) else 0
        if isinstance(item, int) and not isinstance(item, bool):
            index_bounds("", [item], size, axis, allow_negative=True)
        elif isinstance(item, tuple) and item[0] == "a":
            idx = np.asarray(arrays[item[1]])
            if idx.dtype != np.bool_:
                index_bounds("", idx, size, axis, allow_negative=True)


def _index_values(attrs, arrays):
    _check_index_values(arrays[0].shape, attrs["key"], arrays[1:])


def _index_assign_values(attrs, arrays):
    _check_index_values(arrays[0].shape, attrs["key"], arrays[2:])


def _take_index(data, encoded, arrays):
    """``data[key]``; array entries out of range give NaN (lowest integer) in a
    compiled graph, where eager calls have already raised ``IndexError``."""
    if encoded and isinstance(encoded[0], tuple) and encoded[0][0] == "w":
        return _window(data, encoded[0], arrays[0])
    key = _decode(encoded, arrays)
    if any(isinstance(item, tuple) and item[0] == "a" for item in encoded):
        return data.at[key].get(mode="fill")
    return data[key]


@register(
    "_index",
    inputs=("*data",),
    attrs={"num_args": Attr(INT), "key": Attr(INDEX_KEY)},
    check_values=_index_values,
)
def index(*data, num_args, key):
    """``data[0][key]`` with index arrays ``data[1:]``; a rank-0 result becomes shape (1,)."""
    _check_int_index(data[0], key)
    out = _take_index(data[0], key, data[1:])
    return out.reshape((1,)) if out.ndim == 0 else out


@register(
    "_index_assign",
    inputs=("*data",),
    attrs={"num_args": Attr(INT), "key": Attr(INDEX_KEY)},
    check_values=_index_assign_values,
)
def index_assign(*data, num_args, key):
    """``data[0]`` with ``data[0][key] = data[1]`` (index arrays ``data[2:]``), out of place."""
    target, value = data[0], data[1]
    _check_int_index(target, key)
    idx = _decode(key, data[2:])
    region = jnp.shape(target[idx])
    value = jnp.asarray(value, dtype=target.dtype)
    if value.shape != region:
        try:
            value = jnp.broadcast_to(value.reshape(value.shape) if value.ndim else value, region)
        except ValueError:
            squeezed = value.reshape(region) if value.size == jnp.size(target[idx]) else None
            if squeezed is None:
                raise OpError(
                    f"cannot assign a value of shape {tuple(value.shape)} to a region of shape "
                    f"{tuple(region)} of an array of shape {tuple(target.shape)}"
                ) from None
            value = squeezed
    return target.at[idx].set(value)

