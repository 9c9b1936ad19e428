"""``gluon.data.vision.transforms`` (MXNet 1.9).

Each transform is a callable object with MXNet's constructor signature.  It accepts
a numpy array or an NDArray and returns the same kind: the math is defined once, in
numpy (``hybrid/image/_ops.py``), so transforms run unchanged inside DataLoader
worker processes (which never import JAX) and give the same numbers in the main
process.  Images are HWC (a single image) or NHWC (a batch); ``ToTensor`` turns them
into CHW / NCHW float32, which ``Normalize`` expects.

Randomness uses numpy's global RNG (``np.random``), and Python's ``random`` for
the crops that MXNet draws with it; DataLoader workers seed both per worker.  A
random transform applied to an NHWC batch draws once for the whole batch, as
MXNet's operators do.

These are plain classes rather than Gluon Blocks: they have ``forward``,
``__call__``, and no-op ``hybridize``/``initialize``/``collect_params`` so that
code written for MXNet's Blocks keeps working; they hold no parameters.
"""

from __future__ import annotations

import random as _pyrandom
from collections.abc import Callable, Sequence
from numbers import Number
from typing import Any

import numpy as np

from ....image import _ops
from ....image._array import is_ndarray, like, to_numpy

__all__ = [
    "Compose",
    "HybridCompose",
    "Cast",
    "ToTensor",
    "Normalize",
    "Resize",
    "CenterCrop",
    "RandomResizedCrop",
    "CropResize",
    "RandomFlipLeftRight",
    "RandomFlipTopBottom",
    "RandomBrightness",
    "RandomContrast",
    "RandomSaturation",
    "RandomHue",
    "RandomColorJitter",
    "RandomLighting",
    "RandomApply",
    "HybridRandomApply",
    "Rotate",
    "RandomRotation",
]


class Transform:
    """Base class: ``__call__`` runs :meth:`forward`; Block-like no-ops for compatibility."""

    def forward(self, x: Any, *args: Any) -> Any:
        raise NotImplementedError

    def __call__(self, x: Any, *args: Any) -> Any:
        return self.forward(x, *args)

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        """No-op (the transforms are already compiled numpy code)."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        """No-op (transforms have no parameters)."""

    def collect_params(self, *args: Any, **kwargs: Any) -> dict:
        """Transforms have no parameters: an empty dict."""
        return {}

    def _args_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args_repr()})"


def _apply(fn: Callable[[np.ndarray], np.ndarray], x: Any) -> Any:
    """Run numpy ``fn`` on ``x`` and return the result as the same array type as ``x``."""
    if isinstance(x, np.ndarray):
        return fn(x)
    return like(fn(to_numpy(x)), x)


class Compose(Transform):
    """Apply ``transforms`` in order.  A transform returning a tuple/list passes its
    extra elements on as additional arguments of the next one (as ``Sequential``)."""

    def __init__(self, transforms: Sequence[Callable]):
        self._transforms = list(transforms)

    def forward(self, x: Any, *args: Any) -> Any:
        for t in self._transforms:
            x = t(x, *args)
            args = ()
            if isinstance(x, (tuple, list)):
                args = tuple(x[1:])
                x = x[0]
        if args:
            return (x,) + args
        return x

    def __len__(self) -> int:
        return len(self._transforms)

    def __getitem__(self, i: int) -> Callable:
        return self._transforms[i]

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {t!r}" for i, t in enumerate(self._transforms))
        return f"{type(self).__name__}(\n{inner}\n)"


HybridCompose = Compose


class Cast(Transform):
    """Cast to ``dtype`` (default float32).  Given several inputs (e.g. ``(data, label)``
    via ``dataset.transform``), casts each and returns a tuple."""

    def __init__(self, dtype: Any = "float32"):
        self._dtype = dtype

    def _cast(self, x: Any) -> Any:
        if is_ndarray(x):
            return x.astype(self._dtype)
        return np.asarray(x).astype(self._dtype)

    def forward(self, x: Any, *args: Any) -> Any:
        if args:
            return tuple(self._cast(a) for a in (x,) + args)
        return self._cast(x)

    def _batch(self, xb: np.ndarray) -> Any:
        return xb.astype(self._dtype)

    def _args_repr(self) -> str:
        return repr(self._dtype)


class ToTensor(Transform):
    """(N)HWC in [0, 255] -> (N)CHW float32 in [0, 1], i.e. ``transpose`` then ``/ 255``."""

    def forward(self, x: Any) -> Any:
        return _apply(_ops.to_tensor, x)

    def _batch(self, xb: np.ndarray) -> Any:
        return _ops.to_tensor(xb) if xb.ndim == 4 else NotImplemented


class Normalize(Transform):
    """``(x - mean) / std`` per channel of a CHW tensor / NCHW batch.

    ``mean`` and ``std`` are scalars or sequences of one value per channel.
    """

    def __init__(self, mean: Any = 0.0, std: Any = 1.0):
        self._mean = mean
        self._std = std
        self._prepared: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _fn(self, a: np.ndarray) -> np.ndarray:
        if a.ndim not in (3, 4):
            return _ops.normalize(a, self._mean, self._std)  # raises the shape error
        c = a.shape[-3]
        prep = self._prepared.get(c)
        if prep is None:
            prep = (_ops._per_channel(self._mean, c, "mean", a.shape),
                    _ops._per_channel(self._std, c, "std", a.shape))
            self._prepared[c] = prep
        return _ops.normalize_prepared(a, *prep)

    def forward(self, x: Any) -> Any:
        return _apply(self._fn, x)

    def _batch(self, xb: np.ndarray) -> Any:
        return self._fn(xb) if xb.ndim == 4 else NotImplemented

    def _args_repr(self) -> str:
        return f"mean={self._mean}, std={self._std}"


class Resize(Transform):
    """Resize to ``size``: an int (square, or the short side when ``keep_ratio``) or
    ``(width, height)``.  ``interpolation``: 0 nearest, 1 bilinear (default), 2 area,
    3 bicubic, 4 Lanczos (OpenCV codes)."""

    def __init__(self, size: int | Sequence[int], keep_ratio: bool = False,
                 interpolation: int = 1):
        self._size = size
        self._keep = keep_ratio
        self._interpolation = interpolation

    def _fn(self, a: np.ndarray) -> np.ndarray:
        return _ops.resize(a, self._size, self._keep, self._interpolation)

    def forward(self, x: Any) -> Any:
        return _apply(self._fn, x)

    def _batch(self, xb: np.ndarray) -> Any:
        return self._fn(xb) if xb.ndim == 4 and self._interpolation != 10 else NotImplemented

    def _args_repr(self) -> str:
        return f"size={self._size}, keep_ratio={self._keep}, interpolation={self._interpolation}"


def _as_wh(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, Number):
        return int(size), int(size)
    w, h = size
    return int(w), int(h)


def _crop_resize(a: np.ndarray, x0: int, y0: int, w: int, h: int, size: tuple[int, int],
                 interp: int) -> np.ndarray:
    out = _ops.crop(a, x0, y0, w, h)
    if (w, h) != tuple(size):
        interp = _ops.get_interp_method(interp, (h, w, size[1], size[0]))
        out = _ops.imresize(out, size[0], size[1], interp)
    return out


class CenterCrop(Transform):
    """Crop the centre ``size`` (int or (w, h)); a crop larger than the image is scaled
    down to fit (keeping its ratio) and the crop is resized to ``size``."""

    def __init__(self, size: int | Sequence[int], interpolation: int = 1):
        self._size = _as_wh(size)
        self._interpolation = interpolation

    def _fn(self, a: np.ndarray) -> np.ndarray:
        from ....image.image import scale_down  # noqa: PLC0415

        h, w = a.shape[-3], a.shape[-2]
        new_w, new_h = scale_down((w, h), self._size)
        x0 = int((w - new_w) / 2)
        y0 = int((h - new_h) / 2)
        return _crop_resize(a, x0, y0, new_w, new_h, self._size, self._interpolation)

    def forward(self, x: Any) -> Any:
        return _apply(self._fn, x)

    def _batch(self, xb: np.ndarray) -> Any:
        return self._fn(xb) if xb.ndim == 4 and self._interpolation != 10 else NotImplemented

    def _args_repr(self) -> str:
        return f"size={self._size}, interpolation={self._interpolation}"


class RandomResizedCrop(Transform):
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio`` (log-uniform)
    and resize it to ``size`` (Inception-style; falls back to a centre crop after 10
    tries).  Draws with Python's ``random`` as MXNet's ``image.random_size_crop``."""

    def __init__(self, size: int | Sequence[int], scale: tuple = (0.08, 1.0),
                 ratio: tuple = (3.0 / 4.0, 4.0 / 3.0), interpolation: int = 1):
        self._size = _as_wh(size)
        self._scale = scale
        self._ratio = ratio
        self._interpolation = interpolation

    def _fn(self, a: np.ndarray) -> np.ndarray:
        h, w = a.shape[-3], a.shape[-2]
        area = self._scale
        if isinstance(area, Number):
            area = (area, 1.0)
        src_area = h * w
        for _ in range(10):
            target_area = _pyrandom.uniform(area[0], area[1]) * src_area
            log_ratio = (np.log(self._ratio[0]), np.log(self._ratio[1]))
            new_ratio = np.exp(_pyrandom.uniform(*log_ratio))
            new_w = int(round(np.sqrt(target_area * new_ratio)))
            new_h = int(round(np.sqrt(target_area / new_ratio)))
            if new_w <= w and new_h <= h:
                x0 = _pyrandom.randint(0, w - new_w)
                y0 = _pyrandom.randint(0, h - new_h)
                return _crop_resize(a, x0, y0, new_w, new_h, self._size, self._interpolation)
        return CenterCrop(self._size, self._interpolation)._fn(a)

    def forward(self, x: Any) -> Any:
        return _apply(self._fn, x)

    def _args_repr(self) -> str:
        return f"size={self._size}, scale={self._scale}, ratio={self._ratio}"


class CropResize(Transform):
    """Crop the ``width`` x ``height`` box at (``x``, ``y``) and, if ``size`` is given,
    resize it (``size`` as in :class:`Resize`)."""

    def __init__(self, x: int, y: int, width: int, height: int,
                 size: int | Sequence[int] | None = None, interpolation: int | None = None):
        self._x = x
        self._y = y
        self._width = width
        self._height = height
        self._size = size
        self._interpolation = interpolation

    def _fn(self, a: np.ndarray) -> np.ndarray:
        out = _ops.crop(a, self._x, self._y, self._width, self._height)
        if self._size:
            interp = 1 if self._interpolation is None else self._interpolation
            out = _ops.resize(out, self._size, False, interp)
        return out

    def forward(self, x: Any) -> Any:
        return _apply(self._fn, x)


class RandomFlipLeftRight(Transform):
    """Mirror horizontally with probability 0.5 (one draw per call)."""

    def forward(self, x: Any) -> Any:
        if np.random.random() < 0.5:
            return _apply(_ops.flip_left_right, x)
        return x

    def _batch(self, xb: np.ndarray) -> Any:
        if xb.ndim != 4:
            return NotImplemented
        mask = np.random.random(len(xb)) < 0.5
        xb[mask] = xb[mask][:, :, ::-1]
        return xb


class RandomFlipTopBottom(Transform):
    """Mirror vertically with probability 0.5 (one draw per call)."""

    def forward(self, x: Any) -> Any:
        if np.random.random() < 0.5:
            return _apply(_ops.flip_top_bottom, x)
        return x

    def _batch(self, xb: np.ndarray) -> Any:
        if xb.ndim != 4:
            return NotImplemented
        mask = np.random.random(len(xb)) < 0.5
        xb[mask] = xb[mask][:, ::-1]
        return xb


class _RandomFactor(Transform):
    _op: Callable = None  # type: ignore[assignment]

    def __init__(self, value: float):
        self._value = value
        self._args = (max(0.0, 1.0 - value), 1.0 + value)

    def forward(self, x: Any) -> Any:
        alpha = np.random.uniform(*self._args)
        return _apply(lambda a: type(self)._op(a, alpha), x)

    def _args_repr(self) -> str:
        return repr(self._value)


class RandomBrightness(_RandomFactor):
    """Multiply by a factor drawn from [max(0, 1 - brightness), 1 + brightness]."""

    _op = staticmethod(_ops.adjust_brightness)

    def _batch(self, xb: np.ndarray) -> Any:
        alpha = np.random.uniform(*self._args, size=len(xb)).astype(np.float32)
        scaled = xb.astype(np.float32) * alpha.reshape((-1,) + (1,) * (xb.ndim - 1))
        return _ops._saturate(scaled, xb.dtype)


class RandomContrast(_RandomFactor):
    """Blend with the gray mean (0.299 R + 0.587 G + 0.114 B) by a factor drawn from
    [max(0, 1 - contrast), 1 + contrast]."""

    _op = staticmethod(_ops.adjust_contrast)


class RandomSaturation(_RandomFactor):
    """Blend with the gray image by a factor drawn from
    [max(0, 1 - saturation), 1 + saturation] (MXNet 1.9's kernel)."""

    _op = staticmethod(_ops.adjust_saturation)


class RandomHue(_RandomFactor):
    """Rotate the hue by ``alpha * 360`` degrees, ``alpha`` drawn from
    [max(0, 1 - hue), 1 + hue] as MXNet 1.9 does."""

    _op = staticmethod(_ops.adjust_hue)


class RandomColorJitter(Transform):
    """Brightness, contrast, saturation and hue jitter in a random order (MXNet's
    ``random_color_jitter``)."""

    def __init__(self, brightness: float = 0, contrast: float = 0, saturation: float = 0,
                 hue: float = 0):
        self._args = (brightness, contrast, saturation, hue)

    def forward(self, x: Any) -> Any:
        return _apply(lambda a: _ops.random_color_jitter(a, *self._args), x)

    def _args_repr(self) -> str:
        b, c, s, h = self._args
        return f"brightness={b}, contrast={c}, saturation={s}, hue={h}"


class RandomLighting(Transform):
    """AlexNet-style PCA lighting noise with standard deviation ``alpha``."""

    def __init__(self, alpha: float):
        self._alpha = alpha

    def forward(self, x: Any) -> Any:
        return _apply(lambda a: _ops.random_lighting(a, self._alpha), x)

    def _args_repr(self) -> str:
        return repr(self._alpha)


class RandomApply(Transform):
    """Apply ``transforms`` with probability ``p``."""

    def __init__(self, transforms: Callable, p: float = 0.5):
        self.transforms = transforms
        self.p = p

    def forward(self, x: Any, *args: Any) -> Any:
        if self.p < np.random.random():
            return (x,) + args if args else x
        return self.transforms(x, *args)


HybridRandomApply = RandomApply


class Rotate(Transform):
    """Rotate a float32 CHW image / NCHW batch by ``rotation_degrees`` (anticlockwise).

    ``zoom_in`` crops away the empty corners; ``zoom_out`` shrinks the image to fit.
    Apply it after :class:`ToTensor` (float32 only, as in MXNet).
    """

    def __init__(self, rotation_degrees: float, zoom_in: bool = False, zoom_out: bool = False):
        self._args = (rotation_degrees, zoom_in, zoom_out)

    def forward(self, x: Any) -> Any:
        if np.dtype(x.dtype) != np.float32:
            raise TypeError(
                "This transformation only supports float32. Consider calling it after ToTensor"
            )
        return _apply(lambda a: _ops.imrotate(a, *self._args), x)


class RandomRotation(Transform):
    """Rotate by an angle drawn uniformly from ``angle_limits`` with probability
    ``rotate_with_proba`` (float32 CHW/NCHW input; see :class:`Rotate`)."""

    def __init__(self, angle_limits: tuple, zoom_in: bool = False, zoom_out: bool = False,
                 rotate_with_proba: float = 1.0):
        lower, upper = angle_limits
        if lower >= upper:
            raise ValueError("`angle_limits` must be an ordered tuple")
        if rotate_with_proba < 0 or rotate_with_proba > 1:
            raise ValueError("Probability of rotating the image should be between 0 and 1")
        self._args = (angle_limits, zoom_in, zoom_out)
        self._rotate_with_proba = rotate_with_proba

    def forward(self, x: Any) -> Any:
        if np.random.random() > self._rotate_with_proba:
            return x
        if np.dtype(x.dtype) != np.float32:
            raise TypeError(
                "This transformation only supports float32. Consider calling it after ToTensor"
            )
        limits, zoom_in, zoom_out = self._args
        if len(x.shape) == 3:
            deg: Any = np.random.uniform(*limits)
        else:
            deg = np.random.uniform(*limits, size=x.shape[0])
        return _apply(lambda a: _ops.imrotate(a, deg, zoom_in, zoom_out), x)
