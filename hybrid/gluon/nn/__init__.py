"""``gluon.nn``: neural-network layers."""

from .basic_layers import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    HybridLambda,
    HybridSequential,
    Lambda,
    Sequential,
)

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "HybridLambda", "HybridSequential",
           "Lambda", "Sequential"]
