"""``mx.sym``: Symbol, Variable, Group, JSON load/save, and every registry op as a function."""

from __future__ import annotations

from lowering import registry as _registry

from ..op_functions import make_function as _make_function
from .symbol import Group, Symbol, Variable, load, load_json, var

_NAMESPACE = globals()
for _name, _op in _registry.names().items():
    _NAMESPACE.setdefault(_name, _make_function(_op, _name, symbolic=True))


class _Prefixed:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def __getattr__(self, name: str):
        for candidate in (f"{self._prefix}{name}", name):
            try:
                op = _registry.get(candidate)
            except ValueError:
                continue
            fn = _make_function(op, name, symbolic=True)
            setattr(self, name, fn)
            return fn
        raise AttributeError(name)


_internal = _Prefixed("")
contrib = _Prefixed("_contrib_")
linalg = _Prefixed("_linalg_")

__all__ = ["Symbol", "Variable", "var", "Group", "load", "load_json"]
