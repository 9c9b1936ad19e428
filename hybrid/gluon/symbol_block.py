"""``SymbolBlock``: a HybridBlock built from Symbols (MXNet 1.9's ``gluon.SymbolBlock``).

``SymbolBlock(outputs, inputs, params=None)`` wraps an existing graph: ``inputs``
are Symbol variables fed by the call's arguments (in order); every other
variable of ``outputs`` becomes a Parameter named exactly as the variable (no
prefix is added), auxiliary states (BatchNorm's running statistics) with
``grad_req='null'``. Shapes come from the variables' ``__shape__`` attributes
where known and are otherwise inferred on the first call. ``imports`` loads a
model written by ``HybridBlock.export`` (or MXNet's ``save_checkpoint``).

Called on NDArrays without ``hybridize()``, the graph runs op by op through the
eager ``nd`` ops (each one recorded for autograd); hybridized, it goes through
HybridBlock's compiled-graph machinery, since called on Symbols ``forward``
returns the stored graph with its input variables replaced.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lowering import graph as _graph
from lowering.attrs import SHAPE

from .. import symbol as _sym_mod
from ..base import MXNetError
from ..ndarray.dispatch import invoke
from ..ndarray.ndarray import NDArray
from ..symbol.symbol import Symbol
from .block import HybridBlock, _flatten
from .parameter import ParameterDict


def _common_prefix(names: Sequence[str]) -> str:
    """The longest prefix shared by all ``names`` ('' for none)."""
    if not names:
        return ""
    prefix = names[0]
    for name in names[1:]:
        i = 0
        while i < min(len(prefix), len(name)) and prefix[i] == name[i]:
            i += 1
        prefix = prefix[:i]
    return prefix


def _declared_shape(node: _graph.Node) -> tuple[int, ...] | None:
    text = node.annotations.get("__shape__")
    if text is None:
        return None
    try:
        return tuple(int(d) for d in SHAPE.parse(text))
    except (ValueError, TypeError):
        return None


def _declared_dtype(node: _graph.Node) -> Any:
    flag = node.annotations.get("__dtype__")
    if flag is None:
        return np.float32
    from lowering.serialization import type_flag_to_dtype

    try:
        return type_flag_to_dtype(int(flag))
    except (ValueError, KeyError):
        return np.dtype(flag)


def _compose(heads: list[_graph.Entry], replace: dict[int, _graph.Entry]) -> list[_graph.Entry]:
    """``heads`` with the variables whose uid is in ``replace`` substituted (nodes that
    depend on them are copied; everything else is shared)."""
    new: dict[int, _graph.Node] = {}

    def entry(e: _graph.Entry) -> _graph.Entry:
        if e.node.uid in replace:
            return replace[e.node.uid]
        return _graph.Entry(new[e.node.uid], e.index)

    for node in _graph.topo_order(heads):
        if node.uid in replace or node.is_variable:
            new[node.uid] = node
            continue
        inputs = [entry(e) for e in node.inputs]
        if all(a.node is b.node for a, b in zip(inputs, node.inputs)):
            new[node.uid] = node
        else:
            new[node.uid] = _graph.Node(
                op=node.op, name=node.name, attrs=node.attrs, inputs=inputs,
                annotations=dict(node.annotations), given_attrs=node.given_attrs,
                versions=node.versions, json_outputs=node.json_outputs)
    return [entry(h) for h in heads]


class SymbolBlock(HybridBlock):
    """Construct a block from Symbols, e.g. to use a pre-trained or exported model.

    Args:
        outputs: the desired output(s): a Symbol (possibly a group) or a list of them.
        inputs: the variable(s) among the outputs' arguments fed by the call's arguments.
        params: a ParameterDict holding (some of) the other variables, to share
            parameters with another block; missing ones are created.

    Example (MXNet)::

        internals = net(mx.sym.var('data')).get_internals()
        feat = gluon.SymbolBlock([internals['dense0_relu_fwd_output']], mx.sym.var('data'),
                                 params=net.collect_params())
    """

    def __init__(self, outputs: Symbol | Sequence[Symbol], inputs: Symbol | Sequence[Symbol],
                 params: ParameterDict | None = None) -> None:
        super().__init__(prefix=None, params=None)
        self._prefix = ""
        self._params = ParameterDict("", params)
        if isinstance(inputs, Symbol):
            inputs = list(inputs) if len(inputs) > 1 else [inputs]
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        if isinstance(outputs, Symbol):
            self._out_format: Any = None if len(outputs) == 1 else len(outputs)
            heads = list(outputs._heads)
        else:
            self._out_format = len(outputs)
            heads = [h for o in outputs for h in o._heads]
        variables = {n.name: n for n in _graph.topo_order(heads) if n.is_variable}
        self._input_names: list[str] = []
        for s in inputs:
            if not isinstance(s, Symbol) or len(s) != 1 or not s._heads[0].node.is_variable:
                raise MXNetError(f"SymbolBlock: inputs must be Symbol variables, got {s!r}")
            if s.name not in variables:
                raise MXNetError(f"SymbolBlock: input {s.name!r} is not a variable of the "
                                 f"outputs; their variables are {sorted(variables)}")
            self._input_names.append(s.name)
        arg_vars, aux_vars = _graph.list_variables(heads)
        for node, aux in [(n, False) for n in arg_vars] + [(n, True) for n in aux_vars]:
            if node.name in self._input_names:
                continue
            kwargs: dict[str, Any] = {"allow_deferred_init": True,
                                      "dtype": _declared_dtype(node)}
            shape = _declared_shape(node)
            if shape is not None:
                kwargs["shape"] = shape
            if aux:
                kwargs["grad_req"] = "null"
            self.params.get(node.name, **kwargs)
        self._heads = heads
        self._variables = variables
        strip = len(_common_prefix(list(self._params.keys())))
        self._reg_params = {k[strip:]: v for k, v in self._params.items()}

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(\n  {self._input_names} -> "
                f"{Symbol(self._heads).list_outputs()}\n)")

    @staticmethod
    def imports(symbol_file: str | os.PathLike, input_names: str | Sequence[str],
                param_file: str | os.PathLike | None = None, ctx: Any = None,
                allow_missing: bool = False, ignore_extra: bool = False) -> SymbolBlock:
        """Load a model saved by ``HybridBlock.export`` (or MXNet's ``save_checkpoint``).

        ``symbol_file`` is the ``-symbol.json``, ``input_names`` the variable(s)
        fed by the call's arguments, ``param_file`` the ``.params`` file (keys
        ``arg:name``/``aux:name``; dtypes are taken from the file). Without
        ``param_file`` the parameters must be initialised before the first call.
        """
        try:
            sym = _sym_mod.load(symbol_file)
        except MXNetError as err:
            raise MXNetError(f"cannot import symbol file '{symbol_file}': {err}") from None
        if isinstance(input_names, str):
            input_names = [input_names]
        arguments = sym.list_arguments()
        missing = [n for n in input_names if n not in arguments]
        if missing:
            raise MXNetError(f"input(s) {missing} are not arguments of the symbol in "
                             f"'{symbol_file}', whose arguments are {arguments}")
        inputs = [_sym_mod.var(n) for n in input_names]
        block = SymbolBlock(sym, inputs)
        if param_file is not None:
            block.collect_params().load(os.fspath(param_file), ctx, allow_missing,
                                        ignore_extra, cast_dtype=True, dtype_source="saved")
        return block

    def forward(self, x: Any, *args: Any) -> Any:
        """Symbols in: the stored graph on them. NDArrays in: the graph run op by op."""
        flat, _ = _flatten((x, *args))
        if len(flat) != len(self._input_names):
            raise MXNetError(f"SymbolBlock {self.name} takes {len(self._input_names)} input(s) "
                             f"{self._input_names}, got {len(flat)}")
        if isinstance(flat[0], Symbol):
            replace = {}
            for name, s in zip(self._input_names, flat):
                if not isinstance(s, Symbol) or len(s) != 1:
                    raise MXNetError(f"SymbolBlock {self.name}: input {name} must be a "
                                     "single-output Symbol")
                replace[self._variables[name].uid] = s._heads[0]
            out = Symbol(_compose(self._heads, replace))
            return out if self._out_format is None else list(out)
        if not all(isinstance(a, NDArray) for a in flat):
            raise MXNetError(f"SymbolBlock {self.name} takes Symbols or NDArrays, got "
                             f"{[type(a).__name__ for a in flat]}")
        return self._run_eager(flat)

    def _run_eager(self, flat: list) -> Any:
        params = self._params_by_name()
        if any(p._var_nd is None and p._deferred_init is not None for p in params.values()):
            self._deferred_infer_shape(*flat)
            for p in params.values():
                p._finish_deferred_init()
        ctx = flat[0].context
        feeds = dict(zip(self._input_names, flat))
        values: dict[int, tuple] = {}
        for node in _graph.topo_order(self._heads):
            if node.is_variable:
                value = feeds.get(node.name)
                values[node.uid] = (value if value is not None else params[node.name].data(),)
                continue
            out = invoke(node.op, [values[e.node.uid][e.index] for e in node.inputs],
                         node.attrs, ctx=ctx)
            values[node.uid] = tuple(out) if isinstance(out, list) else (out,)
        results = [values[h.node.uid][h.index] for h in self._heads]
        return results[0] if self._out_format is None else results

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


__all__ = ["SymbolBlock"]
