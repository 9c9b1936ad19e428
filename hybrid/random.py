"""Global random state: ``mx.random.seed`` and the keys eager random ops consume.

Eager random ops (initializers, ``nd.random.*``, eager dropout) split a key off
the global key; compiled graphs take a fresh key as an input on every call, so
runs are reproducible after ``seed(n)`` and dropout differs from step to step.
"""

from __future__ import annotations

import threading

import jax
import numpy as np

from lowering import x64

_state = threading.local()


def _key_state() -> list:
    if not hasattr(_state, "key"):
        _state.key = [None, 0]
    return _state.key


@x64.scoped
def seed(seed_state: int, ctx: object = "all") -> None:
    """Seed the global generator (``ctx`` is accepted for MXNet compatibility)."""
    state = _key_state()
    state[0] = jax.random.key(int(seed_state))
    state[1] = 0
    np.random.seed(int(seed_state) % (2**32))


@x64.scoped
def next_key() -> jax.Array:
    """A fresh PRNG key, derived from the global key without reusing it."""
    return jax.random.fold_in(*next_key_parts())


@x64.scoped
def next_key_parts() -> tuple[jax.Array, int]:
    """``(global key, counter)`` of the next key: ``next_key()`` is their ``fold_in``
    (a captured step folds them inside its program, drawing the same keys)."""
    state = _key_state()
    if state[0] is None:
        state[0] = jax.random.key(np.random.randint(0, 2**31 - 1))
    state[1] += 1
    return state[0], state[1]


def uniform(*args, **kwargs):
    """``mx.random.uniform`` (same as ``mx.nd.random.uniform``)."""
    from .ndarray import random as _random

    return _random.uniform(*args, **kwargs)


def normal(*args, **kwargs):
    """``mx.random.normal`` (same as ``mx.nd.random.normal``)."""
    from .ndarray import random as _random

    return _random.normal(*args, **kwargs)
