"""The compiler of hybrid: op registry, graph IR, lowering to jax, compile cache, export.

``lowering`` knows graphs, ops and arrays; it never imports ``hybrid``.

MXNet has real float64 and int64 arrays, so 64-bit types are enabled in JAX
(without it JAX silently turns them into 32-bit ones). Float32 computations are
unaffected.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import registry  # noqa: E402
from .registry import OpDef, OpError, get, names, register  # noqa: E402

__all__ = ["OpDef", "OpError", "get", "names", "register", "registry"]
