"""``mx.image``: decoding and simple augmentation helpers (MXNet 1.9 ``python/mxnet/image``).

Decoding uses Pillow, an optional dependency (``pip install hybrid[image]``).  Every
function accepts a numpy array or an NDArray and returns the same kind; the readers
(:func:`imread`, :func:`imdecode`) return an NDArray in the main process and a numpy
array inside DataLoader workers.  Images are HWC, RGB by default, uint8.

Randomness (``random_crop``, ``random_size_crop``, interpolation code 10) uses
Python's ``random`` module, as MXNet does.
"""

from __future__ import annotations

import io
import random as _pyrandom
import warnings
from numbers import Number
from typing import Any

import numpy as np

from . import _ops
from ._array import fresh, is_ndarray, like, mxnet_error, to_numpy

__all__ = [
    "imread",
    "imdecode",
    "imresize",
    "scale_down",
    "resize_short",
    "fixed_crop",
    "random_crop",
    "center_crop",
    "color_normalize",
    "random_size_crop",
    "copyMakeBorder",
    "imrotate",
    "random_rotate",
]

_PIL_HINT = (
    "Decoding and encoding images needs Pillow, which is an optional dependency of "
    "hybrid. Install it with:  pip install hybrid[image]   (or: pip install Pillow)"
)


def _pil_image():
    try:
        from PIL import Image  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - exercised only without Pillow
        raise ImportError(_PIL_HINT) from err
    return Image


def decode_to_numpy(buf: bytes, flag: int = 1, to_rgb: bool = True) -> np.ndarray:
    """Decode JPEG/PNG/... bytes to a numpy uint8 array.

    ``flag=1``: colour, shape (H, W, 3), RGB if ``to_rgb`` else BGR (OpenCV's order).
    ``flag=0``: grayscale, shape (H, W, 1).  ``flag=-1``: unchanged (as OpenCV's
    ``IMREAD_UNCHANGED``: 2-D for gray images, 3 or 4 channels otherwise, channel
    order following ``to_rgb``).
    """
    image_cls = _pil_image()
    if len(buf) == 0:
        raise mxnet_error("Check failed: buf.size() != 0: Input buffer cannot be empty")
    try:
        img = image_cls.open(io.BytesIO(buf))
        img.load()
    except Exception as err:  # noqa: BLE001 - Pillow raises several types
        raise mxnet_error(f"Decoding failed. Invalid image file. ({err})") from err
    if flag == 0:
        if img.mode not in ("L",):
            img = img.convert("RGB").convert("L")
        return np.asarray(img, dtype=np.uint8)[:, :, None].copy()
    if flag > 0:
        arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
        return arr.copy() if to_rgb else arr[:, :, ::-1].copy()
    # unchanged
    if img.mode == "L":
        return np.asarray(img, dtype=np.uint8).copy()
    if img.mode == "I;16" or img.mode == "I":
        return np.asarray(img).copy()
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode or img.mode == "P" else "RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if not to_rgb:
        arr = np.concatenate([arr[:, :, 2::-1], arr[:, :, 3:]], axis=2)
    return arr.copy()


def encode_from_numpy(img: np.ndarray, img_fmt: str = ".jpg", quality: int = 95,
                      bgr: bool = True) -> bytes:
    """Encode an HWC (or HW) uint8 image to JPEG/PNG bytes.

    ``bgr=True`` means the channels are in OpenCV's BGR order (as
    ``recordio.pack_img`` expects).  For PNG, ``quality`` is the zlib compression
    level 0-9 (OpenCV's ``IMWRITE_PNG_COMPRESSION``).
    """
    image_cls = _pil_image()
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"encode: expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and bgr:
        arr = np.concatenate([arr[:, :, 2::-1], arr[:, :, 3:]], axis=2)
    pil = image_cls.fromarray(np.ascontiguousarray(arr))
    out = io.BytesIO()
    fmt = img_fmt.lower().lstrip(".")
    if fmt in ("jpg", "jpeg"):
        pil.save(out, format="JPEG", quality=int(quality))
    elif fmt == "png":
        pil.save(out, format="PNG", compress_level=max(0, min(9, int(quality))))
    else:
        pil.save(out, format=fmt.upper())
    return out.getvalue()


def imdecode(buf: Any, flag: int = 1, to_rgb: bool | int = True, out: Any = None):
    """Decode an image from a byte buffer (``bytes``, ``bytearray``, uint8 numpy or NDArray).

    Returns an HWC uint8 NDArray: (H, W, 3) RGB for ``flag=1`` (BGR if
    ``to_rgb=0``), (H, W, 1) for ``flag=0``.  A ``str`` buffer raises ValueError as
    in MXNet.
    """
    if is_ndarray(buf):
        data = to_numpy(buf).astype(np.uint8, copy=False).tobytes()
    elif isinstance(buf, (bytes, bytearray, memoryview)):
        data = bytes(buf)
    elif isinstance(buf, np.ndarray):
        data = buf.astype(np.uint8, copy=False).tobytes()
    else:
        raise ValueError(
            "buf must be of type bytes, bytearray or numpy.ndarray,"
            "if you would like to input type str, please convert to bytes"
        )
    arr = decode_to_numpy(data, int(flag), bool(to_rgb))
    if out is not None:
        out[:] = fresh(arr) if is_ndarray(out) else arr
        return out
    return fresh(arr)


def imread(filename: str, flag: int = 1, to_rgb: bool | int = True, out: Any = None):
    """Read and decode an image file; see :func:`imdecode` for ``flag`` and ``to_rgb``."""
    try:
        with open(filename, "rb") as f:
            data = f.read()
    except OSError as err:
        raise mxnet_error(f"Imread: '{filename}' couldn't open file: {err}") from err
    arr = decode_to_numpy(data, int(flag), bool(to_rgb))
    if out is not None:
        out[:] = fresh(arr) if is_ndarray(out) else arr
        return out
    return fresh(arr)


def imresize(src: Any, w: int, h: int, interp: int = 1):
    """Resize an HWC image to width ``w`` and height ``h`` (interpolation codes as OpenCV)."""
    return like(_ops.imresize(to_numpy(src), w, h, interp), src)


def scale_down(src_size: tuple, size: tuple) -> tuple[int, int]:
    """Shrink the crop ``size`` (w, h) to fit in ``src_size`` (w, h), keeping its ratio."""
    w, h = size
    sw, sh = src_size
    if sh < h:
        w, h = float(w * sh) / h, sh
    if sw < w:
        w, h = sw, float(h * sw) / w
    return int(w), int(h)


def copyMakeBorder(src: Any, top: int, bot: int, left: int, right: int,  # noqa: N802
                   type: int = 0, value: float = 0.0):  # noqa: A002 - MXNet's name
    """Pad an HWC image: ``type`` 0 constant (``value``), 1 replicate, 2 reflect, 4 reflect101."""
    arr = to_numpy(src)
    pad = ((top, bot), (left, right), (0, 0))
    modes = {0: "constant", 1: "edge", 2: "symmetric", 4: "reflect"}
    if type not in modes:
        raise ValueError(f"copyMakeBorder: unsupported border type {type}; use 0, 1, 2 or 4")
    if type == 0:
        out = np.pad(arr, pad, mode="constant", constant_values=value)
    else:
        out = np.pad(arr, pad, mode=modes[type])
    return like(out, src)


def resize_short(src: Any, size: int, interp: int = 2):
    """Resize so that the shorter side is ``size`` (the other side keeps the aspect ratio)."""
    h, w = src.shape[0], src.shape[1]
    if h > w:
        new_h, new_w = size * h // w, size
    else:
        new_h, new_w = size, size * w // h
    return imresize(src, new_w, new_h, interp=_ops.get_interp_method(interp, (h, w, new_h, new_w)))


def fixed_crop(src: Any, x0: int, y0: int, w: int, h: int, size: tuple | None = None,
               interp: int = 2):
    """Crop ``src[y0:y0+h, x0:x0+w]`` and optionally resize the crop to ``size`` (w, h)."""
    arr = to_numpy(src)
    out = np.ascontiguousarray(arr[y0 : y0 + h, x0 : x0 + w])
    if size is not None and (w, h) != tuple(size):
        sizes = (h, w, size[1], size[0])
        out = _ops.imresize(out, size[0], size[1], _ops.get_interp_method(interp, sizes))
    return like(out, src)


def random_crop(src: Any, size: tuple, interp: int = 2):
    """Random crop of ``size`` (w, h) (scaled down to fit); returns ``(out, (x0, y0, w, h))``."""
    h, w = src.shape[0], src.shape[1]
    new_w, new_h = scale_down((w, h), size)
    x0 = _pyrandom.randint(0, w - new_w)
    y0 = _pyrandom.randint(0, h - new_h)
    out = fixed_crop(src, x0, y0, new_w, new_h, size, interp)
    return out, (x0, y0, new_w, new_h)


def center_crop(src: Any, size: tuple, interp: int = 2):
    """Centre crop of ``size`` (w, h) (scaled down to fit); returns ``(out, (x0, y0, w, h))``."""
    h, w = src.shape[0], src.shape[1]
    new_w, new_h = scale_down((w, h), size)
    x0 = int((w - new_w) / 2)
    y0 = int((h - new_h) / 2)
    out = fixed_crop(src, x0, y0, new_w, new_h, size, interp)
    return out, (x0, y0, new_w, new_h)


def color_normalize(src: Any, mean: Any, std: Any = None):
    """``(src - mean) / std``.  Like MXNet, an NDArray ``src`` is updated in place."""
    if is_ndarray(src):
        if mean is not None:
            src -= mean
        if std is not None:
            src /= std
        return src
    out = np.asarray(src)
    if mean is not None:
        out = out - to_numpy(mean)
    if std is not None:
        out = out / to_numpy(std)
    return out


def random_size_crop(src: Any, size: tuple, area: Any, ratio: tuple, interp: int = 2,
                     **kwargs):
    """Inception-style crop: random area fraction and aspect ratio, resized to ``size``.

    Tries 10 times to draw ``target_area = U(area) * h * w`` and
    ``ratio = exp(U(log ratio))``; falls back to :func:`center_crop`.  Returns
    ``(out, (x0, y0, w, h))``.
    """
    h, w = src.shape[0], src.shape[1]
    src_area = h * w
    if "min_area" in kwargs:
        warnings.warn("`min_area` is deprecated. Please use `area` instead.",
                      DeprecationWarning, stacklevel=2)
        area = kwargs.pop("min_area")
    if kwargs:
        raise TypeError(f"unexpected keyword arguments for `random_size_crop`: {sorted(kwargs)}")
    if isinstance(area, Number):
        area = (area, 1.0)
    for _ in range(10):
        target_area = _pyrandom.uniform(area[0], area[1]) * src_area
        log_ratio = (np.log(ratio[0]), np.log(ratio[1]))
        new_ratio = np.exp(_pyrandom.uniform(*log_ratio))
        new_w = int(round(np.sqrt(target_area * new_ratio)))
        new_h = int(round(np.sqrt(target_area / new_ratio)))
        if new_w <= w and new_h <= h:
            x0 = _pyrandom.randint(0, w - new_w)
            y0 = _pyrandom.randint(0, h - new_h)
            out = fixed_crop(src, x0, y0, new_w, new_h, size, interp)
            return out, (x0, y0, new_w, new_h)
    return center_crop(src, size, interp)


def imrotate(src: Any, rotation_degrees: Any, zoom_in: bool = False, zoom_out: bool = False):
    """Rotate a float32 CHW image or NCHW batch by ``rotation_degrees`` (scalar, or one
    angle per image) about its centre; see MXNet's ``image.imrotate``."""
    return like(_ops.imrotate(to_numpy(src), to_numpy(rotation_degrees) if
                              is_ndarray(rotation_degrees) else rotation_degrees,
                              zoom_in, zoom_out), src)


def random_rotate(src: Any, angle_limits: tuple, zoom_in: bool = False, zoom_out: bool = False):
    """Rotate by an angle drawn uniformly from ``angle_limits`` (one per image of a batch)."""
    if len(src.shape) == 3:
        rotation_degrees = np.random.uniform(*angle_limits)
    else:
        rotation_degrees = np.random.uniform(*angle_limits, size=src.shape[0])
    return imrotate(src, rotation_degrees, zoom_in=zoom_in, zoom_out=zoom_out)
