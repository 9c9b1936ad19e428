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

File layout (all little-endian)::

    8 bytes  magic b"HYBRIDHL"
    uint32   format version (1)
    uint64   payload length in bytes
    32 bytes sha256 of the payload
    payload  ``jax.export.Exported.serialize()``

The loader checks all of it before handing the payload to jax, so a truncated,
extended or corrupted file is refused with ``ArtifactError`` naming the file.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from . import x64


class ExportError(ValueError):
    """The graph cannot be exported (unknown input shapes, non-batched inputs, ...)."""


class ArtifactError(ValueError):
    """A StableHLO artifact file is damaged or not one ``save_stablehlo`` wrote."""


ARTIFACT_MAGIC = b"HYBRIDHL"
"""First 8 bytes of every artifact ``save_stablehlo`` writes."""
ARTIFACT_VERSION = 1
_HEADER = struct.Struct("<8sIQ32s")


@x64.scoped
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
    """Write the serialized artifact to ``path`` atomically, behind a header with its
    length and sha256 (see the module docstring)."""
    from .serialization import write_atomic

    try:
        payload = bytes(exported.serialize())
    except ImportError as err:  # jax.export serializes with flatbuffers, an optional extra
        raise ImportError(
            f"writing a StableHLO artifact needs the flatbuffers package ({err}); "
            "install it with: pip install 'hybrid[export]'"
        ) from None
    header = _HEADER.pack(ARTIFACT_MAGIC, ARTIFACT_VERSION, len(payload),
                          hashlib.sha256(payload).digest())
    write_atomic(path, header + payload)


def _checked_payload(blob: bytes, name: str) -> bytes:
    """The payload of an artifact file, after checking header, length and checksum."""
    if len(blob) < _HEADER.size:
        raise ArtifactError(f"{name}: {len(blob)} bytes is too short for a StableHLO artifact "
                            f"(the header alone is {_HEADER.size} bytes); the file is truncated "
                            "or not an artifact")
    magic, version, length, digest = _HEADER.unpack_from(blob)
    if magic != ARTIFACT_MAGIC:
        raise ArtifactError(f"{name}: not a StableHLO artifact written by save_stablehlo "
                            f"(expected magic {ARTIFACT_MAGIC!r}, found {magic!r})")
    if version != ARTIFACT_VERSION:
        raise ArtifactError(f"{name}: artifact format version {version} is not supported "
                            f"(this loader reads version {ARTIFACT_VERSION})")
    payload = blob[_HEADER.size:]
    if len(payload) != length:
        raise ArtifactError(f"{name}: the header announces {length} payload bytes but "
                            f"{len(payload)} follow; the file is truncated or damaged")
    if hashlib.sha256(payload).digest() != digest:
        raise ArtifactError(f"{name}: the sha256 checksum of the payload does not match the "
                            "header; the file is damaged")
    return payload


def load_stablehlo(path: str | os.PathLike) -> Callable[..., Any]:
    """A callable running the artifact at ``path`` on arrays (numpy or jax).

    It returns a jax array, or a tuple of them for several outputs. The
    deserialized ``jax.export.Exported`` is available as ``fn.exported``.
    Raises ``ArtifactError`` (naming the file) for a damaged or foreign file.
    """
    name = os.fsdecode(os.fspath(path))
    with open(path, "rb") as f:
        payload = _checked_payload(f.read(), name)
    try:
        exported = jax.export.deserialize(bytearray(payload))
    except Exception as err:  # noqa: BLE001 - checksum matched: written by another jax
        raise ArtifactError(f"{name}: jax {jax.__version__} cannot read this artifact "
                            f"({type(err).__name__}: {err})") from err

    def run(*inputs: Any) -> Any:
        return exported.call(*inputs)

    run.exported = exported  # type: ignore[attr-defined]
    return run


__all__ = ["ARTIFACT_MAGIC", "ARTIFACT_VERSION", "ArtifactError", "ExportError", "export_graph",
           "load_stablehlo", "save_stablehlo"]
