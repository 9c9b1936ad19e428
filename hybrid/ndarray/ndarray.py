"""``NDArray``: MXNet's mutable n-dimensional array, as a handle over an immutable ``jax.Array``.

In-place syntax (``x[:] = v``, ``x += 1``, ``copyto``) swaps the handle's value.
Basic slicing on the first axis (``x[1]``, ``x[1:3]``) returns a *view*: writing
into it writes into the parent, as in MXNet. Arithmetic broadcasts
(``broadcast_add`` and friends); comparisons give 0/1 in the input dtype.
Defaults follow MXNet 1.x: float32 unless a dtype is given (even from float64 or
int64 numpy data), and no zero-dim arrays (full reductions have shape ``(1,)``).
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lowering import x64

from .. import autograd
from ..base import MXNetError
from ..context import Context, current_context
from ..engine.pending import Pending

_DEFAULT_DTYPE = np.float32
_asarray = x64.scoped(jnp.asarray)  # keeps float64/int64 (see lowering.x64)


def _np_dtype(dtype: Any) -> np.dtype:
    if dtype is None:
        return np.dtype(_DEFAULT_DTYPE)
    return np.dtype(dtype)


# MXNet 1.9's own words (src/imperative/imperative.cc, RecordOp).
_IN_GRAPH_MESSAGE = (
    "Assigning to NDArrays that are already in a computational graph will cause undefined "
    "behavior when evaluating gradients. Please call backward first to clear the graph or do "
    "this out side of a record section. Also note that you cannot use inplace operations like "
    "+=, *=, relu(x, out=x), y[idx]=x, etc inside a record section."
)
_INPLACE_MESSAGE = ("Inplace operations (+=, -=, x[:]=, etc) are not supported when recording "
                    "with autograd.")


def _is_whole(key: Any, ndim: int) -> bool:
    """Whether ``x[key] = v`` writes the whole array (``:``, ``...``, ``:, :``)."""
    parts = key if isinstance(key, tuple) else (key,)
    slices = [k for k in parts if isinstance(k, slice)]
    ellipses = [k for k in parts if k is Ellipsis]
    return (len(slices) + len(ellipses) == len(parts) and len(ellipses) <= 1
            and len(slices) <= ndim and all(k == slice(None) for k in slices))


def _raise(error: Exception | None) -> None:
    if error is not None:
        raise error


def _key_text(key: Any) -> str:
    def one(k: Any) -> str:
        if isinstance(k, slice):
            text = f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}"
            return text if k.step is None else f"{text}:{k.step}"
        if k is Ellipsis:
            return "..."
        if isinstance(k, (NDArray, np.ndarray, list)):
            return "<index array>"
        return repr(k)

    return ", ".join(one(k) for k in (key if isinstance(key, tuple) else (key,)))


class NDArray:
    """An n-dimensional array on a context (MXNet's ``mx.nd.NDArray``)."""

    # ``_fresh_grad`` (unset until a backward writes ``_grad``): MXNet's flag, read and
    # cleared by ``Trainer.step`` to detect stale gradients.
    # ``_saved_by``: weak references to the recorded nodes that read this buffer (see
    # ``autograd._watch``); a write marks them so their backward refuses stale residuals.
    __slots__ = ("_value", "_ctx", "_grad", "_grad_req", "_entry", "_base", "_index",
                 "_fresh_grad", "_saved_by", "__weakref__")
    __array_priority__ = 1000.0

    def __init__(self, data: Any, ctx: Context | None = None) -> None:
        self._value = data if isinstance(data, jax.Array) else _asarray(data)
        self._ctx = ctx
        self._grad: NDArray | None = None
        self._grad_req = "null"
        self._entry: tuple | None = None
        self._base: NDArray | None = None
        self._index: Any = None
        self._saved_by: list | None = None

    # ------------------------------------------------------------------ data
    @classmethod
    def _blank(cls, ctx: Context | None) -> NDArray:
        """An array whose value its creator sets next (a captured op's output)."""
        out = cls.__new__(cls)
        out._value = None
        out._ctx = ctx
        out._grad = None
        out._grad_req = "null"
        out._entry = None
        out._base = None
        out._index = None
        out._saved_by = None
        return out

    @property
    def _data(self) -> jax.Array:
        if self._base is not None:
            return self._base._data[self._index]
        value = self._value
        if value.__class__ is Pending:  # captured, not yet run: run it now
            return value.force(self)
        return value

    def _aval(self) -> Any:
        """Shape and dtype (``.shape``, ``.dtype``) without running a pending value."""
        value = self._value
        if self._base is None and value.__class__ is Pending:
            return value.aval
        return self._data

    @x64.scoped
    def _set_data(self, value: jax.Array) -> None:
        """Replace the contents (same shape) — the primitive behind every in-place write."""
        if self._base is not None:
            base = self._base
            base._set_data(base._data.at[self._index].set(value.astype(base.dtype)))
        else:
            self._value = value
            self._note_write()

    def _note_write(self) -> None:
        # Only inputs: hybrid's residuals hold the values recorded, and an input written
        # afterwards is where MXNet's backward (reading the current buffers) would differ.
        if self._saved_by:
            for node in autograd.live_watchers(self):
                node.note_written(f"an input of shape {self.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(self._aval().shape)

    @property
    def dtype(self) -> type:
        """The numpy scalar type of the elements (``numpy.float32``), as in MXNet."""
        return np.dtype(self._aval().dtype).type

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def context(self) -> Context:
        """The array's context (device)."""
        return self._ctx if self._ctx is not None else current_context()

    ctx = context

    @property
    def stype(self) -> str:
        return "default"

    @property
    def handle(self) -> NDArray:
        return self

    @property
    def T(self) -> NDArray:
        """Transpose (reversed axes)."""
        return _op("transpose")(self)

    def asnumpy(self) -> np.ndarray:
        """A numpy copy of the data (waits for the computation)."""
        return np.array(self._data, copy=True)

    def asscalar(self) -> Any:
        """The value of a size-1 array as a numpy scalar."""
        if self.size != 1:
            raise ValueError(f"asscalar needs an array of size 1, this one has shape {self.shape}")
        return self.asnumpy().reshape(())[()]

    def item(self) -> Any:
        return self.asscalar().item()

    def wait_to_read(self) -> None:
        """Block until the value is computed."""
        jax.block_until_ready(self._data)

    def wait_to_write(self) -> None:
        self.wait_to_read()

    def tolist(self) -> list:
        return self.asnumpy().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.asnumpy()
        return out if dtype is None else out.astype(dtype)

    # --------------------------------------------------------------- copies
    def copy(self) -> NDArray:
        """A new array with the same contents (and context)."""
        return _op("_copy")(self)

    @x64.scoped
    def copyto(self, other: NDArray | Context) -> NDArray:
        """Copy into ``other`` (an NDArray of the same shape) or onto a context."""
        if isinstance(other, Context):
            return NDArray(jax.device_put(self._data, other.jax_device, may_alias=False),
                           ctx=other)
        if other.shape != self.shape:
            raise ValueError(f"copyto: shape {self.shape} does not match target {other.shape}")
        if other is self:
            return other
        error = other._write_error("copyto")
        src = self
        recorded = error is None and autograd.is_recording() and self._in_graph()
        if recorded and np.dtype(self.dtype) != np.dtype(other.dtype):
            src = self.astype(other.dtype)
        other._set_data(jax.device_put(src._data.astype(other._data.dtype),
                                       other.context.jax_device, may_alias=False))
        if recorded:
            # MXNet records the copy: gradients reaching ``other`` flow back to ``self``.
            other._entry = src._entry
        _raise(error)
        return other

    def as_in_context(self, context: Context) -> NDArray:
        """This array if it is on ``context`` already, else a copy there."""
        if context == self.context:
            return self
        out = self.copyto(context)
        out._entry = self._entry
        return out

    as_in_ctx = as_in_context

    def astype(self, dtype: Any, copy: bool = True) -> NDArray:
        """Cast to ``dtype`` (no copy if ``copy=False`` and already that type)."""
        if not copy and np.dtype(dtype) == np.dtype(self.dtype):
            return self
        return _op("cast")(self, dtype=np.dtype(dtype).name)

    def detach(self) -> NDArray:
        """The same values, cut from the autograd graph."""
        return NDArray(self._data, ctx=self._ctx)

    def reshape(self, *shape: Any, **kwargs: Any) -> NDArray:
        """Reshape with MXNet's special codes (0, -1, -2, -3, -4); ``reverse=`` accepted."""
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        if "shape" in kwargs:
            shape = tuple(kwargs.pop("shape"))
        return _op("reshape")(self, shape=shape, **kwargs)

    def zeros_like(self) -> NDArray:
        return _op("zeros_like")(self)

    def ones_like(self) -> NDArray:
        return _op("ones_like")(self)

    # -------------------------------------------------------------- autograd
    @x64.scoped
    def attach_grad(self, grad_req: str = "write", stype: str | None = None) -> None:
        """Allocate ``.grad`` and mark this array as a variable for autograd."""
        self._mark_variable(NDArray(jnp.zeros(self.shape, self._data.dtype), ctx=self._ctx),
                            grad_req)

    def _mark_variable(self, grad: NDArray, grad_req: str) -> None:
        if grad_req not in ("write", "add", "null"):
            raise ValueError(f"grad_req must be 'write', 'add' or 'null', got {grad_req!r}")
        self._grad = grad
        self._grad_req = grad_req
        self._entry = None if grad_req == "null" else (autograd.Variable(self), 0)

    def _accumulate_grad(self, value: jax.Array) -> None:
        if self._grad is None or self._grad_req == "null":
            return
        if value.dtype != self._grad._data.dtype:
            value = value.astype(self._grad._data.dtype)
        if self._grad_req == "add":
            self._grad._set_data(self._grad._data + value)
        else:
            self._grad._set_data(value)
        self._fresh_grad = True

    @property
    def grad(self) -> NDArray | None:
        """The gradient buffer filled by ``backward`` (None before ``attach_grad``)."""
        return self._grad

    def backward(self, out_grad: NDArray | None = None, retain_graph: bool = False,
                 train_mode: bool = True) -> None:
        """``autograd.backward([self], [out_grad])``."""
        autograd.backward([self], None if out_grad is None else [out_grad],
                          retain_graph=retain_graph, train_mode=train_mode)

    # -------------------------------------------------------------- indexing
    def __getitem__(self, key: Any) -> NDArray:
        if isinstance(key, NDArray) or isinstance(key, np.ndarray) or (
            isinstance(key, tuple) and any(isinstance(k, (NDArray, np.ndarray, list)) for k in key)
        ) or isinstance(key, list):
            return self._index_op(key)
        if self._is_first_axis_basic(key):
            return self._view(key)
        return self._index_op(key)

    def _view(self, key: int | slice) -> NDArray:
        """A handle on ``self[key]`` that reads and writes through to ``self``."""
        if isinstance(key, numbers.Integral):
            length = self.shape[0] if self.ndim else 0
            if not -length <= key < length:
                raise IndexError(
                    f"index {key} is out of bounds for axis 0 with size {length} "
                    f"(shape {self.shape})"
                )
        if isinstance(key, numbers.Integral) and self.ndim == 1:
            key = slice(key, key + 1 if key != -1 else None)  # MXNet: x[i] on 1-D is (1,)
        view = NDArray.__new__(NDArray)
        view._value = None
        view._ctx = self._ctx
        view._grad = None
        view._grad_req = "null"
        view._entry = None
        view._saved_by = None
        view._base, view._index = self, key
        if autograd.is_recording() and self._in_graph():
            # MXNet records the slice of an array in the graph, so gradients flow
            # through the view; its data still reads and writes through to ``self``.
            view._entry = self._index_op(key)._entry
        return view

    @staticmethod
    def _is_first_axis_basic(key: Any) -> bool:
        if isinstance(key, bool):
            return False
        if isinstance(key, numbers.Integral):
            return True
        return isinstance(key, slice) and key.step in (None, 1)

    @x64.scoped
    def _index_op(self, key: Any) -> NDArray:
        from lowering.ops.indexing import encode_index, window_index

        window = window_index(key, self.shape)
        if window is not None:  # positions as an operand: one program for every position
            encoded, starts = window
            return _op("_index")(self, NDArray(jnp.asarray(starts), ctx=self._ctx),
                                 key=encoded)
        encoded, arrays = encode_index(key)
        arrays = [a if isinstance(a, NDArray) else NDArray(jnp.asarray(a), ctx=self._ctx)
                  for a in arrays]
        return _op("_index")(self, *arrays, key=encoded)

    @x64.scoped
    def __setitem__(self, key: Any, value: Any) -> None:
        from lowering.ops.indexing import encode_index

        whole = _is_whole(key, self.ndim)
        if whole and value is self:
            return  # MXNet: ``x[:] = x`` writes nothing
        error = None
        if not (whole and isinstance(value, np.ndarray)):  # MXNet copies numpy data op-free
            error = self._write_error(f"x[{_key_text(key)}] = ...", () if whole else (value,))
        if isinstance(value, NDArray):
            v = value._data
        else:
            v = jnp.asarray(np.asarray(value), dtype=self._data.dtype)
        if whole:
            if tuple(v.shape) != self.shape:
                try:
                    v = jnp.broadcast_to(v, self.shape)
                except ValueError:
                    raise ValueError(
                        f"cannot assign a value of shape {tuple(v.shape)} to an array of shape "
                        f"{self.shape}"
                    ) from None
            if (error is None and isinstance(value, NDArray) and autograd.is_recording()
                    and value._in_graph()):
                # MXNet records the whole-array copy: gradients flow back to ``value``.
                src = value
                if src.shape != self.shape:
                    lead = (1,) * (self.ndim - src.ndim)
                    src = _op("broadcast_to")(src.reshape(lead + src.shape), shape=self.shape)
                if np.dtype(src.dtype) != np.dtype(self.dtype):
                    src = src.astype(self.dtype)
                self._set_data(src._data)
                self._entry = src._entry
                return
            self._set_data(v.astype(self._data.dtype))
            _raise(error)
            return
        encoded, arrays = encode_index(key)
        raw = [a._data if isinstance(a, NDArray) else jnp.asarray(a) for a in arrays]
        from lowering import registry

        op = registry.get("_index_assign")
        try:
            new = op.impl(self._data, v, *raw, num_args=2 + len(raw), key=encoded)
        except (ValueError, IndexError, TypeError) as err:
            raise MXNetError(f"setting x[{key!r}] on shape {self.shape}: {err}") from None
        self._set_data(new)
        _raise(error)

    # ----------------------------------------------------- writes and autograd
    def _in_graph(self) -> bool:
        """MXNet's "already in a computational graph": marked with ``attach_grad``, or the
        output of a recorded op whose graph no backward has freed yet."""
        if self._grad is not None:
            return True
        entry = self._entry
        if entry is not None and (isinstance(entry[0], autograd.Variable)
                                  or entry[0].vjp is not None):
            return True
        return self._saved_by is not None and bool(autograd.live_watchers(self, own=True))

    def _write_error(self, what: str, sources: tuple = ()) -> MXNetError | None:
        """The error MXNet 1.9 raises for this in-place write while recording, or None.

        MXNet performs the write and then raises (so the caller does too), leaving the
        recorded graph as it was. ``sources`` are the write's other inputs: MXNet records
        an in-place op whose inputs are in the graph, then refuses it because the target
        is one of its inputs.
        """
        if not autograd.is_recording():
            return None
        if self._in_graph():
            return MXNetError(f"{what} on an NDArray of shape {self.shape} inside "
                              f"autograd.record(): {_IN_GRAPH_MESSAGE}")
        if any(isinstance(s, NDArray) and s._in_graph() for s in sources):
            return MXNetError(f"{what} on an NDArray of shape {self.shape} with a value "
                              f"computed inside autograd.record(): {_INPLACE_MESSAGE}")
        return None

    # ------------------------------------------------------------ operators
    def _binary(self, other: Any, array_op: str, scalar_op: str, reverse: bool = False):
        if isinstance(other, NDArray):
            a, b = (other, self) if reverse else (self, other)
            if autograd.is_recording():
                return _op(array_op)(a, b)
            op, binary, remember = _BINARY_API.get(array_op) or _binary_api(array_op)
            out = binary(op, a, b)
            if out is None:
                out = _op(array_op)(a, b)
                remember(op, a, b)
            return out
        if isinstance(other, numbers.Number) or isinstance(other, np.generic):
            return _op(scalar_op)(self, scalar=other)
        if isinstance(other, (np.ndarray, list, tuple)):
            other = NDArray(_asarray(np.asarray(other), dtype=self._data.dtype), ctx=self._ctx)
            return _op(array_op)(other, self) if reverse else _op(array_op)(self, other)
        return NotImplemented

    def __add__(self, o): return self._binary(o, "broadcast_add", "_plus_scalar")
    def __radd__(self, o): return self._binary(o, "broadcast_add", "_plus_scalar", True)
    def __sub__(self, o): return self._binary(o, "broadcast_sub", "_minus_scalar")
    def __rsub__(self, o): return self._binary(o, "broadcast_sub", "_rminus_scalar", True)
    def __mul__(self, o): return self._binary(o, "broadcast_mul", "_mul_scalar")
    def __rmul__(self, o): return self._binary(o, "broadcast_mul", "_mul_scalar", True)
    def __truediv__(self, o): return self._binary(o, "broadcast_div", "_div_scalar")
    def __rtruediv__(self, o): return self._binary(o, "broadcast_div", "_rdiv_scalar", True)
    def __mod__(self, o): return self._binary(o, "broadcast_mod", "_mod_scalar")
    def __rmod__(self, o): return self._binary(o, "broadcast_mod", "_rmod_scalar", True)
    def __pow__(self, o): return self._binary(o, "broadcast_power", "_power_scalar")
    def __rpow__(self, o): return self._binary(o, "broadcast_power", "_rpower_scalar", True)
    def __eq__(self, o): return self._binary(o, "broadcast_equal", "_equal_scalar")
    def __ne__(self, o): return self._binary(o, "broadcast_not_equal", "_not_equal_scalar")
    def __gt__(self, o): return self._binary(o, "broadcast_greater", "_greater_scalar")
    def __ge__(self, o): return self._binary(o, "broadcast_greater_equal", "_greater_equal_scalar")
    def __lt__(self, o): return self._binary(o, "broadcast_lesser", "_lesser_scalar")
    def __le__(self, o): return self._binary(o, "broadcast_lesser_equal", "_lesser_equal_scalar")
    __div__ = __truediv__
    __rdiv__ = __rtruediv__
    __hash__ = object.__hash__

    def __neg__(self): return _op("negative")(self)
    def __pos__(self): return self
    def __abs__(self): return _op("abs")(self)

    @x64.scoped
    def _inplace(self, symbol: str, compute: Any, other: Any) -> NDArray:
        # MXNet refuses the write whenever recording would need it, so an accepted
        # in-place op is never recorded and the target keeps its graph entry.
        error = self._write_error(f"x {symbol} ...", (other,))
        result = compute(other)
        if result is NotImplemented:
            return result
        self._set_data(result._data.astype(self._data.dtype))
        _raise(error)
        return self

    def __iadd__(self, o): return self._inplace("+=", self.__add__, o)
    def __isub__(self, o): return self._inplace("-=", self.__sub__, o)
    def __imul__(self, o): return self._inplace("*=", self.__mul__, o)
    def __itruediv__(self, o): return self._inplace("/=", self.__truediv__, o)
    def __imod__(self, o): return self._inplace("%=", self.__mod__, o)
    __idiv__ = __itruediv__

    def __bool__(self) -> bool:
        if self.size == 1:
            return bool(self.asscalar())
        if self.size == 0:
            return False
        raise ValueError("the truth value of an NDArray with more than one element is ambiguous")

    def __float__(self) -> float:
        return float(self.asscalar())

    def __int__(self) -> int:
        return int(self.asscalar())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in self.shape)
        return f"\n{self.asnumpy()}\n<NDArray {shape} @{self.context}>"

    def __reduce__(self):
        return (_rebuild, (self.asnumpy(), str(self.context.device_type),
                           self.context.device_id))


def _rebuild(data: np.ndarray, device_type: str, device_id: int) -> NDArray:
    return NDArray(_asarray(data), ctx=Context(device_type, device_id))


_OP_CACHE: dict[str, Any] = {}
_BINARY_API: dict[str, tuple] = {}


def _binary_api(name: str) -> tuple:
    """``(op, dispatch.binary, dispatch.remember_binary)`` for an array-array operator,
    bound on first use (dispatch imports this module)."""
    from lowering import registry

    from . import dispatch

    found = _BINARY_API[name] = (registry.get(name), dispatch.binary, dispatch.remember_binary)
    return found


def _op(name: str):
    fn = _OP_CACHE.get(name)
    if fn is None:
        from lowering import registry

        from ..op_functions import make_function

        fn = _OP_CACHE[name] = make_function(registry.get(name), name, symbolic=False)
    return fn


# Op-backed methods: x.sum(axis=1) is nd.sum(x, axis=1).
_METHODS = (
    "sum", "mean", "max", "min", "prod", "nansum", "nanprod", "norm", "argmax", "argmin",
    "argmax_channel", "exp", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "cbrt",
    "rcbrt", "square", "reciprocal", "abs", "sign", "round", "rint", "fix", "floor", "ceil",
    "trunc", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "arcsinh", "arccosh", "arctanh", "degrees", "radians", "relu", "sigmoid", "softmax",
    "log_softmax", "softmin", "transpose", "expand_dims", "squeeze", "flatten", "clip",
    "take", "pick", "one_hot", "split", "slice", "slice_axis", "slice_like", "tile", "repeat",
    "flip", "broadcast_to", "broadcast_like", "broadcast_axes", "topk", "sort", "argsort",
    "swapaxes", "reshape_like", "diag", "shape_array", "size_array",
)


def _make_method(name: str):
    def method(self, *args, **kwargs):
        return _op(name)(self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``nd.{name}(self, ...)``."
    return method


for _name in _METHODS:
    if not hasattr(NDArray, _name):
        setattr(NDArray, _name, _make_method(_name))


def _place(value: jax.Array, ctx: Context) -> jax.Array:
    device = ctx.jax_device
    if getattr(value, "devices", None) and device in value.devices():
        return value
    return jax.device_put(value, device)


@x64.scoped
def array(source: Any, ctx: Context | None = None, dtype: Any = None) -> NDArray:
    """An NDArray from a list, numpy array, scalar or NDArray.

    The dtype is float32 unless ``dtype`` is given, even for float64/int64 numpy
    sources; an NDArray source keeps its dtype.
    """
    ctx = ctx or current_context()
    if isinstance(source, NDArray):
        dt = np.dtype(dtype) if dtype is not None else np.dtype(source.dtype)
        return NDArray(_place(source._data.astype(dt), ctx), ctx=ctx)
    if isinstance(source, jax.Array):
        dt = np.dtype(dtype) if dtype is not None else np.dtype(source.dtype)
        return NDArray(_place(source.astype(dt), ctx), ctx=ctx)
    data = np.asarray(source, dtype=_np_dtype(dtype))
    if data.ndim == 0:
        data = data.reshape((1,))
    return NDArray(jax.device_put(data, ctx.jax_device), ctx=ctx)
