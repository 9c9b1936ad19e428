"""Automatic names: ``NameManager`` (``fullyconnected0``) and ``Prefix`` (``dense0_fwd``).

As in MXNet, a symbol created without ``name=`` is called ``<hint><counter>``,
the hint being the lower-cased op name; inside ``with Prefix('dense0_'):`` the
prefix is prepended to every name, given or generated.
"""

from __future__ import annotations

import threading

_state = threading.local()


class NameManager:
    """Hands out ``hint + counter`` names; usable as a context manager."""

    def __init__(self) -> None:
        self._counter: dict[str, int] = {}
        self._old: list[NameManager] = []

    def get(self, name: str | None, hint: str) -> str:
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self) -> NameManager:
        self._old.append(current())
        _state.current = self
        return self

    def __exit__(self, *exc) -> None:
        _state.current = self._old.pop()


class Prefix(NameManager):
    """A name manager that prefixes every name with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)


def current() -> NameManager:
    """The active name manager."""
    if not hasattr(_state, "current"):
        _state.current = NameManager()
    return _state.current
