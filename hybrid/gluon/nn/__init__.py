"""``gluon.nn``: neural-network layers."""

from .activations import ELU, GELU, SELU, LeakyReLU, PReLU, Swish
from .basic_layers import (
    Activation,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    HybridLambda,
    HybridSequential,
    Lambda,
    Sequential,
)
from .conv_layers import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    ReflectionPad2D,
)
from .norm_layers import BatchNorm, BatchNormReLU, GroupNorm, InstanceNorm, LayerNorm

__all__ = ["Activation", "Dense", "Dropout", "Embedding", "Flatten", "HybridLambda",
           "HybridSequential", "Lambda", "Sequential",
           "ELU", "GELU", "SELU", "LeakyReLU", "PReLU", "Swish",
           "AvgPool1D", "AvgPool2D", "AvgPool3D", "Conv1D", "Conv1DTranspose", "Conv2D",
           "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
           "MaxPool1D", "MaxPool2D", "MaxPool3D", "ReflectionPad2D",
           "BatchNorm", "BatchNormReLU", "GroupNorm", "InstanceNorm", "LayerNorm"]
