"""``Parameter``, ``Constant`` and ``ParameterDict`` with MXNet 1.9's semantics.

A Parameter holds its value (an NDArray marked for autograd), its gradient
buffer, ``grad_req``, ``lr_mult``/``wd_mult`` and its initializer. Its shape may
contain unknown (0) dimensions: with ``allow_deferred_init`` the value is
created on the first forward, once the shape is inferred from the data.

Initialised on several contexts, it holds one independent copy of the value and
of the gradient per context (all with the same initial value); ``data(ctx)``
picks a copy by context as MXNet does (contexts are labels: several copies may
share one JAX device). The single-context case keeps just ``_var_nd``.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np

from lowering import x64

from .. import autograd
from .. import initializer as _init
from ..base import DeferredInitializationError, MXNetError
from ..context import Context, cpu, current_context
from ..ndarray import ndarray as _nd

_tracing = threading.local()


def tracing_vars() -> dict | None:
    """While a block is being traced: Parameter -> its Symbol variable; else None."""
    return getattr(_tracing, "vars", None)


class tracing:
    """Context in which ``Parameter.data()`` returns the parameter's Symbol variable."""

    def __enter__(self):
        self._old = tracing_vars()
        _tracing.vars = {} if self._old is None else self._old
        return self

    def __exit__(self, *exc):
        _tracing.vars = self._old


def _shape_compatible(declared, actual) -> bool:
    """Same rank, and every known (non-zero) declared dim equals the actual one."""
    return len(declared) == len(actual) and all(
        d in (0, None) or d == a for d, a in zip(declared, actual))


def _shape_known(shape) -> bool:
    return shape is not None and all(d is not None and d > 0 for d in shape)


class Parameter:
    """A learnable (or constant) array of a Block.

    Args mirror MXNet: ``name``, ``grad_req`` ('write', 'add', 'null'), ``shape``
    (0 or None marks an unknown dim), ``dtype``, ``lr_mult``, ``wd_mult``,
    ``init`` (an Initializer or its name), ``allow_deferred_init``,
    ``differentiable`` (False forces ``grad_req='null'``).
    """

    def __init__(self, name: str, grad_req: str = "write", shape=None, dtype=np.float32,
                 lr_mult: float = 1.0, wd_mult: float = 1.0, init=None,
                 allow_deferred_init: bool = False, differentiable: bool = True,
                 stype: str = "default", grad_stype: str = "default") -> None:
        self.name = name
        self._shape = None if shape is None else (
            (shape,) if isinstance(shape, int) else tuple(shape))
        self.dtype = np.dtype(dtype).type
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.init = init
        self._allow_deferred_init = allow_deferred_init
        self._differentiable = differentiable
        self._grad_req = grad_req if differentiable else "null"
        if self._grad_req not in ("write", "add", "null"):
            raise ValueError(f"grad_req must be 'write', 'add' or 'null', got {grad_req!r}")
        self._var_nd: _nd.NDArray | None = None
        # One NDArray per context when there are several (``_copies[0] is _var_nd``),
        # else None; ``_ctx_map`` finds a context's copy as MXNet's ``_ctx_map`` does.
        self._copies: list[_nd.NDArray] | None = None
        self._ctx_map: dict[tuple[int, int], int] = {}
        self._trainer = None
        self._ctx_list: list[Context] | None = None
        self._deferred_init: tuple | None = None
        self._symbol = None
        self._stype = stype
        self._grad_stype = grad_stype

    def __repr__(self) -> str:
        return (f"Parameter {self.name} (shape={self.shape}, dtype={np.dtype(self.dtype).name})")

    # ---------------------------------------------------------------- shape
    @property
    def shape(self):
        """The shape (unknown dims are 0 or None until inferred)."""
        return self._shape

    @shape.setter
    def shape(self, new_shape) -> None:
        new_shape = tuple(new_shape)
        if self._shape is None:
            self._shape = new_shape
            return
        if len(self._shape) != len(new_shape) or any(
            old not in (0, None) and old != new for old, new in zip(self._shape, new_shape)
        ):
            raise ValueError(
                f"parameter {self.name}: the new shape {new_shape} is incompatible with its "
                f"declared shape {self._shape}"
            )
        self._shape = new_shape

    @property
    def grad_req(self) -> str:
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if req not in ("write", "add", "null"):
            raise ValueError(f"grad_req must be 'write', 'add' or 'null', got {req!r}")
        if not self._differentiable:
            req = "null"
        if self._grad_req == req:
            return
        self._grad_req = req
        if self._var_nd is not None:
            self._attach_all(self.list_data())

    # ----------------------------------------------------------- initialize
    def initialize(self, init=None, ctx=None, default_init=None,
                   force_reinit: bool = False) -> None:
        """Create the value with ``init`` (else this parameter's own ``init``, else
        ``default_init``), or defer it until the shape is known."""
        if default_init is None:
            default_init = _init.Uniform()
        if self._var_nd is not None and not force_reinit:
            warnings.warn(
                f"Parameter '{self.name}' is already initialized, ignoring. "
                "Set force_reinit=True to re-initialize.", stacklevel=2)
            return
        self._var_nd = None
        self._copies = None
        ctx = _ctx_list(ctx)
        if init is None:
            init = default_init if self.init is None else self.init
        self._deferred_init = (init, ctx, default_init, None)
        if not _shape_known(self._shape):
            if self._allow_deferred_init:
                return
            raise ValueError(
                f"cannot initialize Parameter '{self.name}' because it has an invalid shape "
                f"{self._shape}"
            )
        self._finish_deferred_init()

    def _finish_deferred_init(self) -> None:
        if self._deferred_init is None:
            return
        init, ctx, default_init, data = self._deferred_init
        if not _shape_known(self._shape):
            raise DeferredInitializationError(
                f"parameter '{self.name}' has unknown shape {self._shape}; call the block on data "
                "first"
            )
        with autograd.pause():
            if data is None:
                data = _nd.array(np.zeros(self._shape, dtype=self.dtype), ctx=cpu(),
                                 dtype=self.dtype)
                _init.create(default_init)(_init.InitDesc(self.name, {"__init__": init}), data)
            self._init_impl(data, ctx)
        self._deferred_init = None

    def _init_impl(self, data, ctx_list) -> None:
        ctx_list = list(ctx_list)
        first = _nd.array(data, ctx=ctx_list[0], dtype=self.dtype)
        values = [first] + [_nd.NDArray(_put(first._data, c), ctx=c) for c in ctx_list[1:]]
        self._set_ctx_list(ctx_list)
        self._attach_all(values)

    def _set_ctx_list(self, ctx_list: list[Context]) -> None:
        self._ctx_list = ctx_list
        self._ctx_map = {}
        for i, c in enumerate(ctx_list):
            self._ctx_map.setdefault(_ctx_key(c), i)

    def _attach_all(self, values: list) -> None:
        """Make ``values`` (one per context) the copies, each with a fresh zero gradient."""
        for value in values:
            self._attach(value)
        self._var_nd = values[0]
        self._copies = list(values) if len(values) > 1 else None

    def _attach(self, value: _nd.NDArray) -> None:
        self._var_nd = value
        if self._grad_req == "null":
            value._grad = None
            value._grad_req = "null"
            value._entry = None
        else:
            value._mark_variable(_nd.NDArray(_zeros_like(value), ctx=value._ctx), self._grad_req)

    # ------------------------------------------------------------- access
    def _check_initialized(self):
        if self._var_nd is not None:
            return self._var_nd
        if self._deferred_init is not None:
            raise DeferredInitializationError(
                f"Parameter '{self.name}' has not been initialized yet because initialization "
                "was deferred. Actual initialization happens during the first forward pass."
            )
        raise RuntimeError(
            f"Parameter '{self.name}' has not been initialized. Note that you should initialize "
            "parameters and create Trainer with Block.collect_params() instead of Block.params "
            "because the later does not include Parameters of nested child Blocks"
        )

    def _check_and_get(self, arrays: list, ctx):
        """The array of ``ctx`` in ``arrays`` (one per context); MXNet's lookup and errors."""
        if ctx is None:
            if len(arrays) == 1:
                return arrays[0]
            ctx = current_context()
        idx = self._ctx_map.get(_ctx_key(ctx))
        if idx is None:
            raise RuntimeError(
                f"Parameter '{self.name}' was not initialized on context {ctx}. It was only "
                f"initialized on {self._ctx_list}."
            )
        return arrays[idx]

    def _data_on(self, ctx: Context):
        """The copy used for an input on ``ctx`` (the only copy with one context)."""
        if self._copies is None:
            return self._check_initialized()
        return self._check_and_get(self._copies, ctx)

    def data(self, ctx: Context | None = None):
        """The value on ``ctx`` (an NDArray); while tracing a block, its Symbol variable.

        Without ``ctx`` a parameter on one context returns its only copy, one on
        several contexts the copy on the current context (MXNet's rule).
        """
        if tracing_vars() is not None:
            return self.var()
        value = self._check_initialized()
        if ctx is None and self._copies is None:
            return value
        return self._check_and_get(self.list_data(), ctx)

    def list_data(self) -> list:
        """The copies of the value, one per context in ``list_ctx()`` order."""
        value = self._check_initialized()
        return [value] if self._copies is None else list(self._copies)

    def _check_grad(self) -> None:
        if self._var_nd is not None and self._var_nd._grad is None:
            raise RuntimeError(
                f"Cannot get gradient array for Parameter '{self.name}' because grad_req='null'"
            )

    def grad(self, ctx: Context | None = None):
        """The gradient buffer on ``ctx`` (chosen as ``data(ctx)`` chooses)."""
        self._check_grad()
        return self._check_and_get(self.list_grad(), ctx)

    def list_grad(self) -> list:
        """The gradient buffers, one per context."""
        self._check_grad()
        return [v._grad for v in self.list_data()]

    def list_ctx(self) -> list[Context]:
        """The contexts this parameter is (or, when deferred, will be) initialized on."""
        if self._var_nd is None:
            if self._deferred_init is not None:
                return list(self._deferred_init[1])
            raise RuntimeError(f"Parameter '{self.name}' has not been initialized")
        return list(self._ctx_list)

    def _set_trainer(self, trainer) -> None:
        self._trainer = trainer

    def set_data(self, data) -> None:
        """Replace the value on every context (same shape); defers if not initialized yet."""
        if isinstance(data, _nd.NDArray):
            shape = data.shape
        else:
            data = np.asarray(data)
            shape = data.shape
        self.shape = shape
        if self._var_nd is None:
            if self._deferred_init is None:
                raise RuntimeError(f"Parameter '{self.name}' has not been initialized")
            init, ctx, default_init, _ = self._deferred_init
            self._deferred_init = (init, ctx, default_init, data)
            self._finish_deferred_init()
            return
        trainer = self._trainer
        if trainer is not None and trainer._kv_initialized and trainer._update_on_kvstore:
            # MXNet: the kvstore holds its own copy of the weight; it is rebuilt (and the
            # optimizer state it keeps with it is dropped) on the next step.
            trainer._reset_kvstore()
        new = _nd.array(data, ctx=self._var_nd.context, dtype=self.dtype)
        self._var_nd._set_data(new._data)
        for value in self._copies or ():
            if value is not self._var_nd:
                value._set_data(_put(new._data, value._ctx))

    def zero_grad(self) -> None:
        """Set the gradient on every context to zero."""
        if self._var_nd is None or self._var_nd._grad is None:
            return
        for value in self.list_data():
            g = value._grad
            g._set_data(_zeros_like(g))

    def _reduce(self) -> _nd.NDArray:
        """The value on ``cpu()``: the mean of the copies when there are several (MXNet's
        ``_reduce``, used by ``reset_ctx`` and ``save``)."""
        values = self.list_data()
        if len(values) == 1:
            return _nd.NDArray(_put(values[0]._data, cpu()), ctx=cpu())
        total = values[0]._data
        for v in values[1:]:
            total = total + _put(v._data, None, total)
        return _nd.NDArray(total / np.asarray(len(values), total.dtype), ctx=cpu())

    def reset_ctx(self, ctx) -> None:
        """Move the value to other context(s) (the mean of the copies, fresh gradients)."""
        ctx = _ctx_list(ctx)
        if self._var_nd is not None:
            data = self._reduce()
            with autograd.pause():
                self._init_impl(data, ctx)
        elif self._deferred_init is not None:
            init, _, default_init, data = self._deferred_init
            self._deferred_init = (init, ctx, default_init, data)
        else:
            raise ValueError(f"Cannot reset context for Parameter '{self.name}' because it has "
                             "not been initialized.")

    @x64.scoped
    def cast(self, dtype) -> None:
        """Change the dtype of the value and gradient on every context (values kept)."""
        self.dtype = np.dtype(dtype).type
        if self._var_nd is None:
            return
        new_values = []
        for value in self.list_data():
            new = _nd.NDArray(value._data.astype(np.dtype(dtype)), ctx=value._ctx)
            if self._grad_req != "null":
                grad = _nd.NDArray(value._grad._data.astype(np.dtype(dtype)), ctx=value._ctx)
                new._mark_variable(grad, self._grad_req)
            new_values.append(new)
        self._var_nd = new_values[0]
        self._copies = new_values if len(new_values) > 1 else None

    def var(self):
        """The Symbol variable of this parameter (with its shape/dtype/lr/wd annotations)."""
        if self._symbol is None:
            from ..symbol import Variable

            shape = tuple(0 if d is None else d for d in self._shape) if self._shape else None
            init = self.init
            if init is not None and not isinstance(init, str):
                init = init.dumps()
            self._symbol = Variable(self.name, shape=shape, dtype=self.dtype,
                                    lr_mult=self.lr_mult, wd_mult=self.wd_mult, init=init,
                                    __storage_type__="0")
        return self._symbol


@x64.scoped
def _zeros_like(value):
    import jax.numpy as jnp

    return jnp.zeros(value.shape, value._data.dtype)


def _ctx_key(ctx: Context) -> tuple[int, int]:
    # MXNet's ``_ctx_map`` keys on ``device_typeid & 1`` (cpu/cpu_pinned/cpu_shared share
    # a slot, gpu another) and the device id.
    return ctx.device_typeid & 1, ctx.device_id


def _put(value, ctx: Context | None, like=None):
    """``value`` on the JAX device of ``ctx`` (or of the array ``like``); no copy if there."""
    import jax

    device = ctx.jax_device if ctx is not None else next(iter(like.devices()))
    if value.devices() == {device}:
        return value
    return jax.device_put(value, device)


def _ctx_list(ctx) -> list[Context]:
    if ctx is None:
        return [current_context()]
    if isinstance(ctx, Context):
        return [ctx]
    return list(ctx)


class Constant(Parameter):
    """A parameter that never changes (``grad_req='null'``), initialised to ``value``."""

    def __init__(self, name: str, value) -> None:
        if not isinstance(value, _nd.NDArray):
            value = _nd.array(value)
        self.value = value

        class _ConstInit(_init.Initializer):
            def _init_weight(_, _name, arr):
                arr[:] = value

        super().__init__(name, grad_req="null", shape=value.shape, dtype=value.dtype,
                         init=_ConstInit())

    @property
    def grad_req(self) -> str:
        return "null"

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if req != "null":
            warnings.warn(f"Constant parameter '{self.name}' does not support grad_req other "
                          f"than 'null', and new value '{req}' is ignored.", stacklevel=2)
        self._grad_req = "null"


class ParameterDict:
    """An ordered name -> Parameter mapping with a name ``prefix`` (MXNet's ParameterDict)."""

    def __init__(self, prefix: str = "", shared: ParameterDict | None = None) -> None:
        self._prefix = prefix
        self._params: OrderedDict[str, Parameter] = OrderedDict()
        self._shared = shared

    @property
    def prefix(self) -> str:
        return self._prefix

    def __repr__(self) -> str:
        body = "\n".join(f"  {p}" for p in self._params.values())
        return f"{self._prefix} (\n{body}\n)"

    def __getitem__(self, key: str) -> Parameter:
        return self._params[key]

    def __contains__(self, key: str) -> bool:
        return key in self._params

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    def items(self):
        return self._params.items()

    def _get_impl(self, name: str) -> Parameter | None:
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._params[name]
        return None

    def get(self, name: str, **kwargs: Any) -> Parameter:
        """The parameter ``prefix + name``, created with ``kwargs`` if it does not exist."""
        full = self._prefix + name
        param = self._get_impl(full)
        if param is None:
            param = Parameter(full, **kwargs)
            self._params[full] = param
            return param
        for key, value in kwargs.items():
            if key == "shape" and value is not None and param.shape is not None:
                param.shape = tuple(param.shape[i] if (v in (0, None)) else v
                                    for i, v in enumerate(value)) \
                    if len(value) == len(param.shape) else value
            elif hasattr(param, key) and getattr(param, key) != value and key != "init":
                existing = getattr(param, key)
                if key == "dtype" and np.dtype(existing) == np.dtype(value):
                    continue
                raise AssertionError(
                    f"cannot retrieve Parameter '{full}' because desired attribute does not "
                    f"match with stored for attribute '{key}': desired '{value}' vs stored "
                    f"'{existing}'"
                )
        return param

    def get_constant(self, name: str, value=None) -> Constant:
        """The constant ``prefix + name``, created from ``value`` if new."""
        full = self._prefix + name
        param = self._get_impl(full)
        if param is None:
            if value is None:
                raise KeyError(f"no constant named '{full}'; give a value to create it")
            param = Constant(full, value)
            self._params[full] = param
        return param

    def update(self, other: ParameterDict) -> None:
        """Add the parameters of ``other`` (the same name must mean the same object)."""
        for k, v in other.items():
            if k in self._params and self._params[k] is not v:
                raise ValueError(f"cannot update self with other because they have different "
                                 f"Parameters with the same name '{k}'")
            self._params[k] = v

    def initialize(self, init=None, ctx=None, verbose: bool = False,
                   force_reinit: bool = False) -> None:
        """Initialise every parameter (``init`` is the default initializer)."""
        if init is None:
            init = _init.Uniform()
        if verbose and hasattr(init, "set_verbosity"):
            init.set_verbosity(verbose=verbose)
        for param in self.values():
            param.initialize(None, ctx, init, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        for param in self.values():
            param.zero_grad()

    def reset_ctx(self, ctx) -> None:
        for param in self.values():
            param.reset_ctx(ctx)

    def list_ctx(self) -> list[Context]:
        out: list[Context] = []
        for param in self.values():
            for c in param.list_ctx():
                if c not in out:
                    out.append(c)
        return out

    def setattr(self, name: str, value: Any) -> None:
        """Set an attribute (``grad_req``, ``lr_mult``...) on every parameter."""
        for param in self.values():
            setattr(param, name, value)

    def select(self, pattern: str | None) -> ParameterDict:
        out = ParameterDict(self._prefix)
        regex = re.compile(pattern) if pattern else None
        for k, v in self.items():
            if regex is None or regex.match(k):
                out._params[k] = v
        return out

    def save(self, fname: str, strip_prefix: str = "") -> None:
        """Save values by (optionally prefix-stripped) full name."""
        from lowering import serialization

        arrays = {}
        for param in self.values():
            name = param.name
            if strip_prefix and not name.startswith(strip_prefix):
                raise ValueError(f"prefix '{strip_prefix}' is to be striped before saving, but "
                                 f"Parameter's name '{name}' does not start with it")
            arrays[name[len(strip_prefix):]] = param._reduce().asnumpy()
        serialization.save(fname, arrays)

    def load(self, fname: str, ctx=None, allow_missing: bool = False,
             ignore_extra: bool = False, restore_prefix: str = "", cast_dtype: bool = False,
             dtype_source: str = "current") -> None:
        """Load values saved by ``save`` (names get ``restore_prefix`` prepended)."""
        from lowering import serialization

        try:
            loaded = serialization.load(fname)
        except serialization.NDArrayFileError as err:
            raise MXNetError(f"cannot load parameters: {err}") from None
        if not isinstance(loaded, dict):
            if loaded:
                raise MXNetError(f"{fname} holds an unnamed list of arrays, not parameters")
            loaded = {}  # a parameter-free net's file: MXNet writes an empty dict unnamed
        self.load_dict(loaded, ctx, allow_missing, ignore_extra, restore_prefix, str(fname),
                       cast_dtype, dtype_source)

    def load_dict(self, param_dict: dict, ctx=None, allow_missing: bool = False,
                  ignore_extra: bool = False, restore_prefix: str = "",
                  filename: str | None = None, cast_dtype: bool = False,
                  dtype_source: str = "current") -> None:
        """Assign values from ``{name: array}`` (``arg:``/``aux:`` prefixes dropped,
        ``restore_prefix`` prepended); all names, shapes and dtypes are checked first."""
        arrays = {}
        for key, value in param_dict.items():
            if key.startswith(("arg:", "aux:")):
                key = key[4:]
            arrays[restore_prefix + key] = value.asnumpy() if hasattr(value, "asnumpy") \
                else np.asarray(value)
        assign_checked(self._params, arrays, filename or "<dict>", allow_missing, ignore_extra,
                       cast_dtype, dtype_source, ctx)


def assign_checked(params: dict[str, Parameter], loaded: dict[str, np.ndarray], fname: str,
                   allow_missing: bool, ignore_extra: bool, cast_dtype: bool,
                   dtype_source: str, ctx) -> None:
    """Check every name, shape and dtype first; only then assign (all or nothing)."""
    if not allow_missing:
        missing = [k for k in params if k not in loaded]
        if missing:
            raise MXNetError(
                f"parameter(s) {missing} are missing in file '{fname}', which contains "
                f"{sorted(loaded)}. Set allow_missing=True to ignore missing parameters."
            )
    if not ignore_extra:
        extra = [k for k in loaded if k not in params]
        if extra:
            raise MXNetError(
                f"parameter(s) {extra} loaded from file '{fname}' are not present in this "
                f"block, whose parameters are {sorted(params)}. Set ignore_extra=True to "
                "ignore them."
            )
    for name, value in loaded.items():
        if name not in params:
            continue
        param = params[name]
        if param.shape is not None and not _shape_compatible(param.shape, value.shape):
            raise MXNetError(
                f"failed loading parameter '{name}' from '{fname}': shape in the file "
                f"{tuple(value.shape)} does not match the parameter's shape {tuple(param.shape)}"
            )
        if not cast_dtype and np.dtype(param.dtype) != value.dtype:
            raise MXNetError(
                f"failed loading parameter '{name}' from '{fname}': dtype in the file "
                f"{value.dtype} does not match the parameter's dtype {np.dtype(param.dtype)}; "
                "set cast_dtype=True to convert"
            )
    ctx = None if ctx is None else _ctx_list(ctx)
    for name in loaded:
        param = params.get(name)
        if param is None or ctx is None:
            continue
        if param._var_nd is not None or param._deferred_init is not None:
            on = param.list_ctx()
            if set(ctx) != set(on):
                raise AssertionError(f"Failed to load Parameter '{name}' on {ctx} because it "
                                     f"was previous initialized on {on}.")
    for name, value in loaded.items():
        if name not in params:
            continue
        param = params[name]
        if cast_dtype and dtype_source == "saved":
            param.dtype = value.dtype.type
        if param._var_nd is None and param._deferred_init is None:
            param._deferred_init = (None, ctx or [cpu()], _init.Zero(), None)
        param.set_data(value.astype(np.dtype(param.dtype)))
