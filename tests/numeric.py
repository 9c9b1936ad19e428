"""Central finite differences, shared by every gradient test."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray,
                       eps: float = 1e-6) -> np.ndarray:
    """``d f / d x`` by central differences; ``f`` takes an array shaped like ``x``."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f(x.copy())
        x[idx] = old - eps
        down = f(x.copy())
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad
