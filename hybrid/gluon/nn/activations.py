"""Activation layers beyond ``Activation``: LeakyReLU, PReLU, ELU, SELU, GELU, Swish.

All but Swish emit MXNet's ``LeakyReLU`` op with the matching ``act_type``.
"""

from __future__ import annotations

from typing import Any

from ... import initializer
from ..block import HybridBlock


class LeakyReLU(HybridBlock):
    """``x`` if ``x > 0`` else ``alpha * x``."""

    def __init__(self, alpha: float, **kwargs: Any) -> None:
        if alpha < 0:
            raise ValueError("Slope coefficient for LeakyReLU must be no less than 0.")
        super().__init__(**kwargs)
        self._alpha = alpha

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type="leaky", slope=self._alpha, name="fwd")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._alpha})"


_PRELU_ALPHA = initializer.Constant(0.25)


class PReLU(HybridBlock):
    """Parametric ReLU: ``x`` if ``x > 0`` else ``alpha * x`` with a learned ``alpha`` of
    shape ``(in_channels,)`` (broadcast along axis 1; the default ``(1,)`` is shared)."""

    def __init__(self, alpha_initializer=_PRELU_ALPHA, in_channels: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.alpha = self.params.get("alpha", shape=(in_channels,), init=alpha_initializer)

    def hybrid_forward(self, F, x, alpha):
        return F.LeakyReLU(x, gamma=alpha, act_type="prelu", name="fwd")


class ELU(HybridBlock):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._alpha = alpha

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type="elu", slope=self._alpha)


class SELU(HybridBlock):
    """Scaled ELU with MXNet's fixed ``alpha``/``lambda`` (and MXNet's gradient)."""

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type="selu", name="fwd")


class GELU(HybridBlock):
    """Gaussian error linear unit, the exact erf form ``0.5 x (1 + erf(x / sqrt 2))``."""

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type="gelu", name="fwd")


class Swish(HybridBlock):
    """``x * sigmoid(beta * x)``."""

    def __init__(self, beta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._beta = beta

    def hybrid_forward(self, F, x):
        return x * F.sigmoid(self._beta * x, name="fwd")


__all__ = ["LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Swish"]
