"""hybrid: the Gluon API of Apache MXNet 1.x on JAX. ``import hybrid as mx``."""

from __future__ import annotations

import lowering as _lowering  # noqa: F401  (the compiler: its op registry)

from . import autograd, context, engine, name, ndarray, random, symbol
from . import ndarray as nd
from . import symbol as sym
from .base import MXNetError
from .context import Context, cpu, cpu_pinned, current_context, gpu, num_gpus, tpu

__version__ = "0.1.0"


def __getattr__(attr: str):
    # Submodules written separately are imported on first use, so that a missing
    # optional piece never breaks `import hybrid`.
    import importlib

    aliases = {"init": "initializer", "kv": "kvstore"}
    target = aliases.get(attr, attr)
    if target in ("gluon", "initializer", "metric", "lr_scheduler", "optimizer", "recordio",
                  "image", "io", "kvstore", "test_utils"):
        module = importlib.import_module(f".{target}", __name__)
        globals()[attr] = module
        return module
    raise AttributeError(f"module 'hybrid' has no attribute {attr!r}")


__all__ = ["autograd", "context", "engine", "nd", "ndarray", "sym", "symbol", "random", "name",
           "Context", "cpu", "gpu", "tpu", "cpu_pinned", "current_context", "num_gpus",
           "MXNetError"]
