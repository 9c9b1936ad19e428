"""The ``nd.*`` and ``sym.*`` functions, generated from the lowering registry.

One generated function serves both modes: called on NDArrays it runs the op
now; called with any Symbol input (or from the ``sym`` namespace) it adds a
node to the graph being built. Arguments follow MXNet's generated signatures:
array inputs first (positionally or by input name), then attributes
(positionally in declaration order, or by keyword), plus ``name=`` for symbols
and ``out=`` for arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lowering.attrs import AttrError
from lowering.registry import OpDef, OpError

from .base import MXNetError

_ARRAY_TYPES: tuple = ()


def _array_types() -> tuple:
    """``(NDArray, Symbol)``, bound on first use (both modules import this one)."""
    global _ARRAY_TYPES
    if not _ARRAY_TYPES:
        from .ndarray.ndarray import NDArray
        from .symbol.symbol import Symbol

        _ARRAY_TYPES = (NDArray, Symbol)
    return _ARRAY_TYPES


def _is_array(x: Any) -> bool:
    return isinstance(x, _ARRAY_TYPES or _array_types())


def split_arguments(op: OpDef, args: tuple, kwargs: dict) -> tuple[list, dict]:
    """``(inputs, raw attrs)`` from a call's arguments (see the module docstring)."""
    if op.variadic:
        inputs = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) \
            else list(args)
        attrs = dict(kwargs)
        attrs.setdefault("num_args", len(inputs))
        return inputs, attrs
    input_slots = [n for n in op.inputs]
    inputs: dict[str, Any] = {}
    attr_names = [a for a in op.attrs]
    attrs: dict[str, Any] = {}
    positional = list(args)
    slot = 0
    while positional and slot < len(input_slots) and (
        _is_array(positional[0]) or positional[0] is None or isinstance(positional[0], np.ndarray)
    ):
        inputs[input_slots[slot]] = positional.pop(0)
        slot += 1
    free_attrs = [a for a in attr_names if a not in kwargs]
    if len(positional) > len(free_attrs):
        raise TypeError(
            f"{op.name}: too many positional arguments; inputs are {list(op.inputs)} and "
            f"attributes {attr_names}"
        )
    for name, value in zip(free_attrs, positional):
        attrs[name] = value
    for key, value in kwargs.items():
        if key in input_slots:
            inputs[key] = value
        else:
            attrs[key] = value
    return [inputs.get(n) for n in input_slots], attrs


def make_function(op: OpDef, public_name: str, symbolic: bool) -> Callable[..., Any]:
    """The ``nd`` (``symbolic=False``) or ``sym`` function for ``op``."""

    def function(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None)
        name = kwargs.pop("name", None)
        ctx = kwargs.pop("ctx", None)
        attr_dict = kwargs.pop("attr", None)
        inputs, raw = split_arguments(op, args, kwargs)
        raw = {k: v for k, v in raw.items() if v is not None or _accepts_none(op, k)}
        symbol_type = (_ARRAY_TYPES or _array_types())[1]
        if symbolic or any(isinstance(x, symbol_type) for x in inputs):
            from .symbol.symbol import apply_op

            try:
                return apply_op(op, inputs, raw, name=name, attr=attr_dict)
            except (OpError, AttrError) as err:  # bad attributes: MXNet's kind of error
                raise MXNetError(str(err)) from None
        return _eager(op, inputs, raw, out, ctx)

    function.__name__ = public_name
    function.__qualname__ = public_name
    function.__doc__ = _docstring(op)
    return function


def _accepts_none(op: OpDef, key: str) -> bool:
    spec = op.attrs.get(key)
    return spec is not None and (spec.kind.name.endswith("?") or spec.kind.name == "axis")


_EAGER_API: tuple = ()


def _eager_api() -> tuple:
    """What an eager call needs, bound on first use (these modules import this one)."""
    global _EAGER_API
    from .context import current_context
    from .ndarray.dispatch import invoke
    from .ndarray.ndarray import NDArray, array

    _EAGER_API = (invoke, NDArray, array, current_context)
    return _EAGER_API


def _eager(op: OpDef, inputs: list, raw: dict, out: Any, ctx: Any) -> Any:
    invoke, NDArray, array, current_context = _EAGER_API or _eager_api()
    try:
        attrs = op.parse_attrs(raw)
    except ValueError as err:
        raise MXNetError(str(err)) from None
    names = op.input_names(attrs)
    if op.variadic:
        arrays = inputs
    else:
        by_name = dict(zip(op.inputs, inputs))
        missing = [n for n in names if by_name.get(n) is None]
        if missing:
            raise MXNetError(f"operator {op.name} needs input(s) {missing}")
        arrays = [by_name[n] for n in names]
    arrays = [x if isinstance(x, NDArray) else array(x) for x in arrays]
    if op.check_values is not None:  # eager only: the values are concrete here
        try:
            op.check_values(attrs, [x._data for x in arrays])
        except OpError as err:
            raise MXNetError(str(err)) from None
    if ctx is None and not arrays:
        ctx = current_context()
    return invoke(op, arrays, attrs, ctx=ctx, out=out)


def _docstring(op: OpDef) -> str:
    from lowering.attrs import REQUIRED

    attrs = ", ".join(
        f"{k}={'<required>' if v.default is REQUIRED else repr(v.default)}"
        for k, v in op.attrs.items()
    )
    inputs = ", ".join(i.lstrip("*") for i in op.inputs)
    return f"{op.name}({inputs}; {attrs})\n\n{op.doc}"
