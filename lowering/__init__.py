"""The compiler of hybrid: op registry, graph IR, lowering to jax, compile cache, export.

``lowering`` knows graphs, ops and arrays; it never imports ``hybrid``.

MXNet has real float64 and int64 arrays, which JAX keeps only with 64-bit types
on. hybrid turns them on only around its own calls into JAX (:mod:`lowering.x64`),
never for the whole process: other JAX code in the process is unaffected.
"""

from . import registry, x64
from .registry import OpDef, OpError, get, names, register

__all__ = ["OpDef", "OpError", "get", "names", "register", "registry", "x64"]
