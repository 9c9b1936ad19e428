"""MXNet's binary NDArray list format (``mx.nd.save`` / ``mx.nd.load``, ``.params`` files).

Pure numpy (plus ``ml_dtypes`` for bfloat16); no MXNet needed.  The layout, as written by
MXNet 1.9 (``NDArray::Save`` for lists and for single arrays in ``src/ndarray/ndarray.cc``,
the dmlc vector/string serializers in ``include/dmlc/serializer.h``), all little-endian::

    uint64 0x112 (kMXAPINDArrayListMagic)   uint64 reserved (0)
    uint64 n_arrays, then n_arrays records
    uint64 n_names (0 for a list save, n_arrays for a dict save), then
           n_names x (uint64 byte length, UTF-8 bytes)

and one dense record::

    uint32 magic    0xF993FAC9 (V2) | 0xF993FACA (V3, np-shape semantics)
    int32  stype    0 = dense (1 = row_sparse, 2 = csr are refused here)
    int32  ndim, int64 dims[ndim]
    int32  dev_type, int32 dev_id          (1, 0 = cpu(0) when written here)
    int32  type_flag                       (mshadow TypeFlag, see ``TYPE_FLAGS``)
    raw little-endian C-order data

Older records are read too: V1 (magic 0xF993FAC8: no stype, then the same shape/context/
type/data) and the pre-V1 legacy layout, whose first uint32 *is* ndim, followed by uint32
dims, context, type flag and data.

"None" arrays (an NDArray handle without storage) are records that stop right after the
shape: ndim 0 under V2, V1 and the legacy layout, or (V3 only) a shape containing an
unknown dimension -1, exactly where MXNet's reader stops.  They load as ``None`` and
``dumps`` writes ``None`` back as a V2 ndim-0 record.  A V3 record with ndim 0 is a real
0-d array.

Deliberate strictness beyond MXNet's reader, so that a damaged file is never half-read:
trailing bytes after the names list, unknown device types, negative dimensions, names
that are not UTF-8 and duplicate names in a dict file are all refused with
``NDArrayFileError``; the ``reserved`` header word is ignored, as MXNet does.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Mapping
from typing import Any

import ml_dtypes
import numpy as np

from lowering.serialization.atomic import write_atomic

__all__ = [
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

LIST_MAGIC = 0x112
"""``kMXAPINDArrayListMagic``: first uint64 of every NDArray list file."""
NDARRAY_V1_MAGIC = 0xF993FAC8
"""Record magic of V1 (int64 shape, no storage type)."""
NDARRAY_V2_MAGIC = 0xF993FAC9
"""Record magic of V2 (storage type, legacy shape semantics); what MXNet 1.9 writes."""
NDARRAY_V3_MAGIC = 0xF993FACA
"""Record magic of V3 (np-shape semantics, written by ``npx.save``)."""

_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.float64),
    2: np.dtype(np.float16),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int32),
    5: np.dtype(np.int8),
    6: np.dtype(np.int64),
    7: np.dtype(np.bool_),
    8: np.dtype(np.int16),
    9: np.dtype(np.uint16),
    10: np.dtype(np.uint32),
    11: np.dtype(np.uint64),
    12: _BFLOAT16,
}
"""mshadow ``TypeFlag`` (``include/mshadow/base.h``) -> numpy dtype."""

_FLAG_BY_KIND_SIZE = {
    (dt.kind, dt.itemsize): flag for flag, dt in TYPE_FLAGS.items() if dt is not _BFLOAT16
}

_STORAGE_NAMES = {1: "row_sparse", 2: "csr"}
_DEVICE_TYPES = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
_MAX_NDIM = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
_BIG_ENDIAN_HOST = sys.byteorder == "big"

_ArrayOrNone = np.ndarray | None


class NDArrayFileError(ValueError):
    """A byte string is not a valid MXNet NDArray list file.

    Raised for any corrupt, truncated or unsupported input; the whole file is refused and
    nothing is returned.  The message says what was expected, what was found and where
    (byte offset and 0-based record index).
    """


# --------------------------------------------------------------------------- dtypes


def dtype_to_type_flag(dtype: Any) -> int:
    """Return MXNet's mshadow type flag for ``dtype`` (byte order is ignored).

    Raises ``TypeError`` for dtypes MXNet 1.9 cannot store (complex, float128, strings,
    objects, float8, ...).
    """
    dt = np.dtype(dtype)
    if dt == _BFLOAT16:
        return 12
    flag = _FLAG_BY_KIND_SIZE.get((dt.kind, dt.itemsize)) if dt.kind in "fiub" else None
    if flag is None or dt.fields is not None or dt.subdtype is not None:
        known = ", ".join(str(d) for d in TYPE_FLAGS.values())
        raise TypeError(f"dtype {dt} has no MXNet type flag; supported dtypes: {known}")
    return flag


def type_flag_to_dtype(flag: int) -> np.dtype:
    """Return the numpy dtype of mshadow type flag ``flag`` (``KeyError`` if unknown)."""
    return TYPE_FLAGS[flag]


# --------------------------------------------------------------------------- writing


def _as_numpy(obj: Any, where: str) -> np.ndarray:
    """Convert one value passed to ``dumps`` to a numpy array."""
    if isinstance(obj, np.ndarray):
        return obj
    asnumpy = getattr(obj, "asnumpy", None)
    if callable(asnumpy):
        return np.asarray(asnumpy())
    if hasattr(obj, "__array__"):
        return np.asarray(obj)
    raise TypeError(
        f"{where}: expected a numpy array, an object with __array__ or asnumpy(), or None; "
        f"got {type(obj).__name__}"
    )


def _is_array_like(obj: Any) -> bool:
    return isinstance(obj, np.ndarray) or callable(getattr(obj, "asnumpy", None)) or (
        hasattr(obj, "__array__") and not isinstance(obj, (list, tuple, Mapping))
    )


def _little_endian_bytes(arr: np.ndarray) -> bytes:
    dt = arr.dtype
    swap = dt.itemsize > 1 and (
        dt.byteorder == ">" or (dt.byteorder == "=" and _BIG_ENDIAN_HOST)
    )
    arr = np.ascontiguousarray(arr)
    if swap:
        arr = arr.byteswap()
    return arr.tobytes(order="C")


def _record_bytes(arr: _ArrayOrNone, magic: int) -> list[bytes]:
    """Serialise one dense record (or a "none" record for ``None``)."""
    if arr is None:
        # NDArray::Save writes the shape and stops when the array is none; ndim 0 is the
        # V2/legacy spelling of "no array".
        return [struct.pack("<IiI", magic, 0, 0)]
    flag = dtype_to_type_flag(arr.dtype)
    parts = [struct.pack("<Iii", magic, 0, arr.ndim)]
    if arr.ndim:
        parts.append(struct.pack(f"<{arr.ndim}q", *arr.shape))
    parts.append(struct.pack("<iii", 1, 0, flag))  # cpu(0), type flag
    parts.append(_little_endian_bytes(arr))
    return parts


def dumps(data: Any, *, np_shape: bool | None = None) -> bytes:
    """Serialise arrays to MXNet's NDArray list format, as ``mx.nd.save`` writes it.

    ``data`` is a list or tuple of arrays (saved with an empty names vector, so ``loads``
    and MXNet's ``mx.nd.load`` give back a list), a mapping ``str -> array`` (names saved
    in iteration order; loads back as a dict), or a single array (saved as a one-element
    list, like ``mx.nd.save(f, nd_array)``).  An array is a ``numpy.ndarray``, anything
    with ``asnumpy()`` (the project's NDArray) or with ``__array__``; ``None`` writes an
    MXNet "none" record.  Every record is dense, on ``cpu(0)``, with the mshadow type flag
    of its dtype (see ``TYPE_FLAGS``), data little-endian in C order.

    ``np_shape`` chooses the record version: ``False`` writes V2 records (MXNet 1.9's
    default, legacy shape semantics: no 0-d arrays), ``True`` writes V3 records (as
    ``npx.save`` does under np-shape semantics; MXNet only loads them with np-shape on),
    ``None`` (default) writes V2 unless some array is 0-d, in which case the whole file
    is V3.  A ``None`` entry cannot be written in a V3 file (MXNet 1.9 cannot read back
    its own V3 "none" records).

    Raises ``TypeError`` for a value that is not an array, a name that is not ``str`` or
    a dtype without MXNet type flag, and ``ValueError`` when ``np_shape=False`` meets a
    0-d array or a V3 file would contain ``None``.
    """
    if isinstance(data, Mapping):
        names: list[str] = []
        values: list[Any] = []
        for key, value in data.items():
            if not isinstance(key, str):
                raise TypeError(f"array names must be str, got {type(key).__name__}: {key!r}")
            names.append(key)
            values.append(value)
    elif isinstance(data, (list, tuple)):
        names = []
        values = list(data)
    elif _is_array_like(data):
        names = []
        values = [data]
    else:
        raise TypeError(
            "data must be a list/tuple of arrays, a dict of str -> array or a single array, "
            f"got {type(data).__name__}"
        )

    arrays: list[_ArrayOrNone] = []
    for i, value in enumerate(values):
        where = f"array {names[i]!r}" if names else f"array {i}"
        arr = None if value is None else _as_numpy(value, where)
        if arr is not None:
            try:
                dtype_to_type_flag(arr.dtype)
            except TypeError as err:
                raise TypeError(f"{where}: {err}") from None
        arrays.append(arr)

    has_scalar = any(a is not None and a.ndim == 0 for a in arrays)
    use_v3 = has_scalar if np_shape is None else bool(np_shape)
    if not use_v3 and has_scalar:
        raise ValueError(
            "0-d arrays need np-shape semantics (V3 records): MXNet's V2 records read ndim 0 "
            "as 'no array'; pass np_shape=True or None"
        )
    if use_v3 and any(a is None for a in arrays):
        raise ValueError("None entries can only be written as V2 records (np_shape=False)")
    magic = NDARRAY_V3_MAGIC if use_v3 else NDARRAY_V2_MAGIC

    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for arr in arrays:
        parts.extend(_record_bytes(arr, magic))
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"array name {name!r} cannot be encoded as UTF-8: {err}") from None
        parts.append(struct.pack("<Q", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


# --------------------------------------------------------------------------- reading


class _Reader:
    """Bounds-checked little-endian cursor over the file bytes."""

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0

    def need(self, nbytes: int, where: str, what: str) -> int:
        """Reserve ``nbytes`` at the cursor; return their offset and advance."""
        available = self.size - self.pos
        if nbytes > available:
            raise NDArrayFileError(
                f"file ends at byte {self.size} but {where} needs {nbytes - available} more "
                f"bytes of {what} (starting at byte {self.pos})"
            )
        start = self.pos
        self.pos += nbytes
        return start

    def unpack(self, fmt: str, where: str, what: str) -> tuple[Any, ...]:
        start = self.need(struct.calcsize(fmt), where, what)
        return struct.unpack_from(fmt, self.buf, start)


def _read_dims(
    r: _Reader, ndim: int, fmt_char: str, where: str, magic_name: str
) -> tuple[int, ...]:
    if ndim > _MAX_NDIM:
        raise NDArrayFileError(
            f"{where}: {magic_name} shape at byte {r.pos} has ndim {ndim}, more than numpy's "
            f"limit of {_MAX_NDIM} dimensions"
        )
    if ndim == 0:
        return ()
    return r.unpack(f"<{ndim}{fmt_char}", where, "shape dimensions")


def _check_dims(dims: tuple[int, ...], where: str, offset: int, allow_unknown: bool) -> None:
    for axis, dim in enumerate(dims):
        if dim < 0 and not (allow_unknown and dim == -1):
            expected = "-1 (unknown) or >= 0" if allow_unknown else ">= 0"
            raise NDArrayFileError(
                f"{where}: shape at byte {offset} has dimension {axis} = {dim}, expected "
                f"{expected}"
            )


def _read_payload(r: _Reader, dims: tuple[int, ...], where: str) -> np.ndarray:
    """Read context, type flag and raw data that follow a known shape."""
    ctx_at = r.pos
    dev_type, dev_id = r.unpack("<ii", where, "context (dev_type, dev_id)")
    if dev_type not in _DEVICE_TYPES:
        known = ", ".join(f"{k} {v}" for k, v in _DEVICE_TYPES.items())
        raise NDArrayFileError(
            f"{where}: expected a context dev_type ({known}) at byte {ctx_at}, found {dev_type}"
        )
    if dev_id < 0:
        raise NDArrayFileError(
            f"{where}: expected a context dev_id >= 0 at byte {ctx_at + 4}, found {dev_id}"
        )
    flag_at = r.pos
    (flag,) = r.unpack("<i", where, "type flag")
    dtype = TYPE_FLAGS.get(flag)
    if dtype is None:
        raise NDArrayFileError(
            f"{where}: expected a type flag 0-{max(TYPE_FLAGS)} at byte {flag_at}, "
            f"found {flag}"
        )
    count = 1
    for dim in dims:
        count *= dim
    start = r.need(count * dtype.itemsize, where, f"{dtype} data")
    flat = np.frombuffer(r.buf, dtype=dtype, count=count, offset=start)
    try:
        arr = flat.reshape(dims).copy()  # owns its memory, writable, C order
    except ValueError as err:  # e.g. a zero-size shape whose other dims overflow numpy
        raise NDArrayFileError(f"{where}: numpy cannot represent shape {dims}: {err}") from None
    if _BIG_ENDIAN_HOST and dtype.itemsize > 1:
        arr.byteswap(inplace=True)
    return arr


def _read_record(r: _Reader, index: int) -> _ArrayOrNone:
    where = f"record {index}"
    magic_at = r.pos
    (magic,) = r.unpack("<I", where, "NDArray magic")

    if magic in (NDARRAY_V2_MAGIC, NDARRAY_V3_MAGIC):
        v3 = magic == NDARRAY_V3_MAGIC
        version = "V3" if v3 else "V2"
        stype_at = r.pos
        (stype,) = r.unpack("<i", where, "storage type")
        if stype in _STORAGE_NAMES:
            raise NDArrayFileError(
                f"{where} (byte {magic_at}): sparse storage type {stype} "
                f"({_STORAGE_NAMES[stype]}) is not supported; only dense records "
                "(storage type 0) can be read"
            )
        if stype != 0:
            raise NDArrayFileError(
                f"{where}: expected storage type 0 (dense) at byte {stype_at}, found {stype}"
            )
        shape_at = r.pos
        (ndim,) = r.unpack("<i", where, "shape ndim")
        if ndim < 0:
            raise NDArrayFileError(
                f"{where}: expected a {version} shape ndim >= 0 at byte {shape_at}, "
                f"found {ndim}"
            )
        dims = _read_dims(r, ndim, "q", where, version)
        _check_dims(dims, where, shape_at, allow_unknown=v3)
        if v3 and -1 in dims:
            return None  # np-shape semantics: unknown shape = none array, record ends
        if not v3 and ndim == 0:
            return None  # legacy semantics: ndim 0 = none array, record ends
        return _read_payload(r, dims, where)

    if magic == NDARRAY_V1_MAGIC:
        shape_at = r.pos
        (ndim,) = r.unpack("<i", where, "shape ndim")
        if ndim < 0:
            raise NDArrayFileError(
                f"{where}: expected a V1 shape ndim >= 0 at byte {shape_at}, found {ndim}"
            )
        dims = _read_dims(r, ndim, "q", where, "V1")
        _check_dims(dims, where, shape_at, allow_unknown=False)
    elif magic <= _MAX_NDIM:
        # Pre-V1 layout: the word just read is ndim, then uint32 dims.
        dims = _read_dims(r, magic, "I", where, "legacy")
    else:
        raise NDArrayFileError(
            f"{where}: expected NDArray magic 0x{NDARRAY_V2_MAGIC:08X} (V2), "
            f"0x{NDARRAY_V3_MAGIC:08X} (V3), 0x{NDARRAY_V1_MAGIC:08X} (V1) or a legacy "
            f"ndim <= {_MAX_NDIM} at byte {magic_at}, found 0x{magic:08X}"
        )
    if not dims:
        return None  # V1/legacy: ndim 0 = none array, record ends
    return _read_payload(r, dims, where)


def loads(buf: bytes | bytearray | memoryview) -> list[_ArrayOrNone] | dict[str, _ArrayOrNone]:
    """Parse an NDArray list file held in memory, as ``mx.nd.load`` / ``load_frombuffer``.

    Returns a list when the file has no names (``mx.nd.save(f, list)``; an empty dict is
    saved without names, so it loads back as ``[]``, as in MXNet) and a dict
    ``name -> array`` in file order otherwise.  Arrays are fresh,
    writable, native-byte-order numpy arrays with the dtype of the record's type flag;
    "none" records come back as ``None``.  V2, V3, V1 and legacy records are accepted (and
    may be mixed); sparse records are refused.

    Raises ``NDArrayFileError`` (a ``ValueError``) if anything is wrong: bad magic,
    truncation, unknown storage type / type flag / device, a names count that is neither
    0 nor the number of arrays, undecodable or duplicate names, or trailing bytes.
    """
    view = memoryview(buf).cast("B")
    r = _Reader(view)
    magic, _reserved = r.unpack("<QQ", "the file header", "list magic and reserved word")
    if magic != LIST_MAGIC:
        raise NDArrayFileError(
            f"expected NDArray list magic 0x{LIST_MAGIC:X} at byte 0, found 0x{magic:X}"
        )
    count_at = r.pos
    (n_arrays,) = r.unpack("<Q", "the file header", "array count")
    if n_arrays * 4 > r.size - r.pos:
        raise NDArrayFileError(
            f"array count {n_arrays} at byte {count_at} cannot fit: only {r.size - r.pos} "
            "bytes follow and every record needs at least 4"
        )
    arrays = [_read_record(r, i) for i in range(n_arrays)]

    names_at = r.pos
    (n_names,) = r.unpack("<Q", "the names list", "names count")
    if n_names not in (0, n_arrays):
        raise NDArrayFileError(
            f"names count {n_names} does not match {n_arrays} arrays (expected 0 or "
            f"{n_arrays}; count at byte {names_at})"
        )
    names: list[str] = []
    for i in range(n_names):
        where = f"name {i}"
        len_at = r.pos
        (length,) = r.unpack("<Q", where, "name length")
        start = r.need(length, where, "name text")
        try:
            name = bytes(view[start : start + length]).decode("utf-8")
        except UnicodeDecodeError as err:
            raise NDArrayFileError(
                f"{where} at byte {len_at}: expected UTF-8 text, found invalid bytes ({err})"
            ) from None
        names.append(name)
    if r.pos != r.size:
        raise NDArrayFileError(
            f"trailing {r.size - r.pos} bytes after the names list (which ends at byte {r.pos})"
        )
    if not names:
        return arrays
    result: dict[str, _ArrayOrNone] = {}
    for i, (name, arr) in enumerate(zip(names, arrays)):
        if name in result:
            raise NDArrayFileError(f"name {i} {name!r} duplicates an earlier name")
        result[name] = arr
    return result


# --------------------------------------------------------------------------- files


def save(path: str | os.PathLike[str], data: Any, *, np_shape: bool | None = None) -> None:
    """Write ``data`` to ``path`` in MXNet's NDArray list format (``mx.nd.save``).

    ``data`` and ``np_shape`` are as for ``dumps``.  The write is atomic (see
    ``write_atomic``): on any error an existing ``path`` is left untouched and no
    temporary file remains.
    """
    write_atomic(path, dumps(data, np_shape=np_shape))


def load(path: str | os.PathLike[str]) -> list[_ArrayOrNone] | dict[str, _ArrayOrNone]:
    """Read an NDArray list file (``mx.nd.load``): a list, or a dict when names are stored.

    See ``loads`` for the result.  Raises ``NDArrayFileError`` (message prefixed with the
    path) for a corrupt file and ``OSError`` if it cannot be read.
    """
    with open(path, "rb") as handle:
        buf = handle.read()
    try:
        return loads(buf)
    except NDArrayFileError as err:
        raise NDArrayFileError(f"{os.fsdecode(os.fspath(path))}: {err}") from None
