"""64-bit types for hybrid's own calls into JAX, and only for those.

MXNet has real float64 and int64 arrays; JAX keeps 64-bit types only while its
``jax_enable_x64`` flag is on (otherwise ``float64`` silently becomes
``float32``). Switching the flag on for the whole process would change every
other JAX program in it: the user's ``jnp.zeros(3)`` would become float64 and
their jit caches would be keyed differently. So hybrid turns it on only while
its own code runs, through JAX's thread-local config state (the public
``jax.enable_x64`` context manager): every entry point of hybrid that calls
into JAX (array creation, eager op dispatch, compiled graph calls, backward,
the Trainer's update, random keys, initializers, loading files) runs in
:func:`scope` or is decorated with :func:`scoped`, and every program compiled
through :class:`lowering.compile_cache.CompileCache` is called in the scope.

Arrays keep their dtype outside the scope; only new values are affected by the
flag, so hybrid's NDArrays are always handled inside it.

The scope costs about 0.5 µs per entry (a thread-local swap); it nests freely.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax

_F = TypeVar("_F", bound=Callable[..., Any])

_STATE = jax.enable_x64
# ``jax.enable_x64(True)`` builds a context-manager object per use (~2.7 µs); its
# ``__enter__``/``__exit__`` are exactly this swap of the thread-local value, done here
# directly (~0.5 µs) when the flag has no thread-local hook to run as well.
_FAST = (hasattr(_STATE, "swap_local") and hasattr(_STATE, "set_local")
         and getattr(_STATE, "_update_thread_local_hook", None) is None)


CALLS = [0]
"""How many times programs made by :func:`jit` have been called (each call is one
execution of a compiled program): the figure benchmarks print per training step."""


def scope():
    """A context manager turning 64-bit types on in this thread for its block (nests)."""
    return _STATE(True)


def enabled() -> bool:
    """Whether 64-bit types are on here (inside a scope, or set globally by the user)."""
    return bool(_STATE.value)


def scoped(fn: _F) -> _F:
    """``fn`` running in :func:`scope` on every call (a decorator)."""
    if not _FAST:
        return functools.wraps(fn)(_STATE(True)(fn))
    swap, restore = _STATE.swap_local, _STATE.set_local

    @functools.wraps(fn)
    def in_scope(*args: Any, **kwargs: Any) -> Any:
        prev = swap(True)
        try:
            return fn(*args, **kwargs)
        finally:
            restore(prev)

    return in_scope  # type: ignore[return-value]


def jit(fn: Callable, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fn, **jit_kwargs)`` called (so traced and cached) in :func:`scope`.

    The jitted function stays reachable as ``__wrapped__``; ``lower`` and
    ``_cache_size`` are forwarded.
    """
    compiled = jax.jit(fn, **jit_kwargs)
    inner = scoped(compiled)

    @functools.wraps(compiled)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        CALLS[0] += 1
        return inner(*args, **kwargs)

    wrapper.lower = scoped(compiled.lower)
    wrapper._cache_size = compiled._cache_size
    return wrapper


__all__ = ["CALLS", "enabled", "jit", "scope", "scoped"]
