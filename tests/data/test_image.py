"""mx.image: decoding (Pillow), resizing and cropping helpers."""

import builtins
import io
import random

import numpy as np
import pytest

import hybrid as mx
from hybrid import image

PIL = pytest.importorskip("PIL.Image")


def _png(arr):
    buf = io.BytesIO()
    PIL.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def rgb():
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[..., 0] = 250
    arr[1:3, 2:4, 1] = 100
    return arr


def test_imdecode_returns_rgb_hwc_uint8_ndarray(rgb):
    out = image.imdecode(_png(rgb))
    assert isinstance(out, mx.nd.NDArray) and out.dtype == np.uint8 and out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out.asnumpy(), rgb)
    bgr = image.imdecode(_png(rgb), to_rgb=0)
    np.testing.assert_array_equal(bgr.asnumpy(), rgb[:, :, ::-1])
    gray = image.imdecode(bytearray(_png(rgb)), flag=0)
    assert gray.shape == (4, 6, 1)
    expected = np.round(0.299 * 250).astype(np.uint8)
    assert abs(int(gray.asnumpy()[0, 0, 0]) - int(expected)) <= 1
    from_np = image.imdecode(np.frombuffer(_png(rgb), np.uint8))
    np.testing.assert_array_equal(from_np.asnumpy(), rgb)


def test_imdecode_rejects_str_and_garbage():
    with pytest.raises(ValueError, match="buf must be of type bytes"):
        image.imdecode("not bytes")
    with pytest.raises(mx.MXNetError, match="Decoding failed"):
        image.imdecode(b"definitely not an image")


def test_imread_reads_files_and_reports_missing_ones(tmp_path, rgb):
    path = tmp_path / "a.png"
    path.write_bytes(_png(rgb))
    np.testing.assert_array_equal(image.imread(str(path)).asnumpy(), rgb)
    with pytest.raises(mx.MXNetError, match="couldn't open"):
        image.imread(str(tmp_path / "missing.png"))


def test_missing_pillow_gives_an_install_hint(monkeypatch, rgb):
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match=r"pip install hybrid\[image\]"):
        image.imdecode(_png(rgb))


def test_imresize_and_resize_short():
    x = mx.nd.array(np.arange(48).reshape(4, 4, 3), dtype="uint8")
    out = image.imresize(x, 8, 2)
    assert isinstance(out, mx.nd.NDArray) and out.shape == (2, 8, 3)
    assert image.resize_short(np.zeros((10, 20, 3), np.uint8), 5).shape == (5, 10, 3)
    assert image.resize_short(np.zeros((30, 20, 3), np.uint8), 10).shape == (15, 10, 3)


def test_scale_down_and_crops():
    assert image.scale_down((640, 480), (720, 120)) == (640, 106)
    assert image.scale_down((100, 100), (50, 80)) == (50, 80)
    x = np.arange(10 * 12 * 3).reshape(10, 12, 3).astype(np.uint8)
    np.testing.assert_array_equal(image.fixed_crop(x, 2, 1, 4, 3), x[1:4, 2:6])
    assert image.fixed_crop(x, 2, 1, 4, 3, size=(8, 6)).shape == (6, 8, 3)
    out, box = image.center_crop(x, (4, 6))
    assert box == (4, 2, 4, 6)
    np.testing.assert_array_equal(out, x[2:8, 4:8])
    random.seed(0)
    out, (x0, y0, w, h) = image.random_crop(x, (5, 5))
    np.testing.assert_array_equal(out, x[y0:y0 + 5, x0:x0 + 5])
    out, box = image.random_size_crop(x, (4, 4), 0.3, (0.75, 1.33))
    assert out.shape == (4, 4, 3)


def test_color_normalize_updates_ndarrays_in_place():
    x = mx.nd.array(np.full((2, 2, 3), 10.0))
    out = image.color_normalize(x, mx.nd.array([1, 2, 3]), mx.nd.array([3, 4, 7]))
    assert out is x
    np.testing.assert_allclose(x.asnumpy()[0, 0], [3, 2, 1])
    np.testing.assert_allclose(image.color_normalize(np.ones((1, 1, 3)), 1.0), 0)


def test_copy_make_border_and_imrotate():
    x = np.ones((2, 2, 1), np.uint8)
    assert image.copyMakeBorder(x, 1, 1, 2, 2).shape == (4, 6, 1)
    assert image.copyMakeBorder(x, 1, 0, 0, 0, type=1).min() == 1
    f = np.random.RandomState(0).rand(1, 4, 4).astype(np.float32)
    np.testing.assert_allclose(image.imrotate(f, 180), f[:, ::-1, ::-1], atol=1e-5)
