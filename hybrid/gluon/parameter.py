"""``Parameter``, ``Constant`` and ``ParameterDict`` with MXNet 1.9's semantics.

A Parameter holds its value (an NDArray marked for autograd), its gradient
buffer, ``grad_req``, ``lr_mult``/``wd_mult`` and its initializer. Its shape may
contain unknown (0) dimensions: with ``allow_deferred_init`` the value is
created on the first forward, once the shape is inferred from the data.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np

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
        self._grad_req = req
        if self._var_nd is not None:
            self._attach(self._var_nd)

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
        self._ctx_list = list(ctx_list)
        value = _nd.array(data, ctx=self._ctx_list[0], dtype=self.dtype)
        self._attach(value)

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

    def data(self, ctx: Context | None = None):
        """The value (an NDArray); while tracing a block, its Symbol variable."""
        traced = tracing_vars()
        if traced is not None:
            return self.var()
        return self._check_initialized()

    def list_data(self) -> list:
        """The value on each context."""
        value = self._check_initialized()
        return [value for _ in self._ctx_list]

    def grad(self, ctx: Context | None = None):
        """The gradient buffer."""
        value = self._check_initialized()
        if value._grad is None:
            raise RuntimeError(
                f"Cannot get gradient array for Parameter '{self.name}' because grad_req='null'"
            )
        return value._grad

    def list_grad(self) -> list:
        return [self.grad() for _ in self._ctx_list]

    def list_ctx(self) -> list[Context]:
        if self._var_nd is None:
            if self._deferred_init is not None:
                return list(self._deferred_init[1])
            raise RuntimeError(f"Parameter '{self.name}' has not been initialized")
        return list(self._ctx_list)

    def set_data(self, data) -> None:
        """Replace the value (same shape); defers if not initialized yet."""
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
        new = _nd.array(data, ctx=self._var_nd.context, dtype=self.dtype)
        self._var_nd._set_data(new._data)

    def zero_grad(self) -> None:
        """Set the gradient to zero."""
        if self._var_nd is None or self._var_nd._grad is None:
            return
        g = self._var_nd._grad
        g._set_data(_zeros_like(g))

    def reset_ctx(self, ctx) -> None:
        """Move the value to other context(s)."""
        ctx = _ctx_list(ctx)
        if self._var_nd is not None:
            self._ctx_list = ctx
            moved = self._var_nd.as_in_context(ctx[0])
            self._attach(_nd.NDArray(moved._data, ctx=ctx[0]))
        elif self._deferred_init is not None:
            init, _, default_init, data = self._deferred_init
            self._deferred_init = (init, ctx, default_init, data)

    def cast(self, dtype) -> None:
        """Change the dtype of the value and gradient."""
        self.dtype = np.dtype(dtype).type
        if self._var_nd is not None:
            self._attach(_nd.NDArray(self._var_nd._data.astype(np.dtype(dtype)),
                                     ctx=self._var_nd._ctx))

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


def _zeros_like(value):
    import jax.numpy as jnp

    return jnp.zeros(value.shape, value._data.dtype)


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
            arrays[name[len(strip_prefix):]] = param._check_initialized().asnumpy()
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
            raise MXNetError(f"{fname} holds an unnamed list of arrays, not parameters")
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
    for name, value in loaded.items():
        if name not in params:
            continue
        param = params[name]
        if cast_dtype and dtype_source == "saved":
            param.dtype = value.dtype.type
        if param._var_nd is None and param._deferred_init is None:
            param._deferred_init = (None, _ctx_list(ctx), _init.Zero(), None)
        param.set_data(value.astype(np.dtype(param.dtype)))
