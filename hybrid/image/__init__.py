"""``mx.image``: image decoding, resizing and cropping helpers (MXNet 1.9 API).

Pillow is needed for decoding/encoding (``pip install hybrid[image]``); the array
functions are pure numpy and work on numpy arrays and NDArrays alike.
"""

from .image import (
    center_crop,
    color_normalize,
    copyMakeBorder,
    fixed_crop,
    imdecode,
    imread,
    imresize,
    imrotate,
    random_crop,
    random_rotate,
    random_size_crop,
    resize_short,
    scale_down,
)

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
