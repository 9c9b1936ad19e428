"""The one compile-cache service: every compiled program of hybrid is cached here.

Eager ops, fused backward passes, hybridized graphs and Trainer updates each
keep a :class:`CompileCache`. A cache maps a :class:`Key` to a ``jax.jit``
callable and

- is an LRU with a bound (``maxsize``), so a program whose shapes never repeat
  cannot grow memory without limit;
- counts traces per *owner* (an op name, a block name, a trainer), so tests and
  users see every recompilation (:func:`stats`);
- warns once when one owner keeps recompiling, naming the part of the key that
  changed last ("input 0 shape (64, 784) -> (65, 784)");
- compiles each program with JAX's on-disk cache pointed at hybrid's directory
  (:mod:`lowering.persistent_cache`), so a new process loads it instead.

A :class:`Key` is a tuple of named fields, built with :func:`key`; everything
that changes the compiled program must be in it, and nothing else.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from . import persistent_cache, x64

RETRACE_WARNING = 16
"""Warn once when one owner has been compiled this many times."""

DEFAULT_MAXSIZE = 512
"""Compiled programs one cache keeps before dropping the least recently used."""


class Key(tuple):
    """A cache key: a tuple of ``(field name, value)`` pairs. Build it with :func:`key`."""

    __slots__ = ()

    def fields(self) -> dict[str, Any]:
        return dict(self)


def key(**fields: Hashable) -> Key:
    """A :class:`Key` of the given named fields (their order is kept)."""
    return Key(fields.items())


def avals(arrays) -> tuple:
    """``((shape, dtype), ...)`` of arrays: the usual key field for inputs."""
    return tuple((tuple(a.shape), a.dtype) for a in arrays)


@dataclass
class OwnerStats:
    """What one owner (an op, a block, a trainer) has compiled."""

    owner: str
    traces: int = 0
    last_key: Key | None = None
    last_change: str = ""
    warned: bool = False


@dataclass
class _Entry:
    fn: Any
    owner: str


@dataclass
class CompileCache:
    """A bounded LRU of compiled programs of one kind (see the module docstring).

    Arguments:
        kind: what is cached ("eager op", "block", "fused backward", "trainer").
        maxsize: programs kept before the least recently used one is dropped.
        warn_after: traces of one owner after which a retrace warning is issued
            (0: the module's ``RETRACE_WARNING``; None: never warn, e.g. for
            eager ops whose shapes legitimately vary).
    """

    kind: str
    maxsize: int = DEFAULT_MAXSIZE
    warn_after: int | None = 0
    _entries: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _owners: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        _ALL.append(self)

    def get(self, owner: str, k: Key):
        """The compiled callable cached under ``(owner, k)``, or None."""
        entry = self._entries.get((owner, k))
        if entry is None:
            return None
        self._entries.move_to_end((owner, k))
        return entry.fn

    def jit(self, owner: str, k: Key, fn: Callable, **jit_kwargs: Any):
        """The cached ``jax.jit(fn)`` for ``(owner, k)``, compiling it on first use.

        ``fn`` is only used on a miss. Each trace of the program counts for
        ``owner`` (jax may trace one jitted callable again, e.g. when a
        parameter shape changes; that counts too).
        """
        found = self.get(owner, k)
        if found is not None:
            return found

        def traced(*args, **kwargs):
            self._note_trace(owner, k)
            return fn(*args, **kwargs)

        compiled = x64.jit(traced, **jit_kwargs)  # called, so traced, with 64-bit types on

        def first_call(*args, **kwargs):
            # The call that compiles: with hybrid's on-disk cache, so a later process
            # loads the executable. Later calls go to ``compiled`` directly.
            with persistent_cache.scope():
                out = compiled(*args, **kwargs)
            with self._lock:
                entry = self._entries.get((owner, k))
                if entry is not None and entry.fn is first_call:
                    entry.fn = compiled
            return out

        first_call.lower = compiled.lower
        first_call._cache_size = compiled._cache_size
        first_call.__wrapped__ = compiled.__wrapped__
        with self._lock:
            self._entries[(owner, k)] = _Entry(first_call, owner)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return first_call

    def _note_trace(self, owner: str, k: Key) -> None:
        st = self._owners.get(owner)
        if st is None:
            st = self._owners[owner] = OwnerStats(owner)
        st.traces += 1
        if st.last_key is not None:
            st.last_change = explain(st.last_key, k) or \
                "same key (parameter shapes or dtypes, or weak types, changed)"
        st.last_key = k
        limit = RETRACE_WARNING if self.warn_after == 0 else self.warn_after
        if limit is not None and st.traces >= limit and not st.warned:
            st.warned = True
            warnings.warn(
                f"{self.kind} {owner!r} has been compiled {st.traces} times; last change: "
                f"{st.last_change}. Each new combination compiles again: keep shapes static "
                "(pad or bucket the batch) or call hybridize() again to reset",
                stacklevel=5,
            )

    def traces(self, owner: str) -> int:
        """How many times ``owner`` has been traced (compiled) by this cache."""
        st = self._owners.get(owner)
        return 0 if st is None else st.traces

    def owner_stats(self, owner: str) -> OwnerStats | None:
        return self._owners.get(owner)

    def __len__(self) -> int:
        return len(self._entries)

    def drop(self, owner: str) -> None:
        """Forget every program of ``owner`` (its trace count is kept)."""
        with self._lock:
            for k in [k for k, e in self._entries.items() if e.owner == owner]:
                del self._entries[k]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_ALL: list[CompileCache] = []


def stats() -> dict[str, dict[str, int]]:
    """Traces per owner of every cache: ``{kind: {owner: traces}}``."""
    out: dict[str, dict[str, int]] = {}
    for cache in _ALL:
        d = out.setdefault(cache.kind, {})
        for owner, st in cache._owners.items():
            d[owner] = d.get(owner, 0) + st.traces
    return out


def explain(old: Key, new: Key) -> str:
    """Which fields differ between two keys, in words."""
    a, b = old.fields(), new.fields()
    parts = []
    for name in dict.fromkeys([*a, *b]):
        if a.get(name) != b.get(name):
            parts.append(_describe(name, a.get(name), b.get(name)))
    return "; ".join(parts)


def _is_avals(v: Any) -> bool:
    return isinstance(v, tuple) and all(
        isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], tuple) for x in v)


def _describe(name: str, old: Any, new: Any) -> str:
    if _is_avals(old) and _is_avals(new) and len(old) == len(new):
        parts = []
        for i, ((s0, d0), (s1, d1)) in enumerate(zip(old, new)):
            if s0 != s1:
                if len(s0) == len(s1) and s0[1:] == s1[1:] and s0[:1] != s1[:1]:
                    parts.append(f"{name} {i} batch size {s0[0]} -> {s1[0]}")
                else:
                    parts.append(f"{name} {i} shape {s0} -> {s1}")
            if d0 != d1:
                parts.append(f"{name} {i} dtype {_dt(d0)} -> {_dt(d1)}")
        return "; ".join(parts)
    return f"{name} {old!r} -> {new!r}"


def _dt(d: Any) -> str:
    return getattr(d, "name", str(d))


__all__ = ["CompileCache", "Key", "OwnerStats", "RETRACE_WARNING", "avals", "explain", "key",
           "stats"]
