"""Readers and writers for MXNet's on-disk formats, in pure numpy.

``ndarray_file`` handles the binary NDArray list format of ``mx.nd.save`` / ``mx.nd.load``,
``Block.save_parameters`` and ``HybridBlock.export`` (``*.params``).
"""

from lowering.serialization.atomic import write_atomic
from lowering.serialization.ndarray_file import (
    LIST_MAGIC,
    NDARRAY_V1_MAGIC,
    NDARRAY_V2_MAGIC,
    NDARRAY_V3_MAGIC,
    TYPE_FLAGS,
    NDArrayFileError,
    dtype_to_type_flag,
    dumps,
    load,
    loads,
    save,
    type_flag_to_dtype,
)

__all__ = [
    "write_atomic",
    "LIST_MAGIC",
    "NDARRAY_V1_MAGIC",
    "NDARRAY_V2_MAGIC",
    "NDARRAY_V3_MAGIC",
    "TYPE_FLAGS",
    "NDArrayFileError",
    "dtype_to_type_flag",
    "dumps",
    "load",
    "loads",
    "save",
    "type_flag_to_dtype",
]
