"""The image math behind ``mx.image``, ``mx.nd.image``-style transforms and datasets.

Pure numpy (no JAX), so it runs inside DataLoader workers.  Every function takes and
returns numpy arrays laid out as MXNet's ``nd.image`` operators expect:

* HWC images / NHWC batches for resize, crop, flips and the colour operators;
* CHW / NCHW tensors for ``normalize``; ``to_tensor`` goes from (N)HWC to (N)CHW.

Formulas follow MXNet 1.9's ``src/operator/image/image_random-inl.h``:

* integer outputs of the colour operators are ``saturate_cast``: clipped to
  [0, 255] and then truncated (C ``static_cast``), not rounded;
* contrast uses the gray mean with coefficients (0.299, 0.587, 0.114);
* saturation reproduces MXNet 1.9's kernel exactly, including its use of only the
  last gray term (``gray = B * 0.114``: the kernel assigns instead of accumulating);
* hue goes through MXNet's RGB -> HLS -> RGB conversion;
* lighting adds the AlexNet PCA noise with MXNet's eigen values/vectors.

Resizing follows OpenCV's ``cv::resize`` (which MXNet calls) for the interpolation
codes 0 nearest, 1 bilinear, 2 area, 3 bicubic, 4 Lanczos: same source-pixel mapping
and kernels, computed in floating point with OpenCV's 11-bit quantized coefficients for uint8
(bilinear/area) and halves rounded up; OpenCV's fixed-point arithmetic can still
differ by 1 in rare cases.
"""

from __future__ import annotations

import functools
import math
import random as _pyrandom
from collections.abc import Sequence

import numpy as np

GRAY_COEF = (0.299, 0.587, 0.114)
_EIG = np.array(
    [
        [55.46 * -0.5675, 4.794 * 0.7192, 1.148 * 0.4009],
        [55.46 * -0.5808, 4.794 * -0.0045, 1.148 * -0.8140],
        [55.46 * -0.5836, 4.794 * -0.6948, 1.148 * 0.4203],
    ],
    dtype=np.float32,
)


# ---------------------------------------------------------------------------------------
# shape checks


def _check_image(x: np.ndarray, op: str, channels: tuple[int, ...] | None = (1, 3)) -> None:
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected an image of shape (height, width, channels) or a batch "
            f"(N, height, width, channels), but got shape {x.shape}"
        )
    if channels is not None and x.shape[-1] not in channels:
        raise ValueError(
            f"{op}: the last dimension must be the channel dimension with "
            f"{' or '.join(map(str, channels))} elements, but got shape {x.shape}"
        )


def _saturate(val: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """MXNet's ``saturate_cast``: uint8 clips to [0, 255] then truncates; others cast."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.clip(val, 0.0, 255.0).astype(np.uint8)
    return val.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------
# tensor conversion


def to_tensor(x: np.ndarray) -> np.ndarray:
    """(N)HWC of any dtype in [0, 255] -> (N)CHW float32 in [0, 1] (``x / 255``)."""
    if x.ndim not in (3, 4):
        raise ValueError(
            "to_tensor: input image must have shape (height, width, channels), or "
            f"(N, height, width, channels) but got {x.shape}"
        )
    src = x.transpose(2, 0, 1) if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    out = np.empty(src.shape, dtype=np.float32)
    np.divide(src, np.float32(255.0), out=out, casting="unsafe")
    return out


def _per_channel(value, nchannels: int, name: str, shape) -> np.ndarray:
    vals = np.atleast_1d(np.asarray(value, dtype=np.float32)).ravel()
    if vals.size not in (1, nchannels):
        raise ValueError(
            f"normalize: invalid {name} for input with shape {shape}: {name} must have "
            f"either 1 or {nchannels} elements, but got {vals.size}"
        )
    return np.broadcast_to(vals, (nchannels,)).reshape(nchannels, 1, 1)


def normalize(x: np.ndarray, mean=0.0, std=1.0) -> np.ndarray:
    """``(x - mean[c]) / std[c]`` per channel of a CHW tensor or NCHW batch.

    ``mean``/``std`` are scalars or sequences of 1 or C values; the output keeps
    the input dtype.
    """
    if x.ndim not in (3, 4):
        raise ValueError(
            "normalize: input tensor must have shape (channels, height, width), or "
            f"(N, channels, height, width), but got {x.shape}"
        )
    c = x.shape[-3]
    m = _per_channel(mean, c, "mean", x.shape)
    s = _per_channel(std, c, "std", x.shape)
    return normalize_prepared(x, m, s)


def normalize_prepared(x: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`normalize` with ``mean``/``std`` already shaped (C, 1, 1) float32."""
    if x.dtype == np.float32:
        out = np.subtract(x, m)
        np.divide(out, s, out=out)
        return out
    return ((x.astype(np.float32) - m) / s).astype(x.dtype)


# ---------------------------------------------------------------------------------------
# geometry


def flip_left_right(x: np.ndarray) -> np.ndarray:
    """Mirror an HWC image / NHWC batch horizontally (a copy)."""
    _check_image(x, "flip_left_right", None)
    return np.ascontiguousarray(x[..., :, ::-1, :])


def flip_top_bottom(x: np.ndarray) -> np.ndarray:
    """Mirror an HWC image / NHWC batch vertically (a copy)."""
    _check_image(x, "flip_top_bottom", None)
    return np.ascontiguousarray(x[..., ::-1, :, :])


def crop(x: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """``x[y0:y0+height, x0:x0+width]`` of an HWC image or NHWC batch, bounds checked."""
    _check_image(x, "crop", None)
    h, w = x.shape[-3], x.shape[-2]
    if x0 < 0 or y0 < 0 or width <= 0 or height <= 0:
        raise ValueError(
            f"crop: x={x0}, y={y0} must be >= 0 and width={width}, height={height} > 0"
        )
    if x0 + width > w:
        raise ValueError(
            f"crop: x + width should not be larger than input width: {x0} + {width} > {w}"
        )
    if y0 + height > h:
        raise ValueError(
            f"crop: y + height should not be larger than input height: {y0} + {height} > {h}"
        )
    return np.ascontiguousarray(x[..., y0 : y0 + height, x0 : x0 + width, :])


def get_interp_method(interp: int, sizes: tuple = ()) -> int:
    """MXNet's ``_get_interp_method``: resolve 9 (auto) and 10 (random) to 0-4."""
    if interp == 9:
        if sizes:
            if len(sizes) != 4:
                raise ValueError(f"sizes must be (oh, ow, nh, nw), got {sizes}")
            oh, ow, nh, nw = sizes
            if nh > oh and nw > ow:
                return 2
            if nh < oh and nw < ow:
                return 3
            return 1
        return 2
    if interp == 10:
        return _pyrandom.randint(0, 4)
    if interp not in (0, 1, 2, 3, 4):
        raise ValueError(f"Unknown interp method {interp}")
    return interp


def _cubic_coeffs(fx: np.ndarray) -> np.ndarray:
    a = -0.75
    x = fx
    c0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    c1 = ((a + 2) * x - (a + 3)) * x * x + 1
    c2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    c3 = 1 - c0 - c1 - c2
    return np.stack([c0, c1, c2, c3], axis=-1)


def _lanczos4_coeffs(fx: np.ndarray) -> np.ndarray:
    taps = np.arange(-3, 5, dtype=np.float64)
    d = fx[:, None] - taps[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(
            np.abs(d) < 1e-12,
            1.0,
            np.sin(np.pi * d / 4) * np.sin(np.pi * d) / (np.pi**2 * d * d / 4),
        )
    return w / w.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=256)
def _weights(n_in: int, n_out: int, interp: int, area_down: bool, quantize: bool):
    """(n_out, n_in) float32 interpolation matrix following cv::resize's mapping."""
    scale = n_in / n_out
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    dx = np.arange(n_out, dtype=np.float64)
    if interp == 2 and area_down:
        for o in range(n_out):
            fs1 = o * scale
            fs2 = fs1 + scale
            s1 = math.ceil(fs1)
            s2 = math.floor(fs2)
            cell = min(scale, n_in - fs1)
            if s1 - fs1 > 1e-3:
                mat[o, s1 - 1] += (s1 - fs1) / cell
            for s in range(s1, min(s2, n_in)):
                mat[o, s] += 1.0 / cell
            if fs2 - s2 > 1e-3 and s2 < n_in:
                mat[o, s2] += min(min(fs2 - s2, 1.0), cell) / cell
        return mat.astype(np.float32)
    if interp == 2:
        sx = np.floor(dx * scale).astype(np.int64)
        fx = (dx + 1) - (sx + 1) / scale
        fx = np.where(fx <= 0, 0.0, fx - np.floor(fx))
        taps = np.stack([1 - fx, fx], axis=-1)
        start = sx
    elif interp == 1:
        fxs = (dx + 0.5) * scale - 0.5
        sx = np.floor(fxs).astype(np.int64)
        fx = fxs - sx
        fx = np.where(sx < 0, 0.0, fx)
        sx = np.maximum(sx, 0)
        fx = np.where(sx >= n_in - 1, 0.0, fx)
        sx = np.minimum(sx, n_in - 1)
        taps = np.stack([1 - fx, fx], axis=-1)
        start = sx
    elif interp == 3:
        fxs = (dx + 0.5) * scale - 0.5
        sx = np.floor(fxs).astype(np.int64)
        taps = _cubic_coeffs(fxs - sx)
        start = sx - 1
    elif interp == 4:
        fxs = (dx + 0.5) * scale - 0.5
        sx = np.floor(fxs).astype(np.int64)
        taps = _lanczos4_coeffs(fxs - sx)
        start = sx - 3
    else:
        raise ValueError(f"Unknown interp method {interp}")
    if quantize:
        # OpenCV resizes 8-bit images with 11-bit fixed-point coefficients.
        taps = np.round(taps * 2048.0) / 2048.0
    for k in range(taps.shape[1]):
        idx = np.clip(start + k, 0, n_in - 1)
        np.add.at(mat, (np.arange(n_out), idx), taps[:, k])
    return mat.astype(np.float32)


def _resize_hwc(x: np.ndarray, w: int, h: int, interp: int) -> np.ndarray:
    in_h, in_w, c = x.shape
    if interp == 0:
        iy = np.minimum(np.floor(np.arange(h) * (in_h / h)).astype(np.int64), in_h - 1)
        ix = np.minimum(np.floor(np.arange(w) * (in_w / w)).astype(np.int64), in_w - 1)
        return np.ascontiguousarray(x[iy][:, ix])
    if (in_h, in_w) == (h, w):
        return x.copy()
    area_down = interp == 2 and in_w >= w and in_h >= h
    quantize = x.dtype == np.uint8 and interp in (1, 2) and not area_down
    wy = _weights(in_h, h, interp, area_down, quantize)
    wx = _weights(in_w, w, interp, area_down, quantize)
    xf = x.astype(np.float32, copy=False)
    tmp = (wy @ xf.reshape(in_h, in_w * c)).reshape(h, in_w, c)
    out = np.matmul(wx[None], tmp)
    if np.issubdtype(x.dtype, np.integer):
        # OpenCV's fixed-point resize rounds halves up
        info = np.iinfo(x.dtype)
        return np.clip(np.floor(out + 0.5), info.min, info.max).astype(x.dtype)
    return out.astype(x.dtype, copy=False)


def imresize(x: np.ndarray, w: int, h: int, interp: int = 1) -> np.ndarray:
    """Resize an HWC image (or NHWC batch) to width ``w`` and height ``h``."""
    _check_image(x, "resize", None)
    w, h = int(w), int(h)
    if w <= 0 or h <= 0:
        raise ValueError(f"resize: target width and height must be > 0, got ({w}, {h})")
    interp = get_interp_method(int(interp), (x.shape[-3], x.shape[-2], h, w))
    if x.ndim == 4:
        return np.stack([_resize_hwc(img, w, h, interp) for img in x])
    return _resize_hwc(x, w, h, interp)


def resize_output_size(h: int, w: int, size, keep_ratio: bool) -> tuple[int, int]:
    """(new_h, new_w) of ``nd.image.resize``: ``size`` is an int or (width, height)."""
    if isinstance(size, (int, np.integer)):
        size = (int(size),)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        if size[0] <= 0:
            raise ValueError(f"resize: size should be greater than 0, but got {size[0]}")
        if not keep_ratio:
            return size[0], size[0]
        if h > w:
            return h * size[0] // w, size[0]
        return size[0], w * size[0] // h
    if len(size) != 2:
        raise ValueError(f"resize: size must be an int or (width, height), got {size}")
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"resize: width and height must be greater than 0, got {size}")
    return size[1], size[0]


def resize(x: np.ndarray, size, keep_ratio: bool = False, interp: int = 1) -> np.ndarray:
    """``nd.image.resize``: ``size`` int (square, or short side with keep_ratio) or (w, h)."""
    _check_image(x, "resize", None)
    nh, nw = resize_output_size(x.shape[-3], x.shape[-2], size, keep_ratio)
    return imresize(x, nw, nh, interp)


# ---------------------------------------------------------------------------------------
# colour


def _rng(rng):
    return np.random if rng is None else rng


def adjust_brightness(x: np.ndarray, alpha: float) -> np.ndarray:
    """``saturate_cast(x * alpha)``."""
    return _saturate(x.astype(np.float32) * np.float32(alpha), x.dtype)


def _gray_mean(img: np.ndarray) -> np.float32:
    if img.shape[-1] > 1:
        g = img[..., :3].astype(np.float32) @ np.asarray(GRAY_COEF, dtype=np.float32)
        return np.float32(g.sum(dtype=np.float32) / np.float32(g.size))
    return np.float32(img.sum(dtype=np.float32) / np.float32(img.size))


def adjust_contrast(x: np.ndarray, alpha: float) -> np.ndarray:
    """``saturate_cast(x * alpha + (1 - alpha) * gray_mean)``; gray mean per image."""
    _check_image(x, "adjust_contrast")
    alpha = np.float32(alpha)
    xf = x.astype(np.float32)
    if x.ndim == 4:
        means = np.array([_gray_mean(img) for img in x], dtype=np.float32)
        beta = ((1 - alpha) * means).reshape(-1, 1, 1, 1)
    else:
        beta = (1 - alpha) * _gray_mean(x)
    return _saturate(xf * alpha + beta, x.dtype)


def adjust_saturation(x: np.ndarray, alpha: float) -> np.ndarray:
    """MXNet 1.9's saturation kernel: ``gray = 0.114 * B * (1 - alpha)``; ``gray + x * alpha``.

    (The kernel overwrites ``gray`` in its channel loop, so only the blue term
    survives; kept as is for parity with MXNet.)  Single-channel input is returned
    unchanged.
    """
    _check_image(x, "adjust_saturation")
    if x.shape[-1] == 1:
        return x.copy()
    alpha = np.float32(alpha)
    xf = x.astype(np.float32)
    gray = xf[..., 2:3] * np.float32(GRAY_COEF[2]) * (np.float32(1) - alpha)
    return _saturate(gray + xf * alpha, x.dtype)


def _rgb_to_hls(r, g, b):
    r, g, b = r / np.float32(255), g / np.float32(255), b / np.float32(255)
    vmax = np.maximum(np.maximum(r, g), b)
    vmin = np.minimum(np.minimum(r, g), b)
    diff = vmax - vmin
    l = (vmax + vmin) * np.float32(0.5)
    ok = diff > np.finfo(np.float32).eps
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(l < 0.5, diff / (vmax + vmin), diff / (np.float32(2) - vmax - vmin))
        d = np.float32(60) / diff
        h = np.where(
            vmax == r,
            (g - b) * d,
            np.where(vmax == g, (b - r) * d + np.float32(120), (r - g) * d + np.float32(240)),
        )
    h = np.where(h < 0, h + np.float32(360), h)
    return np.where(ok, h, 0).astype(np.float32), l, np.where(ok, s, 0).astype(np.float32)


_HLS_SECTOR = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])


def _hls_to_rgb(h, l, s):
    p2 = np.where(l <= 0.5, l * (1 + s), l + s - l * s).astype(np.float32)
    p1 = (2 * l - p2).astype(np.float32)
    hh = (h * np.float32(1.0 / 60.0)).astype(np.float32)
    hh = np.mod(hh, np.float32(6)).astype(np.float32)
    hh = np.where(hh >= 6, hh - 6, hh)
    sector = np.clip(hh.astype(np.int64), 0, 5)
    frac = hh - sector
    tab = np.stack([p2, p1, p1 + (p2 - p1) * (1 - frac), p1 + (p2 - p1) * frac], axis=-1)
    sel = _HLS_SECTOR[sector]
    b = np.take_along_axis(tab, sel[..., 0:1], axis=-1)[..., 0]
    g = np.take_along_axis(tab, sel[..., 1:2], axis=-1)[..., 0]
    r = np.take_along_axis(tab, sel[..., 2:3], axis=-1)[..., 0]
    gray = s == 0
    r = np.where(gray, l, r)
    g = np.where(gray, l, g)
    b = np.where(gray, l, b)
    f = np.float32(255)
    return r * f, g * f, b * f


def adjust_hue(x: np.ndarray, alpha: float) -> np.ndarray:
    """Rotate the hue by ``alpha * 360`` degrees through MXNet's RGB<->HLS conversion."""
    _check_image(x, "adjust_hue")
    if x.shape[-1] == 1:
        return x.copy()
    xf = x.astype(np.float32)
    h, l, s = _rgb_to_hls(xf[..., 0], xf[..., 1], xf[..., 2])
    h = h + np.float32(alpha) * np.float32(360)
    r, g, b = _hls_to_rgb(h, l, s)
    return _saturate(np.stack([r, g, b], axis=-1), x.dtype)


def adjust_lighting(x: np.ndarray, alpha: Sequence[float]) -> np.ndarray:
    """Add AlexNet-style PCA lighting noise ``eig @ alpha`` to each RGB pixel."""
    _check_image(x, "adjust_lighting")
    alpha = np.asarray(alpha, dtype=np.float32).ravel()
    if alpha.size != 3:
        raise ValueError(f"adjust_lighting: alpha must have 3 elements, got {alpha.size}")
    if x.shape[-1] == 1:
        return x.copy()
    pca = (_EIG * alpha[None, :]).sum(axis=1, dtype=np.float32)
    return _saturate(x.astype(np.float32) + pca, x.dtype)


def random_brightness(x, min_factor: float, max_factor: float, rng=None):
    """Brightness with a factor drawn uniformly from [min_factor, max_factor]."""
    return adjust_brightness(x, _rng(rng).uniform(min_factor, max_factor))


def random_contrast(x, min_factor: float, max_factor: float, rng=None):
    """Contrast with a factor drawn uniformly from [min_factor, max_factor]."""
    return adjust_contrast(x, _rng(rng).uniform(min_factor, max_factor))


def random_saturation(x, min_factor: float, max_factor: float, rng=None):
    """Saturation with a factor drawn uniformly from [min_factor, max_factor]."""
    return adjust_saturation(x, _rng(rng).uniform(min_factor, max_factor))


def random_hue(x, min_factor: float, max_factor: float, rng=None):
    """Hue rotation by ``alpha * 360`` degrees, alpha uniform in [min_factor, max_factor]."""
    return adjust_hue(x, _rng(rng).uniform(min_factor, max_factor))


def random_color_jitter(x, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, rng=None):
    """MXNet's ``random_color_jitter``: the four adjustments in a random order.

    Brightness, contrast and saturation use ``1 + U(-v, v)``; hue uses ``U(-v, v)``;
    an adjustment whose strength is 0 is skipped.
    """
    r = _rng(rng)
    out = x
    for op in r.permutation(4):
        if op == 0 and brightness > 0:
            out = adjust_brightness(out, 1.0 + r.uniform(-brightness, brightness))
        elif op == 1 and contrast > 0:
            out = adjust_contrast(out, 1.0 + r.uniform(-contrast, contrast))
        elif op == 2 and saturation > 0:
            out = adjust_saturation(out, 1.0 + r.uniform(-saturation, saturation))
        elif op == 3 and hue > 0:
            out = adjust_hue(out, r.uniform(-hue, hue))
    return out if out is not x else x.copy()


def random_lighting(x, alpha_std: float = 0.05, rng=None):
    """PCA lighting noise with ``alpha ~ N(0, alpha_std)`` for each of R, G, B."""
    alpha = _rng(rng).normal(0.0, alpha_std, size=3)
    return adjust_lighting(x, alpha)


# ---------------------------------------------------------------------------------------
# rotation (mx.image.imrotate)


def _bilinear_sample(src: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """``nd.BilinearSampler``: sample NCHW ``src`` at normalized grid (N, H, W) coords.

    Coordinates in [-1, 1] map to pixel centres 0 .. size-1; points outside the image
    contribute zeros.
    """
    n, c, h, w = src.shape
    x = (gx + 1) * (w - 1) / 2
    y = (gy + 1) * (h - 1) / 2
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    out = np.zeros((n, c) + gx.shape[1:], dtype=np.float32)
    bidx = np.arange(n)[:, None, None]
    for dy in (0, 1):
        for dx in (0, 1):
            xi = x0 + dx
            yi = y0 + dy
            wgt = (1 - np.abs(x - xi)) * (1 - np.abs(y - yi))
            valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            vals = src[bidx, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]  # N,H,W,C
            vals = np.moveaxis(vals, -1, 1)
            out += (np.where(valid, wgt, 0.0).astype(np.float32))[:, None] * vals
    return out


def imrotate(src: np.ndarray, rotation_degrees, zoom_in: bool = False,
             zoom_out: bool = False) -> np.ndarray:
    """Rotate float32 CHW images (or an NCHW batch) by degrees, anticlockwise, about the
    centre (MXNet ``image.imrotate``); ``zoom_in`` crops away the empty corners,
    ``zoom_out`` shrinks the image so that it fits entirely."""
    if zoom_in and zoom_out:
        raise ValueError("`zoom_in` and `zoom_out` cannot be both True")
    if src.dtype != np.float32:
        raise TypeError("Only `float32` images are supported by this function")
    expanded = False
    if src.ndim == 3:
        expanded = True
        src = src[None]
        if not np.isscalar(rotation_degrees) and np.ndim(rotation_degrees) != 0:
            raise TypeError(
                "When a single image is passed the rotation angle is required to be a scalar."
            )
    elif src.ndim != 4:
        raise ValueError("Only 3D and 4D are supported by this function")
    deg = np.asarray(rotation_degrees, dtype=np.float32)
    if deg.ndim == 0:
        deg = np.full((len(src),), deg, dtype=np.float32)
    if len(src) != len(deg):
        raise ValueError("The number of images must be equal to the number of rotation angles")
    rad = (np.float32(np.pi) * deg / np.float32(180)).reshape(-1, 1, 1)
    _, _, h, w = src.shape
    hscale = float(h - 1) / 2
    wscale = float(w - 1) / 2
    hm = (np.arange(h, dtype=np.float32).reshape(h, 1) - hscale)[None].repeat(w, axis=2)
    wm = (np.arange(w, dtype=np.float32).reshape(1, w) - wscale)[None].repeat(h, axis=1)
    ca, sa = np.cos(rad), np.sin(rad)
    wrot = (wm * ca - hm * sa) / wscale
    hrot = (wm * sa + hm * ca) / hscale
    if zoom_in or zoom_out:
        hf, wf = np.float32(h), np.float32(w)
        rho = np.sqrt(hf * hf + wf * wf)
        ang = np.arctan(hf / wf)
        c1x = np.abs(rho * np.cos(ang + np.abs(rad)))
        c1y = np.abs(rho * np.sin(ang + np.abs(rad)))
        c2x = np.abs(rho * np.cos(ang - np.abs(rad)))
        c2y = np.abs(rho * np.sin(ang - np.abs(rad)))
        max_x = np.maximum(c1x, c2x)
        max_y = np.maximum(c1y, c2y)
        if zoom_out:
            scale = np.maximum(max_x / wf, max_y / hf)
        else:
            scale = np.minimum(wf / max_x, hf / max_y)
        wrot = wrot * scale
        hrot = hrot * scale
    out = _bilinear_sample(src.astype(np.float32), wrot, hrot)
    return out[0] if expanded else out
