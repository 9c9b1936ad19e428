"""``mx.gluon``: Blocks, Parameters, layers, losses, Trainer, data."""

from . import loss, nn
from .block import Block, HybridBlock
from .parameter import Constant, Parameter, ParameterDict
from .symbol_block import SymbolBlock
from .trainer import Trainer


def __getattr__(attr: str):
    import importlib

    if attr in ("data", "utils", "contrib", "rnn", "model_zoo"):
        module = importlib.import_module(f".{attr}", __name__)
        globals()[attr] = module
        return module
    if attr == "metric":
        from .. import metric

        return metric
    raise AttributeError(f"module 'hybrid.gluon' has no attribute {attr!r}")


__all__ = ["Block", "HybridBlock", "Parameter", "Constant", "ParameterDict", "Trainer", "nn",
           "loss", "SymbolBlock"]
