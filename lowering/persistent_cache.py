"""JAX's persistent compilation cache, on for hybrid's own programs only.

Every program hybrid compiles (through :class:`lowering.compile_cache.CompileCache`)
is compiled inside :func:`scope`, which points JAX's on-disk compilation cache at
hybrid's cache directory for that thread and that call only, and stores programs
however fast they compiled (JAX's default stores only programs that took a
second). A second process running the same model then loads its executables
from disk instead of compiling them again. JAX programs of the user's own, next
to hybrid, are not cached unless the user turns JAX's cache on themselves.

The directory is ``$HYBRID_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/hybrid/xla``
(``~/.cache/hybrid/xla``). ``HYBRID_CACHE_DIR=off`` (or ``0``, ``false``, ``none``)
switches it off. A user who set ``jax_compilation_cache_dir`` globally keeps
their own directory and settings: hybrid then does not override them.

JAX initializes its cache once per process, with the directory in force at the
first cached compile. The directory is not size-bounded (JAX's bound needs the
``filelock`` package, not a dependency of hybrid); delete it to reclaim space.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# Thread-local overrides of these flags are JAX's own mechanism (``jax.enable_x64``
# is one of them); jax's public config only offers the process-wide ``update``.
from jax._src import config as _config

ENV = "HYBRID_CACHE_DIR"
"""Environment variable: the cache directory, or ``off`` to switch the cache off."""

_OFF = {"", "0", "off", "false", "no", "none"}


def directory() -> str | None:
    """The directory hybrid's programs are cached in, or None when switched off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else os.path.expanduser(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hybrid", "xla")


def enabled() -> bool:
    """Whether :func:`scope` turns the persistent cache on (directory set, user's not)."""
    return directory() is not None and _config.compilation_cache_dir.value is None


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Compile in this block with hybrid's persistent cache (a no-op when it is off,
    or when the user configured JAX's cache themselves)."""
    path = directory()
    if path is None or _config.compilation_cache_dir.value is not None:
        yield
        return
    with _config.compilation_cache_dir(path), \
            _config.persistent_cache_min_compile_time_secs(0.0), \
            _config.persistent_cache_min_entry_size_bytes(0):
        yield


__all__ = ["ENV", "directory", "enabled", "scope"]
