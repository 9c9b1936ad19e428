"""``mx.recordio``: read and write MXNet's RecordIO files (``.rec`` and ``.idx``).

The binary layout is dmlc-core's RecordIO, byte for byte, so files written by
MXNet's ``im2rec`` read here and files written here read in MXNet:

* every record starts with the magic ``0xced7230a`` (little-endian uint32) and an
  ``lrecord`` uint32 = ``cflag << 29 | length``, followed by ``length`` bytes of
  payload and zero padding up to a multiple of 4 bytes;
* a payload that contains the magic number at a 4-byte aligned offset is split
  there into parts (cflag 1 = first, 2 = middle, 3 = last; 0 = whole record) and
  the magic itself is dropped; the reader puts it back between the parts;
* the ``.idx`` file of :class:`MXIndexedRecordIO` is text, one ``key\\tpos\\n``
  line per record, ``pos`` being the byte offset of the record's first header.

Record payloads written by :func:`pack` start with the ``IRHeader`` struct
``IfQQ`` (flag, label, id, id2; 24 bytes, little-endian); ``flag > 0`` means that
``flag`` float32 labels follow the header and ``label`` is 0.

Writers are atomic: data goes to a temporary file next to the target that is
renamed over it on :meth:`MXRecordIO.close`, so a crash never leaves a truncated
``.rec`` or an ``.idx`` pointing past the end of its ``.rec``.
"""

from __future__ import annotations

import numbers
import os
import struct
import tempfile
from collections import namedtuple
from typing import Any

import numpy as np

__all__ = [
    "MXRecordIO",
    "MXIndexedRecordIO",
    "IRHeader",
    "pack",
    "unpack",
    "pack_img",
    "unpack_img",
]

_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", _MAGIC)
_LEN_MASK = (1 << 29) - 1


def _encode_lrec(cflag: int, length: int) -> bytes:
    return struct.pack("<II", _MAGIC, (cflag << 29) | length)


def _pad(length: int) -> bytes:
    return b"\x00" * ((-length) % 4)


def _encode_record(buf: bytes) -> bytes:
    """The on-disk bytes of one record (header(s), payload parts, padding)."""
    size = len(buf)
    if size >= (1 << 29):
        raise ValueError(f"RecordIO only accepts records smaller than 2^29 bytes, got {size}")
    parts = []
    dptr = 0
    view = memoryview(buf)
    # The magic can only be split out at 4-byte aligned offsets (dmlc WriteRecord).
    pos = buf.find(_MAGIC_BYTES)
    lower_align = (size >> 2) << 2
    while pos != -1 and pos < lower_align:
        if pos % 4 == 0:
            parts.append(_encode_lrec(1 if dptr == 0 else 2, pos - dptr))
            parts.append(view[dptr:pos])
            dptr = pos + 4
            pos = buf.find(_MAGIC_BYTES, dptr)
        else:
            pos = buf.find(_MAGIC_BYTES, pos + 1)
    parts.append(_encode_lrec(3 if dptr != 0 else 0, size - dptr))
    parts.append(view[dptr:])
    parts.append(_pad(size))
    return b"".join(parts)


class MXRecordIO:
    """Sequential reader/writer of a RecordIO file.

    Parameters
    ----------
    uri : str
        Path of the ``.rec`` file.
    flag : {'r', 'w'}
        ``'r'`` reads, ``'w'`` writes (truncating; the file appears on ``close()``).

    ``read()`` returns the next record's payload as ``bytes``, or ``None`` at the end
    of the file.  A reader can be pickled (it reopens its file at the first record,
    like MXNet's) and reopens itself automatically in a forked child process.
    """

    def __init__(self, uri: str, flag: str):
        self.uri = os.fspath(uri)
        self.flag = flag
        self.pid: int | None = None
        self.is_open = False
        self.writable = False
        self._file = None
        self._tmp_path: str | None = None
        self.open()

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> None:
        """Open the file (called by the constructor and by :meth:`reset`)."""
        if self.flag == "w":
            directory = os.path.dirname(os.path.abspath(self.uri))
            fd, self._tmp_path = tempfile.mkstemp(
                prefix="." + os.path.basename(self.uri) + ".", suffix=".tmp", dir=directory
            )
            self._file = os.fdopen(fd, "wb")
            self.writable = True
        elif self.flag == "r":
            try:
                self._file = open(self.uri, "rb")  # noqa: SIM115 - closed in close()
            except OSError as err:
                raise OSError(
                    f"MXRecordIO: cannot open RecordIO file '{self.uri}' for reading: {err}"
                ) from err
            self.writable = False
        else:
            raise ValueError(f"Invalid flag {self.flag!r}: expected 'r' or 'w'")
        self.pid = os.getpid()
        self.is_open = True

    def close(self) -> None:
        """Close the file; a writer's temporary file is renamed to ``uri`` now."""
        if not self.is_open:
            return
        f, self._file = self._file, None
        self.is_open = False
        self.pid = None
        if self.writable:
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self._tmp_path, self.uri)
            self._tmp_path = None
        else:
            f.close()

    def _abort(self) -> None:
        """Close a writer without publishing its file (used when the object dies)."""
        if self.is_open and self.writable and self._file is not None:
            self._file.close()
            self._file = None
            self.is_open = False
            try:
                os.unlink(self._tmp_path)
            except OSError:
                pass

    def reset(self) -> None:
        """Reopen: a reader goes back to the first record (a writer starts over)."""
        self.close()
        self.open()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from __del__
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.writable:
            self._abort()
        else:
            self.close()

    def __getstate__(self):
        if self.writable:
            raise TypeError("An MXRecordIO opened for writing cannot be pickled")
        d = dict(self.__dict__)
        d["_file"] = None
        d["is_open_before_pickle"] = self.is_open
        d["is_open"] = False
        d["pid"] = None
        return d

    def __setstate__(self, d):
        reopen = d.pop("is_open_before_pickle", False)
        self.__dict__.update(d)
        if reopen:
            self.open()

    def _check_pid(self, allow_reset: bool = False) -> None:
        if self.pid != os.getpid():
            if allow_reset:
                self.reset()
            else:
                raise RuntimeError("Forbidden operation in multiple processes")

    # -- I/O ---------------------------------------------------------------------------
    def write(self, buf: bytes) -> None:
        """Append one record."""
        if not self.writable:
            raise RuntimeError(f"MXRecordIO '{self.uri}' was opened with flag 'r', not 'w'")
        self._check_pid(allow_reset=False)
        self._file.write(_encode_record(bytes(buf)))

    def read(self) -> bytes | None:
        """The next record's payload, or ``None`` at the end of the file."""
        if self.writable:
            raise RuntimeError(f"MXRecordIO '{self.uri}' was opened with flag 'w', not 'r'")
        self._check_pid(allow_reset=True)
        f = self._file
        out = []
        while True:
            head = f.read(8)
            if not head:
                if out:
                    raise ValueError(f"Invalid RecordIO file '{self.uri}': truncated record")
                return None
            if len(head) != 8:
                raise ValueError(f"Invalid RecordIO file '{self.uri}': truncated header")
            magic, lrec = struct.unpack("<II", head)
            if magic != _MAGIC:
                raise ValueError(
                    f"Invalid RecordIO file '{self.uri}': bad magic 0x{magic:08x} at byte "
                    f"{f.tell() - 8} (expected 0x{_MAGIC:08x})"
                )
            cflag = (lrec >> 29) & 7
            length = lrec & _LEN_MASK
            upper = (length + 3) & ~3
            data = f.read(upper)
            if len(data) != upper:
                raise ValueError(f"Invalid RecordIO file '{self.uri}': truncated payload")
            out.append(data[:length])
            if cflag in (0, 3):
                break
            out.append(_MAGIC_BYTES)
        return out[0] if len(out) == 1 else b"".join(out)

    def tell(self) -> int:
        """Current byte offset of the writer (or reader)."""
        return self._file.tell()


class MXIndexedRecordIO(MXRecordIO):
    """RecordIO with random access through an ``.idx`` text file (``key\\tpos`` lines).

    Parameters
    ----------
    idx_path : str
        Path of the index file.
    uri : str
        Path of the ``.rec`` file.
    flag : {'r', 'w'}
    key_type : type, default int
        Type the keys are parsed to (and written from).

    Attributes ``keys`` (in file order) and ``idx`` (key -> byte offset).
    """

    def __init__(self, idx_path: str, uri: str, flag: str, key_type: type = int):
        self.idx_path = os.fspath(idx_path)
        self.idx: dict[Any, int] = {}
        self.keys: list[Any] = []
        self.key_type = key_type
        self.fidx = None
        self._idx_tmp: str | None = None
        super().__init__(uri, flag)

    def open(self) -> None:
        super().open()
        self.idx = {}
        self.keys = []
        if self.writable:
            directory = os.path.dirname(os.path.abspath(self.idx_path))
            fd, self._idx_tmp = tempfile.mkstemp(
                prefix="." + os.path.basename(self.idx_path) + ".", suffix=".tmp", dir=directory
            )
            self.fidx = os.fdopen(fd, "w")
        else:
            try:
                with open(self.idx_path) as fin:
                    lines = fin.read().splitlines()
            except OSError as err:
                super().close()
                raise OSError(
                    f"MXIndexedRecordIO: cannot open index file '{self.idx_path}': {err}"
                ) from err
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                fields = line.strip().split("\t")
                if len(fields) < 2:
                    super().close()
                    raise ValueError(
                        f"Invalid index file '{self.idx_path}' line {lineno}: expected "
                        f"'key<TAB>position', got {line!r}"
                    )
                key = self.key_type(fields[0])
                self.idx[key] = int(fields[1])
                self.keys.append(key)

    def close(self) -> None:
        if not self.is_open:
            return
        writable = self.writable
        super().close()  # the .rec is in place before the .idx that points into it
        if writable and self.fidx is not None:
            self.fidx.flush()
            os.fsync(self.fidx.fileno())
            self.fidx.close()
            os.replace(self._idx_tmp, self.idx_path)
            self._idx_tmp = None
        self.fidx = None

    def _abort(self) -> None:
        if self.is_open and self.writable and self.fidx is not None:
            self.fidx.close()
            self.fidx = None
            try:
                os.unlink(self._idx_tmp)
            except OSError:
                pass
        super()._abort()

    def __getstate__(self):
        d = super().__getstate__()
        d["fidx"] = None
        return d

    def seek(self, idx: Any) -> None:
        """Position the reader at the record with key ``idx``."""
        if self.writable:
            raise RuntimeError("seek() needs a reader (flag 'r')")
        self._check_pid(allow_reset=True)
        try:
            pos = self.idx[idx]
        except KeyError:
            raise KeyError(
                f"key {idx!r} not in index '{self.idx_path}' ({len(self.keys)} records)"
            ) from None
        self._file.seek(pos)

    def read_idx(self, idx: Any) -> bytes | None:
        """The payload of the record with key ``idx``."""
        self.seek(idx)
        return self.read()

    def write_idx(self, idx: Any, buf: bytes) -> None:
        """Append a record under key ``idx`` and add ``key\\tpos`` to the index."""
        key = self.key_type(idx)
        pos = self.tell()
        self.write(buf)
        self.fidx.write(f"{key}\t{pos}\n")
        self.idx[key] = pos
        self.keys.append(key)


IRHeader = namedtuple("HEADER", ["flag", "label", "id", "id2"])
IRHeader.__doc__ = """Image record header: ``flag`` (number of float labels, 0 for one scalar
label), ``label`` (float, or array of ``flag`` floats), ``id`` and ``id2`` (uint64)."""

_IR_FORMAT = "<IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)


def pack(header: Any, s: bytes) -> bytes:
    """Prepend an ``IRHeader`` to ``s``.

    A scalar ``header.label`` is stored in the header (flag 0); an array label is
    stored as ``flag = label.size`` float32 values right after the header.
    """
    header = IRHeader(*header)
    if isinstance(header.label, numbers.Number):
        header = header._replace(flag=0)
    else:
        label = np.asarray(header.label, dtype=np.float32)
        header = header._replace(flag=label.size, label=0)
        s = label.tobytes() + bytes(s)
    return struct.pack(_IR_FORMAT, int(header.flag), float(header.label), int(header.id),
                       int(header.id2)) + bytes(s)


def unpack(s: bytes) -> tuple[IRHeader, bytes]:
    """Split a record into ``(IRHeader, payload)``; array labels come back as float32 numpy."""
    if len(s) < _IR_SIZE:
        raise ValueError(f"unpack: record of {len(s)} bytes is shorter than the "
                         f"{_IR_SIZE}-byte IRHeader")
    header = IRHeader(*struct.unpack(_IR_FORMAT, s[:_IR_SIZE]))
    s = s[_IR_SIZE:]
    if header.flag > 0:
        header = header._replace(label=np.frombuffer(s, np.float32, header.flag))
        s = s[header.flag * 4 :]
    return header, s


def unpack_img(s: bytes, iscolor: int = -1) -> tuple[IRHeader, np.ndarray]:
    """Unpack a record holding an encoded image; the image is a numpy array in BGR order.

    ``iscolor`` follows OpenCV's ``imdecode`` flag: -1 unchanged, 0 gray (2-D),
    1 colour (H, W, 3).  Needs Pillow.
    """
    from .image.image import decode_to_numpy  # noqa: PLC0415

    header, s = unpack(s)
    img = decode_to_numpy(s, flag=iscolor, to_rgb=False)
    if iscolor == 0:
        img = img[:, :, 0]
    return header, img


def pack_img(header: Any, img: np.ndarray, quality: int = 95, img_fmt: str = ".jpg") -> bytes:
    """Encode ``img`` (HWC uint8 in BGR order, as OpenCV) and :func:`pack` it with ``header``.

    ``quality`` is the JPEG quality, or the PNG compression level for ``.png``.
    Needs Pillow.
    """
    from .image.image import encode_from_numpy  # noqa: PLC0415

    fmt = img_fmt.upper()
    if fmt not in (".JPG", ".JPEG", ".PNG"):
        raise ValueError(f"pack_img: img_fmt must be '.jpg', '.jpeg' or '.png', got {img_fmt!r}")
    if fmt == ".PNG":
        quality = min(int(quality), 9)  # OpenCV clamps the PNG compression level to 0-9
    buf = encode_from_numpy(np.asarray(img), img_fmt=img_fmt, quality=quality, bgr=True)
    return pack(header, buf)
