"""Devices: ``mx.cpu()``, ``mx.gpu()``, ``mx.tpu()`` mapped onto JAX devices.

A :class:`Context` is an identity as in MXNet: ``cpu(0)`` and ``cpu(1)`` are
different contexts even when both live on JAX's single CPU device (MXNet's
tests use CPU ids as stand-ins for several devices). ``with ctx:`` sets the
default context for array creation.
"""

from __future__ import annotations

import threading

import jax

_DEVICE_TYPES = {"cpu": 1, "gpu": 2, "cpu_pinned": 3, "cpu_shared": 5, "tpu": 6}
_JAX_PLATFORM = {"cpu": "cpu", "cpu_pinned": "cpu", "cpu_shared": "cpu", "gpu": "gpu",
                 "tpu": "tpu"}


class Context:
    """A device: ``Context('gpu', 1)``, or ``mx.gpu(1)``.

    ``device_type`` is ``cpu``, ``gpu``, ``tpu``, ``cpu_pinned`` or ``cpu_shared``;
    ``jax_device`` is the JAX device arrays of this context are placed on.
    """

    _state = threading.local()

    def __init__(self, device_type: str | Context, device_id: int = 0) -> None:
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        if device_type not in _DEVICE_TYPES:
            raise ValueError(
                f"unknown device type {device_type!r}; expected one of {sorted(_DEVICE_TYPES)}"
            )
        self.device_type = device_type
        self.device_id = int(device_id)
        self._old: list[Context] = []

    @property
    def device_typeid(self) -> int:
        return _DEVICE_TYPES[self.device_type]

    @property
    def jax_device(self) -> jax.Device:
        """The JAX device for this context: this process's ``device_id``-th device of the
        platform (CPU ids beyond the real count share device 0)."""
        platform = _JAX_PLATFORM[self.device_type]
        try:
            devices = jax.local_devices(backend=platform)
        except RuntimeError:
            raise RuntimeError(
                f"context {self} needs a JAX {platform} backend, and none is available "
                f"(available: {sorted({d.platform for d in jax.devices()})})"
            ) from None
        if platform == "cpu":
            return devices[self.device_id % len(devices)]
        if self.device_id >= len(devices):
            raise RuntimeError(f"context {self}: only {len(devices)} {platform} device(s) exist")
        return devices[self.device_id]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Context) and self.device_type == other.device_type
                and self.device_id == other.device_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    __str__ = __repr__

    def __enter__(self) -> Context:
        self._old.append(current_context())
        Context._state.current = self
        return self

    def __exit__(self, *exc) -> None:
        Context._state.current = self._old.pop()

    def empty_cache(self) -> None:
        """No-op: XLA manages device memory (kept for MXNet compatibility)."""


def cpu(device_id: int = 0) -> Context:
    """The CPU context."""
    return Context("cpu", device_id)


def cpu_pinned(device_id: int = 0) -> Context:
    """Pinned host memory (a CPU context here)."""
    return Context("cpu_pinned", device_id)


def gpu(device_id: int = 0) -> Context:
    """The ``device_id``-th GPU."""
    return Context("gpu", device_id)


def tpu(device_id: int = 0) -> Context:
    """The ``device_id``-th TPU core."""
    return Context("tpu", device_id)


def num_gpus() -> int:
    """How many GPUs JAX sees."""
    try:
        return len(jax.local_devices(backend="gpu"))
    except RuntimeError:
        return 0


def current_context() -> Context:
    """The default context (``cpu(0)`` unless inside ``with ctx:``)."""
    return getattr(Context._state, "current", None) or Context("cpu", 0)
