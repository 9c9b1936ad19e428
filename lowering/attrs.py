"""Operator attribute types: parsing MXNet's string form and writing it back.

MXNet keeps every operator attribute as a string in its symbol JSON
(``"(3, 3)"``, ``"True"``, ``"0.001"``, ``"None"``). Each attribute of a
registered op has one of the kinds below; ``parse`` turns a Python value *or*
its MXNet string into the canonical Python value (tuples, not lists, so attrs
are hashable), and ``format`` writes the canonical value the way MXNet does.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

REQUIRED = object()
"""Default marker for an attribute the caller must give."""


class AttrError(ValueError):
    """An attribute value that cannot be read as its declared kind."""


def _literal(text: str) -> Any:
    text = text.strip()
    if text in ("None", "none", ""):
        return None
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        # MXNet writes shapes such as "(2,)" and "[1, 2]" but also "(2L, 3L)"
        # from Python 2 exports.
        try:
            return ast.literal_eval(text.replace("L", ""))
        except (ValueError, SyntaxError) as err:
            raise AttrError(f"cannot read {text!r}") from err


def _as_int(value: Any) -> int:
    if isinstance(value, str):
        value = _literal(value)
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise AttrError(f"expected an integer, got {value!r}")


def _as_float(value: Any) -> float:
    if isinstance(value, str):
        value = _literal(value)
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return float(value)
    raise AttrError(f"expected a number, got {value!r}")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        value = _literal(value)
    if isinstance(value, (bool, int, np.integer, np.bool_)):
        return bool(value)
    raise AttrError(f"expected a boolean, got {value!r}")


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise AttrError(f"expected a string, got {value!r}")
    return value


def _as_tuple(value: Any, item: Callable[[Any], Any]) -> tuple:
    if isinstance(value, str):
        value = _literal(value)
    if value is None:
        return ()
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (item(value),)
    if isinstance(value, (list, tuple)):
        return tuple(item(v) for v in value)
    raise AttrError(f"expected a tuple, got {value!r}")


def _optional(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("None", "")):
            return None
        return conv(value)

    return parse


def _int_or_none(value: Any) -> int | None:
    return None if value is None else _as_int(value)


def _as_dtype(value: Any) -> str:
    if isinstance(value, str):
        value = value.strip()
        if value in ("None",):
            return "None"
        return np.dtype(value).name
    return np.dtype(value).name


def _format_value(value: Any) -> str:
    if isinstance(value, tuple):
        if len(value) == 1:
            return f"({_format_value(value[0])},)"
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Kind:
    """One attribute type: how to parse it and how MXNet prints it."""

    name: str
    parse: Callable[[Any], Any]
    format: Callable[[Any], str] = _format_value


INT = Kind("int", _as_int)
FLOAT = Kind("float", _as_float)
BOOL = Kind("bool", _as_bool)
STR = Kind("str", _as_str)
SHAPE = Kind("shape", lambda v: _as_tuple(v, _as_int))
"""A tuple of ints (``"(2, 3)"``); a bare int becomes a 1-tuple."""
OPT_SHAPE = Kind("shape?", _optional(lambda v: _as_tuple(v, _as_int)))
TUPLE_OPT_INT = Kind("tuple[int?]", lambda v: _as_tuple(v, _int_or_none))
"""A tuple whose items may be None, as in ``slice(begin=(0, None))``."""
FLOATS = Kind("floats", lambda v: _as_tuple(v, _as_float))
OPT_INT = Kind("int?", _optional(_as_int))
OPT_FLOAT = Kind("float?", _optional(_as_float))
OPT_BOOL = Kind("bool?", _optional(_as_bool))
DTYPE = Kind("dtype", _as_dtype)


def _axis(value: Any) -> int | tuple[int, ...] | None:
    if isinstance(value, str):
        value = _literal(value)
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_as_int(v) for v in value)
    return _as_int(value)


AXIS = Kind("axis", _axis)
"""An int, a tuple of ints, or None (all axes): MXNet's reduction ``axis``."""


def _number(value: Any) -> float | int:
    if isinstance(value, str):
        value = _literal(value)
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise AttrError(f"expected a number, got {value!r}")


NUMBER = Kind("number", _number)
"""A Python number kept as int or float (scalar operands such as ``_plus_scalar``)."""


@dataclass(frozen=True)
class Attr:
    """A declared attribute of an op: its kind and default (``REQUIRED`` if none)."""

    kind: Kind
    default: Any = REQUIRED
    choices: tuple | None = None

    def parse(self, op: str, name: str, value: Any) -> Any:
        """Canonical value of ``value`` for attribute ``name`` of ``op``, or a clear error."""
        try:
            parsed = self.kind.parse(value)
        except (AttrError, TypeError, ValueError) as err:
            raise AttrError(
                f"operator {op}: attribute {name}={value!r} is not a valid {self.kind.name} ({err})"
            ) from None
        if self.choices is not None and parsed not in self.choices:
            raise AttrError(
                f"operator {op}: attribute {name}={value!r} must be one of {list(self.choices)}"
            )
        return parsed
