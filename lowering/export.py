"""Deployable StableHLO artifacts through ``jax.export``.

``export_graph`` turns a graph into a ``jax.export.Exported`` of its inference
function (predict mode: ``training=False``, Dropout is the identity, BatchNorm
uses its running statistics). The parameter and auxiliary-state values are
**baked in as constants**, so the artifact is self-contained: its only
arguments are the graph's inputs, in order, and it returns the single output,
or a tuple when the graph has several. With ``batch_dim_symbolic`` the leading
dimension of every input is one shared symbolic size ``batch``, so one
artifact serves any batch size.

``save_stablehlo`` writes the serialized bytes atomically and ``load_stablehlo``
reads them back as a plain callable. Loading needs only jax and numpy: neither
this module's loader nor the artifact refers to the model's Python code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np


class ExportError(ValueError):
    """The graph cannot be exported (unknown input shapes, non-batched inputs, ...)."""


def export_graph(heads: Sequence[Any], input_names: Sequence[str],
                 params: Mapping[str, Any], aux: Mapping[str, Any],
                 input_specs: Sequence[tuple[Sequence[int], Any]],
                 batch_dim_symbolic: bool = True,
                 platforms: Sequence[str] | None = None) -> jax.export.Exported:
    """The ``Exported`` inference function of the graph with these ``heads``.

    ``input_specs`` gives ``(shape, dtype)`` per input (in ``input_names`` order);
    with ``batch_dim_symbolic`` their first dimension is replaced by the
    symbolic ``batch``. ``params``/``aux`` (name -> array) become constants.
    """
    from .lower import lower

    if len(input_specs) != len(input_names):
        raise ExportError(f"the graph has inputs {list(input_names)}, got "
                          f"{len(input_specs)} input shape(s)")
    fn = lower(heads, input_names)
    consts = ({k: jax.numpy.asarray(v) for k, v in params.items()},
              {k: jax.numpy.asarray(v) for k, v in aux.items()})
    single = len(heads) == 1

    def infer(*inputs):
        outs, _ = fn(consts[0], consts[1], tuple(inputs), jax.random.key(0), False)
        return outs[0] if single else tuple(outs)

    if batch_dim_symbolic:
        (batch,) = jax.export.symbolic_shape("batch")
    specs = []
    for name, (shape, dtype) in zip(input_names, input_specs):
        shape = tuple(shape)
        if batch_dim_symbolic:
            if not shape:
                raise ExportError(f"input {name!r} is a scalar; it has no batch dimension "
                                  "(use batch_dim_symbolic=False)")
            shape = (batch, *shape[1:])
        specs.append(jax.ShapeDtypeStruct(shape, np.dtype(dtype)))
    kwargs = {} if platforms is None else {"platforms": tuple(platforms)}
    try:
        return jax.export.export(jax.jit(infer), **kwargs)(*specs)
    except Exception as err:  # noqa: BLE001 - re-raised saying what was being exported
        raise ExportError(f"cannot export the graph with inputs "
                          f"{[(n, s.shape) for n, s in zip(input_names, specs)]}: {err}") \
            from err


def save_stablehlo(path: str | os.PathLike, exported: jax.export.Exported) -> None:
    """Write the serialized artifact to ``path`` atomically."""
    from .serialization import write_atomic

    try:
        payload = bytes(exported.serialize())
    except ImportError as err:  # jax.export serializes with flatbuffers, an optional extra
        raise ImportError(
            f"writing a StableHLO artifact needs the flatbuffers package ({err}); "
            "install it with: pip install 'hybrid[export]'"
        ) from None
    write_atomic(path, payload)


def load_stablehlo(path: str | os.PathLike) -> Callable[..., Any]:
    """A callable running the artifact at ``path`` on arrays (numpy or jax).

    It returns a jax array, or a tuple of them for several outputs. The
    deserialized ``jax.export.Exported`` is available as ``fn.exported``.
    """
    with open(path, "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))

    def run(*inputs: Any) -> Any:
        return exported.call(*inputs)

    run.exported = exported  # type: ignore[attr-defined]
    return run


__all__ = ["ExportError", "export_graph", "load_stablehlo", "save_stablehlo"]
