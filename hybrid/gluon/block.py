"""``Block`` and ``HybridBlock``: MXNet's Gluon building blocks.

A Block runs eagerly as plain Python. A HybridBlock can also ``hybridize()``:
on its first call it is traced with Symbol inputs into one graph of registry
ops (``hybrid_forward(F, x, ...)`` with ``F = sym``, or ``forward(x)`` on
Symbols), which is lowered and compiled by XLA; later calls with the same input
shapes reuse the compiled program, and a recorded call is one node on the
autograd tape whose backward is one compiled VJP.

Naming follows MXNet: a block's prefix is ``<lowercase class name><n>_`` (per
parent scope), parameters are ``prefix + name`` and structural names
(``0.weight``) are used by ``save_parameters``.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from typing import Any

import jax
import numpy as np

from lowering import graph as _graph
from lowering import x64
from lowering.compiled_graph import CompiledGraph
from lowering.serialization import NDArrayFileError

from .. import autograd, initializer
from .. import name as _name
from .. import ndarray as _nd_mod
from .. import random as _random
from .. import symbol as _sym_mod
from ..base import DeferredInitializationError, MXNetError
from ..engine import capture as _capture
from ..engine import steps as _steps
from ..engine.entries import BlockEntry
from ..ndarray.ndarray import NDArray
from ..symbol.symbol import Symbol
from .parameter import Parameter, ParameterDict, assign_checked, tracing


class _BlockScope:
    """Name scope of a block: hands out child prefixes and sets the symbol name prefix."""

    _current = threading.local()

    def __init__(self, block: Block) -> None:
        self._block = block
        self._counter: dict[str, int] = {}
        self._old_scope: _BlockScope | None = None
        self._name_scope: _name.Prefix | None = None

    @staticmethod
    def create(prefix: str | None, params: ParameterDict | None, hint: str):
        current = getattr(_BlockScope._current, "value", None)
        if current is None:
            if prefix is None:
                prefix = _name.current().get(None, hint) + "_"
            params = ParameterDict(prefix) if params is None else ParameterDict(params.prefix,
                                                                                 params)
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = f"{hint}{count}_"
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self) -> _BlockScope:
        if self._block._empty_prefix:
            return self
        self._old_scope = getattr(_BlockScope._current, "value", None)
        _BlockScope._current.value = self
        self._name_scope = _name.Prefix(self._block.prefix)
        self._name_scope.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._block._empty_prefix:
            return
        self._name_scope.__exit__(*exc)
        self._name_scope = None
        _BlockScope._current.value = self._old_scope


class HookHandle:
    """Returned by ``register_forward_hook``; ``detach()`` removes the hook."""

    def __init__(self, hooks: OrderedDict, key: int) -> None:
        self._hooks = hooks
        self._key = key

    def detach(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()


class Block:
    """Base class of all layers and models; subclasses implement ``forward``."""

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        self._empty_prefix = prefix == ""
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith("_") else self._prefix
        self._scope = _BlockScope(self)
        self._children: OrderedDict[str, Block] = OrderedDict()
        self._reg_params: OrderedDict[str, Parameter] = OrderedDict()
        self._forward_hooks: OrderedDict[int, Any] = OrderedDict()
        self._forward_pre_hooks: OrderedDict[int, Any] = OrderedDict()

    def _alias(self) -> str:
        return self.__class__.__name__.lower()

    def __repr__(self) -> str:
        body = "\n".join(f"  ({k}): " + repr(v).replace("\n", "\n  ")
                         for k, v in self._children.items())
        return f"{self.__class__.__name__}(\n{body}\n)" if body else \
            f"{self.__class__.__name__}()"

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_children"):
            existing = self.__dict__.get(name)
            if isinstance(existing, (Parameter, Block)) and not isinstance(value, type(existing)):
                raise TypeError(f"changing attribute type for {name} from {type(existing)} to "
                                f"{type(value)} is not allowed")
            if isinstance(value, Block):
                self.register_child(value, name)
            elif isinstance(value, Parameter):
                if name in self._reg_params and self._reg_params[name] is not value:
                    raise ValueError(f"overriding Parameter attribute {name} is not allowed")
                self._reg_params[name] = value
        super().__setattr__(name, value)

    @property
    def prefix(self) -> str:
        """The name prefix of this block (``dense0_``)."""
        return self._prefix

    @property
    def name(self) -> str:
        """The block's name (its prefix without the trailing underscore)."""
        return self._name

    @property
    def params(self) -> ParameterDict:
        """This block's own ParameterDict (children's parameters are not included)."""
        return self._params

    def name_scope(self) -> _BlockScope:
        """Context manager: children created inside get names under this block's prefix."""
        return self._scope

    def collect_params(self, select: str | None = None) -> ParameterDict:
        """Parameters of this block and all children, optionally filtered by a regex."""
        ret = ParameterDict(self._params.prefix)
        if not select:
            ret.update(self.params)
        else:
            pattern = re.compile(select)
            for k, v in self.params.items():
                if pattern.match(k):
                    ret._params[k] = v
        for child in self._children.values():
            ret.update(child.collect_params(select=select))
        return ret

    def _collect_params_with_prefix(self, prefix: str = "") -> dict[str, Parameter]:
        if prefix:
            prefix += "."
        ret = {prefix + key: val for key, val in self._reg_params.items()}
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    def register_child(self, block: Block, name: str | None = None) -> None:
        """Add a child block (done automatically by attribute assignment)."""
        if name is None:
            name = str(len(self._children))
        self._children[name] = block

    def register_forward_pre_hook(self, hook) -> HookHandle:
        """``hook(block, inputs)`` runs before ``forward``."""
        key = id(hook) ^ len(self._forward_pre_hooks)
        self._forward_pre_hooks[key] = hook
        return HookHandle(self._forward_pre_hooks, key)

    def register_forward_hook(self, hook) -> HookHandle:
        """``hook(block, inputs, outputs)`` runs after ``forward``."""
        key = id(hook) ^ len(self._forward_hooks)
        self._forward_hooks[key] = hook
        return HookHandle(self._forward_hooks, key)

    def apply(self, fn) -> Block:
        """Call ``fn(block)`` on every child recursively, then on this block."""
        for child in self._children.values():
            child.apply(fn)
        fn(self)
        return self

    def initialize(self, init=None, ctx=None, verbose: bool = False,
                   force_reinit: bool = False) -> None:
        """Initialise all parameters (``init`` defaults to ``Uniform()``)."""
        self.collect_params().initialize(init or initializer.Uniform(), ctx, verbose,
                                         force_reinit)

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        """Hybridize every HybridBlock child (a plain Block itself stays eager)."""
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def cast(self, dtype) -> None:
        """Cast all parameters to ``dtype``."""
        for child in self._children.values():
            child.cast(dtype)
        for param in self.params.values():
            param.cast(dtype)

    def zero_grad(self) -> None:
        self.collect_params().zero_grad()

    def reset_ctx(self, ctx) -> None:
        self.collect_params().reset_ctx(ctx)

    def save_parameters(self, filename: str | os.PathLike, deduplicate: bool = False) -> None:
        """Save parameters by structural name (``0.weight``) in MXNet's ``.params`` format."""
        from lowering import serialization

        params = self._collect_params_with_prefix()
        if deduplicate:
            seen: dict[int, str] = {}
            params = {k: v for k, v in params.items()
                      if seen.setdefault(id(v), k) == k}
        arrays = {k: v._reduce().asnumpy() for k, v in params.items()}  # MXNet: copies' mean
        serialization.save(filename, arrays)

    @x64.scoped
    def load_parameters(self, filename: str | os.PathLike, ctx=None,
                        allow_missing: bool = False, ignore_extra: bool = False,
                        cast_dtype: bool = False, dtype_source: str = "current") -> None:
        """Load parameters saved by ``save_parameters`` (or by MXNet).

        Every name, shape and dtype is checked before anything is assigned, so a
        mismatched file leaves the block unchanged.
        """
        from lowering import serialization

        try:
            loaded = serialization.load(filename)
        except NDArrayFileError as err:
            raise MXNetError(f"cannot load parameters: {err}") from None
        if not isinstance(loaded, dict):
            if loaded:
                raise MXNetError(f"{filename} holds an unnamed list of arrays, not parameters")
            loaded = {}  # a parameter-free net's file: MXNet writes an empty dict unnamed
        params = self._collect_params_with_prefix()
        if not loaded and not params:
            return
        if not any("." in k for k in loaded):
            # Legacy files (``save_params``) hold names without the block prefix, which is
            # restored here, as MXNet does (so ``export`` files, with full names, are for
            # ``SymbolBlock.imports``, not for this method).
            self.collect_params().load_dict(loaded, ctx, allow_missing, ignore_extra,
                                            self.prefix, str(filename), cast_dtype,
                                            dtype_source)
            return
        assign_checked(params, loaded, str(filename), allow_missing, ignore_extra, cast_dtype,
                       dtype_source, ctx)

    save_params = save_parameters
    load_params = load_parameters

    def __call__(self, *args: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            hook(self, args)
        out = self.forward(*args)
        for hook in list(self._forward_hooks.values()):
            hook(self, args, out)
        return out

    def forward(self, *args: Any) -> Any:
        """Override to define the computation."""
        raise NotImplementedError

    def summary(self, *inputs: Any) -> None:
        """Print each child's output shape and parameter count for ``inputs``."""
        rows = []

        def hook(block, _, out):
            outs = out if isinstance(out, (list, tuple)) else [out]
            n = sum(int(np.prod(p.shape)) for p in block.params.values()
                    if p.shape is not None)
            rows.append((block.name, [tuple(o.shape) for o in outs], n))

        handles = [c.register_forward_hook(hook) for c in self._children.values()]
        try:
            self(*inputs)
        finally:
            for h in handles:
                h.detach()
        for name, shapes, n in rows:
            print(f"{name:<30} {str(shapes):<30} {n}")


def _flatten(args: Any, what: str = "input") -> tuple[list, Any]:
    """MXNet's ``_flatten``: the arrays/symbols/None in ``args`` and its format.

    The format is 0 for an array or symbol, -1 for None and a tuple of formats
    for a (nested) list or tuple. Any other value is refused, as MXNet does.
    """
    if isinstance(args, (NDArray, Symbol)) or args is None:
        return [args], (-1 if args is None else 0)
    if not isinstance(args, (list, tuple)):
        raise ValueError(f"When hybridized, the {what} of HybridBlock must be (nested) list of "
                         f"Symbol or NDArray, but got {args!r} of type {type(args).__name__}; "
                         "pass non-array options to the block's constructor instead")
    flat, fmts = [], []
    for a in args:
        f, fmt = _flatten(a, what)
        flat.extend(f)
        fmts.append(fmt)
    return flat, tuple(fmts)


def _regroup(flat: list, fmt: Any) -> Any:
    """Inverse of :func:`_flatten` for a top-level tuple format: a list of arguments."""
    it = iter(flat)

    def build(f):
        if isinstance(f, tuple):
            return [build(x) for x in f]
        return next(it)

    return [build(f) for f in fmt]


_DUMMY_KEY = None


def _dummy_key():
    global _DUMMY_KEY
    if _DUMMY_KEY is None:
        _DUMMY_KEY = jax.random.key(0)
    return _DUMMY_KEY


_INIT_LOCK = threading.RLock()
"""Serializes deferred initialization and graph building (first calls from several threads)."""


class _Cache:
    """What a hybridized block keeps for one call signature."""

    def __init__(self, graph: CompiledGraph, params: list[Parameter], aux: list[Parameter],
                 needs_rng: bool, out_structure: Any) -> None:
        self.graph = graph
        self.params = params
        self.aux = aux
        self.needs_rng = needs_rng
        self.out_structure = out_structure


def _input_kinds(flat: list) -> tuple[bool, bool]:
    has_nd = any(isinstance(a, NDArray) for a in flat)
    has_sym = any(isinstance(a, Symbol) for a in flat)
    return has_nd, has_sym


class HybridBlock(Block):
    """A Block that can be traced and compiled; implement ``hybrid_forward(F, x, ...)``.

    Once hybridized, every call with NDArrays runs a compiled graph. The graph is
    cached per call signature: the nesting of the arguments and which of them
    are None (and any Python state a block reports in ``_signature_extra``);
    input shapes, dtypes, the training flag and the device select the compiled
    program inside it. Arguments that are neither arrays nor None are refused
    while hybridized, as in MXNet.
    """

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        super().__init__(prefix=prefix, params=params)
        self._active = False
        self._flags: dict[str, Any] = {}
        self._caches: dict[Any, _Cache] = {}
        self._cache: _Cache | None = None

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        """Compile this block (and children) on the next call; clears compiled programs.

        ``static_alloc``/``static_shape`` are accepted for compatibility: XLA plans
        memory per compiled shape anyway.
        """
        self._active = active
        self._flags = kwargs
        self._clear_cache()
        super().hybridize(active, **kwargs)

    def _clear_cache(self) -> None:
        self._caches = {}
        self._cache = None

    @property
    def num_compilations(self) -> int:
        """How many times this block's current graphs have been compiled (0 before the first)."""
        return sum(c.graph.traces for c in self._caches.values())

    def cast(self, dtype) -> None:
        self._clear_cache()
        super().cast(dtype)

    def _signature_extra(self) -> Any:
        """Python state besides the arguments that changes the traced graph (default none)."""
        return None

    def __call__(self, *args: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            hook(self, args)
        if self._active:
            flat, fmt = _flatten(args)
            has_nd, has_sym = _input_kinds(flat)
            if has_nd and has_sym:
                raise ValueError(f"block {self.name}: mixed NDArray and Symbol inputs are not "
                                 "supported")
            if not has_nd and not has_sym:
                raise ValueError(f"block {self.name}: a hybridized block needs at least one "
                                 f"NDArray or Symbol input, got {args!r}")
            out = self._call_cached(args, flat, fmt) if has_nd else self.forward(*args)
        else:
            out = self.forward(*args)
        for hook in list(self._forward_hooks.values()):
            hook(self, args, out)
        return out

    def forward(self, x: Any, *args: Any) -> Any:
        """Runs ``hybrid_forward`` with ``F = nd`` (arrays) or ``F = sym`` (symbols)."""
        if isinstance(x, Symbol):
            params = {k: p.var() for k, p in self._reg_params.items()}
            with self.name_scope():
                return self.hybrid_forward(_sym_mod, x, *args, **params)
        ctx = x.context if isinstance(x, NDArray) else None  # MXNet: param.data(x.context)
        try:
            params = {k: p.data(ctx) for k, p in self._reg_params.items()}
        except DeferredInitializationError:
            with _INIT_LOCK:
                self._finish_deferred(x, *args)
            params = {k: p.data(ctx) for k, p in self._reg_params.items()}
        return self.hybrid_forward(_nd_mod, x, *args, **params)

    def _finish_deferred(self, *args: Any) -> None:
        """Infer and initialize this block's deferred parameters (under ``_INIT_LOCK``)."""
        pending = [p for p in self._reg_params.values() if p._var_nd is None]
        if not pending:
            return  # another thread finished them
        self._deferred_infer_shape(*args)
        for p in self._reg_params.values():
            p._finish_deferred_init()

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Override: the computation, written once for ``F = nd`` and ``F = sym``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- tracing
    def _trace(self, args: tuple):
        flat, fmt = _flatten(args)
        n_real = sum(a is not None for a in flat)
        if n_real == 0:
            raise ValueError(f"block {self.name}: all inputs are None")
        names = iter(["data"] if n_real == 1 else [f"data{i}" for i in range(n_real)])
        sym_inputs = [None if a is None else _sym_mod.Variable(next(names)) for a in flat]
        input_names = [s.name for s in sym_inputs if s is not None]
        with tracing(), _name.NameManager():
            out = self.forward(*_regroup(sym_inputs, fmt))
        if isinstance(out, Symbol):
            heads, out_structure = list(out._heads), (len(out._heads) if len(out._heads) > 1
                                                      else None)
        elif isinstance(out, (list, tuple)):
            heads = []
            out_structure = []
            for o in out:
                if isinstance(o, (list, tuple)):
                    for s in o:
                        heads.extend(_symbol_heads(self, s))
                    out_structure.append(len(o))
                else:
                    heads.extend(_symbol_heads(self, o))
                    out_structure.append(None)
        else:
            raise MXNetError(f"{self.name}: forward must return a Symbol or a list of Symbols "
                             f"when traced, got {type(out).__name__}")
        return heads, input_names, out_structure

    def _params_by_name(self) -> dict[str, Parameter]:
        return {p.name: p for p in self.collect_params().values()}

    def _infer_param_shapes(self, heads, input_names, flat_inputs) -> None:
        params = self._params_by_name()
        known = {n: jax.ShapeDtypeStruct(x.shape, x._aval().dtype)
                 for n, x in zip(input_names, flat_inputs)}
        for name, p in params.items():
            if p._var_nd is not None:
                known[name] = jax.ShapeDtypeStruct(p._var_nd.shape, p._var_nd._data.dtype)
        try:
            values = _graph.infer(heads, known)
        except _graph.GraphShapeError as err:
            shapes = ", ".join(f"{n}={tuple(x.shape)}" for n, x in zip(input_names, flat_inputs))
            raise MXNetError(f"block {self.name} with inputs {shapes}: {err}") from None
        for node in _graph.topo_order(heads):
            if node.is_variable and node.name in params and node.uid in values:
                p = params[node.name]
                if p._var_nd is None:
                    p.shape = tuple(values[node.uid][0].shape)

    def _deferred_infer_shape(self, *args: Any) -> None:
        heads, input_names, _ = self._trace(args)
        flat = [a for a in _flatten(args)[0] if isinstance(a, NDArray)]
        self._infer_param_shapes(heads, input_names, flat)

    def infer_shape(self, *args: Any) -> None:
        """Infer the shapes of deferred parameters from example inputs."""
        self._deferred_infer_shape(*args)

    def _build_cache(self, args: tuple) -> _Cache:
        heads, input_names, out_structure = self._trace(args)
        flat = [a for a in _flatten(args)[0] if isinstance(a, NDArray)]
        params = self._params_by_name()
        arg_vars, aux_vars = _graph.list_variables(heads)
        unknown = [v.name for v in arg_vars + aux_vars
                   if v.name not in params and v.name not in input_names]
        if unknown:
            raise MXNetError(f"block {self.name}: the traced graph uses variables {unknown} that "
                             "are neither inputs nor parameters of this block")
        if any(params[v.name]._var_nd is None for v in arg_vars + aux_vars if v.name in params):
            self._infer_param_shapes(heads, input_names, flat)
            for v in arg_vars + aux_vars:
                if v.name in params:
                    params[v.name]._finish_deferred_init()
        param_list = [params[v.name] for v in arg_vars if v.name in params]
        aux_list = [params[v.name] for v in aux_vars]
        compiled = CompiledGraph(heads, input_names, [p.name for p in param_list],
                                 [p.name for p in aux_list], name=f"block {self.name}")
        needs_rng = any(n.op is not None and n.op.needs_rng for n in _graph.topo_order(heads))
        return _Cache(compiled, param_list, aux_list, needs_rng, out_structure)

    def _cache_for(self, args: tuple, fmt: Any) -> _Cache:
        signature = (fmt, self._signature_extra())
        cache = self._caches.get(signature)
        if cache is None:
            with _INIT_LOCK:
                cache = self._caches.get(signature)
                if cache is None:
                    cache = self._caches[signature] = self._build_cache(args)
        if self._cache is not cache:
            self._cache = cache
        return cache

    @x64.scoped
    def _call_cached(self, args: tuple, flat: list, fmt: Any) -> Any:
        cache = self._cache_for(args, fmt)
        flat = [a for a in flat if a is not None]
        ctx = flat[0].context
        param_nds = [p._data_on(ctx) for p in cache.params]
        aux_nds = [p._data_on(ctx) for p in cache.aux]
        if autograd.is_recording():
            cap = _capture.active()
            if cap is not None:
                captured = self._capture_call(cap, cache, flat, param_nds, aux_nds, ctx)
                if captured is not None:
                    return self._regroup_outputs(cache, captured)
                cap.flush()
        inputs = [x._data for x in flat]
        params = [v._data for v in param_nds]
        aux = [v._data for v in aux_nds]
        training = autograd.is_training()
        key = _random.next_key() if cache.needs_rng else _dummy_key()
        recording = autograd.is_recording() and (
            any(v._entry is not None for v in param_nds) or any(x._entry is not None for x in flat)
        )
        try:
            if recording:
                pmask = tuple(v._entry is not None for v in param_nds)
                imask = tuple(x._entry is not None and np.issubdtype(x._aval().dtype, np.inexact)
                              for x in flat)
                outs, stats, vjp = cache.graph.forward_vjp(params, aux, inputs, key, training,
                                                           pmask, imask, device_key=ctx)
            else:
                outs, stats = cache.graph.forward(params, aux, inputs, key, training,
                                                  device_key=ctx)
        except MXNetError:
            raise
        except Exception as err:  # noqa: BLE001 - re-raised naming the block and shapes
            shapes = ", ".join(str(tuple(x.shape)) for x in flat)
            raise MXNetError(f"block {self.name} called with input shapes ({shapes}): {err}") \
                from None
        results = [NDArray(o, ctx=ctx) for o in outs]
        if recording:
            parents = [v._entry for v, m in zip(param_nds, pmask) if m] + \
                      [x._entry for x, m in zip(flat, imask) if m]
            commit = _aux_commit(cache.graph, aux_nds, stats) if stats else None
            node = autograd.TapeNode(vjp, parents,
                                     [jax.ShapeDtypeStruct(o.shape, o.dtype) for o in outs],
                                     self.name, commit, param_nds + flat)
            for i, r in enumerate(results):
                r._entry = (node, i)
        return self._regroup_outputs(cache, results)

    def _capture_call(self, cap, cache, flat: list, param_nds: list, aux_nds: list, ctx):
        """Append this recorded call to the capture ``cap`` (see ``hybrid.engine``); its
        pending outputs, or None when it cannot be captured (it then runs eagerly)."""
        refs = [cap.ref(v) for v in param_nds + aux_nds + flat]
        if any(r is None for r in refs):
            return None
        n_p, n_a = len(param_nds), len(aux_nds)
        training = autograd.is_training()
        pmask = tuple(v._entry is not None for v in param_nds)
        imask = tuple(x._entry is not None and np.issubdtype(x._aval().dtype, np.inexact)
                      for x in flat)
        recorded = any(pmask) or any(x._entry is not None for x in flat)
        spec = [(tuple(a.shape), a.dtype) for a in (x._aval() for x in param_nds + aux_nds + flat)]
        try:
            out_avals, has_stats = cache.graph.abstract_call(
                spec[:n_p], spec[n_p:n_p + n_a], spec[n_p + n_a:], _dummy_key(), training)
        except Exception:  # noqa: BLE001 - the eager call reports it naming the block
            return None
        if cache.needs_rng:
            base, counter = _random.next_key_parts()
            rng_refs = (cap.leaf(base), cap.leaf(counter))
        else:
            rng_refs = (cap.leaf(_dummy_key()),)
        e = len(cap.entries)
        entry = BlockEntry(e, cache.graph, training, pmask if recorded else None, imask,
                           refs[:n_p], refs[n_p:n_p + n_a], refs[n_p + n_a:], rng_refs)
        cap.add(entry)
        record = None
        if recorded:
            parents = [v._entry for v, m in zip(param_nds, pmask) if m] + \
                      [x._entry for x, m in zip(flat, imask) if m]
            factory = None
            if has_stats:
                def factory(stats, graph=cache.graph, holders=aux_nds):
                    return _aux_commit(graph, holders, stats)

            record = (parents, self.name, param_nds + flat, (), aux_nds if has_stats else None,
                      factory)
        return _steps.captured_outputs(cap, e, out_avals, ctx, NDArray._blank, record)

    @staticmethod
    def _regroup_outputs(cache, results: list):
        structure = cache.out_structure
        if structure is None:
            return results[0]
        if isinstance(structure, int):
            return results
        out, i = [], 0
        for s in structure:
            if s is None:
                out.append(results[i])
                i += 1
            else:
                out.append(results[i:i + s])
                i += s
        return out


    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True):
        """Write ``path-symbol.json`` and ``path-%04d.params`` (``arg:``/``aux:`` keys) as
        MXNet does; the block must have been hybridized and called once."""
        from lowering import serialization, symbol_json

        if self._cache is None:
            raise RuntimeError("Please first call block.hybridize() and then run forward with "
                               "this block at least once before calling export.")
        heads = self._cache.graph.heads
        sym_file = f"{path}-symbol.json"
        params_file = f"{path}-{epoch:04d}.params"
        arrays = {}
        for p in self._cache.params:
            arrays[f"arg:{p.name}"] = p._check_initialized().asnumpy()
        for p in self._cache.aux:
            arrays[f"aux:{p.name}"] = p._check_initialized().asnumpy()
        serialization.write_atomic(sym_file, symbol_json.to_json(heads).encode("utf-8"))
        serialization.save(params_file, arrays)
        return sym_file, params_file

    def export_stablehlo(self, path: str | os.PathLike, example_inputs: Any = None,
                         batch_dim_symbolic: bool = True) -> str:
        """Write a self-contained StableHLO artifact of this block's inference (predict
        mode) function to ``path``; load it with ``lowering.export.load_stablehlo``.

        Parameters are baked in as constants; the artifact takes the flattened inputs
        and returns the output (a tuple for several). Input shapes and dtypes come from
        ``example_inputs`` (an NDArray or a list), else from the block's last
        hybridized call; with ``batch_dim_symbolic`` the first dimension is symbolic.
        """
        from lowering import export as _export

        cache = self._cache
        if example_inputs is not None:
            args = tuple(example_inputs) if isinstance(example_inputs, (list, tuple)) \
                else (example_inputs,)
            args = tuple(a if isinstance(a, NDArray) else _nd_mod.array(a) for a in args)
            cache = cache or self._build_cache(args)
            specs = [(x.shape, x._aval().dtype) for x in _flatten(args)[0] if x is not None]
        elif cache is None:
            raise RuntimeError("export_stablehlo needs example_inputs, or a hybridized block "
                               "that has been called at least once")
        else:
            specs = list(cache.graph.input_specs[-1])
        exported = _export.export_graph(
            cache.graph.heads, cache.graph.input_names,
            {p.name: p._check_initialized()._data for p in cache.params},
            {p.name: p._check_initialized()._data for p in cache.aux},
            specs, batch_dim_symbolic)
        _export.save_stablehlo(path, exported)
        return os.fspath(path)


def _symbol_heads(block: HybridBlock, out: Any) -> list:
    if not isinstance(out, Symbol):
        raise MXNetError(f"{block.name}: forward must return Symbols when traced, got "
                         f"{type(out).__name__}")
    return list(out._heads)


def _aux_commit(graph: CompiledGraph, holders: list, stats: dict):
    """The tape's commit of one recorded call's aux updates (run by backward)."""

    def commit() -> None:
        new = graph.commit_aux([h._data for h in holders], stats)
        for h, v in zip(holders, new):
            h._set_data(v)

    return commit


__all__ = ["Block", "HybridBlock", "HookHandle"]
