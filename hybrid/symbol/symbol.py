"""``Symbol``: a handle on outputs of a graph of registry ops (MXNet's ``mx.sym.Symbol``).

Symbols are built with ``sym.Variable`` and the ``sym.*`` op functions (or by
tracing a HybridBlock), inspected with ``list_arguments``/``infer_shape``,
and saved as MXNet's symbol JSON. Note MXNet's rule: Symbol ``a + b`` is
``elemwise_add`` and needs equal shapes; use ``broadcast_add`` to broadcast.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import jax
import numpy as np

from lowering import graph, symbol_json
from lowering.registry import OpDef
from lowering.registry import get as get_op

from .. import name as _name
from ..base import MXNetError


class Symbol:
    """One or more outputs of a graph."""

    __slots__ = ("_heads",)
    __array_priority__ = 1001.0

    def __init__(self, heads: list[graph.Entry]) -> None:
        self._heads = list(heads)

    # ------------------------------------------------------------ structure
    @property
    def name(self) -> str | None:
        """The node name of a single-output symbol."""
        return self._heads[0].node.name if len(self._heads) == 1 else None

    def _nodes(self) -> list[graph.Node]:
        return graph.topo_order(self._heads)

    def list_arguments(self) -> list[str]:
        """Names of the input variables (not auxiliary states), in graph order."""
        args, _ = graph.list_variables(self._heads)
        return [n.name for n in args]

    def list_auxiliary_states(self) -> list[str]:
        """Names of the auxiliary-state variables (e.g. BatchNorm's running stats)."""
        _, aux = graph.list_variables(self._heads)
        return [n.name for n in aux]

    def list_inputs(self) -> list[str]:
        """All variable names (arguments and auxiliary states)."""
        return [n.name for n in self._nodes() if n.is_variable]

    def list_outputs(self) -> list[str]:
        """Output names: ``<node>_output`` (``_output<i>`` for multi-output ops)."""
        names = []
        for h in self._heads:
            if h.node.is_variable:
                names.append(h.node.name)
            elif h.node.num_outputs == 1:
                names.append(f"{h.node.name}_output")
            else:
                names.append(f"{h.node.name}_output{h.index}")
        return names

    def get_internals(self) -> Symbol:
        """A symbol whose outputs are every output of every node."""
        heads = []
        for node in self._nodes():
            heads.extend(graph.Entry(node, i) for i in range(node.num_outputs))
        return Symbol(heads)

    def get_children(self) -> Symbol | None:
        """The inputs of this symbol's node."""
        node = self._heads[0].node
        return Symbol(list(node.inputs)) if node.inputs else None

    def __len__(self) -> int:
        return len(self._heads)

    def __iter__(self):
        return (Symbol([h]) for h in self._heads)

    def __getitem__(self, index: int | str) -> Symbol:
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise ValueError(f"no output named {index!r}; outputs are {names}")
            return Symbol([self._heads[names.index(index)]])
        if isinstance(index, numbers.Integral) and len(self._heads) > 1:
            return Symbol([self._heads[index]])
        if isinstance(index, numbers.Integral) and index == 0:
            return self
        raise IndexError(f"symbol has {len(self._heads)} output(s); cannot index {index!r}")

    def attr(self, key: str) -> str | None:
        node = self._heads[0].node
        return node.annotations.get(key)

    def list_attr(self) -> dict[str, str]:
        return dict(self._heads[0].node.annotations)

    # ------------------------------------------------------------ inference
    def infer_shape(self, *args: Any, **kwargs: Any):
        """``(arg_shapes, out_shapes, aux_shapes)`` given some argument shapes."""
        return self._infer(args, kwargs, "shape")

    def infer_type(self, *args: Any, **kwargs: Any):
        """``(arg_types, out_types, aux_types)`` given some argument dtypes."""
        return self._infer(args, kwargs, "dtype")

    def _infer(self, args, kwargs, what):
        arg_names = self.list_arguments()
        given = dict(zip(arg_names, args))
        given.update(kwargs)
        known = {}
        for k, v in given.items():
            if v is None:
                continue
            if what == "shape":
                known[k] = jax.ShapeDtypeStruct(tuple(v), np.float32)
            else:
                known[k] = jax.ShapeDtypeStruct((), np.dtype(v))
        try:
            if what == "dtype":
                return self._infer_types(known)
            values = graph.infer(self._heads, known)
        except graph.GraphShapeError as err:
            raise MXNetError(str(err)) from None
        by_name = {n.name: values.get(n.uid) for n in self._nodes() if n.is_variable}

        def pick(v):
            return None if v is None else tuple(v[0].shape)

        return (
            [pick(by_name[n]) for n in arg_names],
            [tuple(values[h.node.uid][h.index].shape) for h in self._heads],
            [pick(by_name[n]) for n in self.list_auxiliary_states()],
        )

    def _infer_types(self, known):
        # dtypes flow through ops independent of shapes; use size-1 stand-ins.
        arg_names = self.list_arguments()
        dtypes = {k: v.dtype for k, v in known.items()}
        default = next(iter(dtypes.values()), np.dtype(np.float32))
        types = [dtypes.get(n, default) for n in arg_names]
        return ([np.dtype(t).type for t in types], [np.dtype(default).type] * len(self._heads),
                [np.dtype(default).type for _ in self.list_auxiliary_states()])

    # ------------------------------------------------------------------ io
    def tojson(self) -> str:
        """MXNet's symbol JSON for this graph."""
        return symbol_json.to_json(self._heads)

    def save(self, fname: str | os.PathLike, remove_amp_cast: bool = True) -> None:
        """Write the symbol JSON to ``fname`` atomically (see ``lowering.serialization``)."""
        from lowering.serialization import write_atomic

        write_atomic(fname, self.tojson().encode("utf-8"))

    def __repr__(self) -> str:
        if len(self._heads) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(self.list_outputs())}]>"

    # ------------------------------------------------------------ operators
    def _binary(self, other, array_op, scalar_op, reverse=False):
        if isinstance(other, Symbol):
            lhs, rhs = (other, self) if reverse else (self, other)
            return _call(array_op, lhs, rhs)
        if isinstance(other, (numbers.Number, np.generic)):
            return _call(scalar_op, self, scalar=other)
        return NotImplemented

    def __add__(self, o): return self._binary(o, "elemwise_add", "_plus_scalar")
    def __radd__(self, o): return self._binary(o, "elemwise_add", "_plus_scalar", True)
    def __sub__(self, o): return self._binary(o, "elemwise_sub", "_minus_scalar")
    def __rsub__(self, o): return self._binary(o, "elemwise_sub", "_rminus_scalar", True)
    def __mul__(self, o): return self._binary(o, "elemwise_mul", "_mul_scalar")
    def __rmul__(self, o): return self._binary(o, "elemwise_mul", "_mul_scalar", True)
    def __truediv__(self, o): return self._binary(o, "elemwise_div", "_div_scalar")
    def __rtruediv__(self, o): return self._binary(o, "elemwise_div", "_rdiv_scalar", True)
    def __mod__(self, o): return self._binary(o, "_mod", "_mod_scalar")
    def __rmod__(self, o): return self._binary(o, "_mod", "_rmod_scalar", True)
    def __pow__(self, o): return self._binary(o, "_power", "_power_scalar")
    def __rpow__(self, o): return self._binary(o, "_power", "_rpower_scalar", True)
    def __eq__(self, o): return self._binary(o, "_equal", "_equal_scalar")
    def __ne__(self, o): return self._binary(o, "_not_equal", "_not_equal_scalar")
    def __gt__(self, o): return self._binary(o, "_greater", "_greater_scalar")
    def __ge__(self, o): return self._binary(o, "_greater_equal", "_greater_equal_scalar")
    def __lt__(self, o): return self._binary(o, "_lesser", "_lesser_scalar")
    def __le__(self, o): return self._binary(o, "_lesser_equal", "_lesser_equal_scalar")
    __div__ = __truediv__
    __hash__ = object.__hash__

    def __neg__(self): return _call("negative", self)
    def __abs__(self): return _call("abs", self)

    def reshape(self, *shape, **kwargs):
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        if shape:
            kwargs["shape"] = shape
        return _call("reshape", self, **kwargs)

    def astype(self, dtype):
        return _call("cast", self, dtype=np.dtype(dtype).name)

    @property
    def T(self):
        return _call("transpose", self)


def _call(op_name: str, *inputs, **attrs) -> Symbol:
    return apply_op(get_op(op_name), list(inputs), attrs)


def _make_method(name: str):
    def method(self, *args, **kwargs):
        from ..op_functions import make_function

        return make_function(get_op(name), name, symbolic=True)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _method in ("sum", "mean", "max", "min", "prod", "norm", "argmax", "argmin", "exp", "log",
                "sqrt", "square", "abs", "relu", "sigmoid", "tanh", "softmax", "log_softmax",
                "transpose", "expand_dims", "squeeze", "flatten", "clip", "take", "pick",
                "one_hot", "split", "slice", "slice_axis", "tile", "repeat", "flip",
                "broadcast_to", "broadcast_like", "topk", "sort", "argsort", "swapaxes",
                "zeros_like", "ones_like", "reshape_like", "slice_like", "sign", "round",
                "floor", "ceil"):
    setattr(Symbol, _method, _make_method(_method))


def apply_op(op: OpDef, inputs: list, raw_attrs: dict, name: str | None = None,
             attr: dict | None = None) -> Symbol:
    """A new node applying ``op`` to symbol ``inputs``; missing inputs become variables.

    Scalars among the inputs are not allowed (use the ``_*_scalar`` ops).
    """
    hint = op.name.lower()
    node_name = _name.current().get(name, hint)
    parsed = op.parse_attrs({k: v for k, v in raw_attrs.items() if not k.startswith("__")})
    names = op.input_names(parsed)
    if op.variadic:
        given = list(inputs)
    else:
        by_name = dict(zip(op.inputs, inputs))
        given = [by_name.get(n) for n in names]
    entries = []
    for slot, value in zip(names, given):
        if value is None:
            value = Variable(f"{node_name}_{slot}")
        if not isinstance(value, Symbol):
            raise MXNetError(
                f"operator {op.name} ({node_name}): input {slot} must be a Symbol, got "
                f"{type(value).__name__}"
            )
        if len(value._heads) != 1:
            raise MXNetError(f"operator {op.name}: input {slot} is a group of "
                             f"{len(value._heads)} outputs")
        entries.append(value._heads[0])
    annotations = {k: v for k, v in (attr or {}).items()}
    node = graph.apply(op, entries, {**raw_attrs, **annotations}, node_name,
                       given=[k for k in raw_attrs if k in op.attrs])
    # Ops that update inputs in place (optimizer states) show only their result, as in
    # MXNet; inside a compiled graph the updated states are not written back.
    return Symbol([graph.Entry(node, i) for i in range(node.num_outputs)])


def Variable(name: str, attr: dict | None = None, shape=None, lr_mult=None, wd_mult=None,
             dtype=None, init=None, stype=None, **kwargs) -> Symbol:
    """A named input variable, with optional shape/dtype/lr_mult/wd_mult/init annotations."""
    annotations: dict[str, str] = dict(attr or {})
    if shape is not None:
        annotations["__shape__"] = str(tuple(shape))
    if dtype is not None:
        from lowering.serialization import dtype_to_type_flag

        annotations["__dtype__"] = str(dtype_to_type_flag(np.dtype(dtype)))
    if lr_mult is not None:
        annotations["__lr_mult__"] = str(lr_mult)
    if wd_mult is not None:
        annotations["__wd_mult__"] = str(wd_mult)
    if init is not None:
        annotations["__init__"] = init if isinstance(init, str) else init.dumps()
    for k, v in kwargs.items():
        if k.startswith("__") and k.endswith("__"):
            annotations[k] = str(v)
    return Symbol([graph.Entry(graph.variable(name, **annotations), 0)])


var = Variable


def Group(symbols: list[Symbol]) -> Symbol:
    """One symbol with the outputs of all ``symbols``."""
    heads = []
    for s in symbols:
        heads.extend(s._heads)
    return Symbol(heads)


def load_json(json_str: str) -> Symbol:
    """A symbol from MXNet symbol JSON."""
    try:
        return Symbol(symbol_json.from_json(json_str))
    except symbol_json.SymbolJSONError as err:
        raise MXNetError(f"cannot load symbol JSON: {err}") from None


def load(fname: str | os.PathLike) -> Symbol:
    """A symbol from a ``-symbol.json`` file."""
    with open(fname, encoding="utf-8") as f:
        return load_json(f.read())
