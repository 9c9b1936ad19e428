"""gluon.data.vision.transforms: MXNet's formulas, numpy and NDArray inputs alike."""

import numpy as np
import pytest

import hybrid as mx
from hybrid.gluon.data.vision import transforms as T
from hybrid.image import _ops

PIXEL = np.array([[[100, 200, 50]]], dtype=np.uint8)


def _img(h=6, w=5, c=3, seed=0, dtype=np.uint8):
    return np.random.RandomState(seed).randint(0, 256, size=(h, w, c)).astype(dtype)


def test_to_tensor_scales_and_moves_channels_first():
    x = _img()
    out = T.ToTensor()(x)
    assert out.dtype == np.float32 and out.shape == (3, 6, 5)
    np.testing.assert_array_equal(out, x.transpose(2, 0, 1).astype(np.float32) / 255)
    batch = T.ToTensor()(np.stack([x, x]))
    assert batch.shape == (2, 3, 6, 5)
    with pytest.raises(ValueError, match="height, width, channels"):
        T.ToTensor()(np.zeros((4, 4), np.uint8))


def test_normalize_is_per_channel_and_checks_lengths():
    x = np.random.RandomState(1).rand(3, 4, 4).astype(np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = T.Normalize(mean, std)(x)
    expected = (x - np.float32(mean).reshape(3, 1, 1)) / np.float32(std).reshape(3, 1, 1)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(T.Normalize(0.5, 2.0)(x), (x - 0.5) / 2)
    assert T.Normalize(mean, std)(np.stack([x, x])).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="mean must have either 1 or 3"):
        T.Normalize((0.1, 0.2), (1.0,))(x)


def test_cast():
    assert T.Cast()(_img()).dtype == np.float32
    assert T.Cast("float16")(mx.nd.array([1, 2])).dtype == np.float16
    data, label = T.Cast("float64")(np.zeros(2, np.float32), np.int32(3))
    assert data.dtype == np.float64 and label.dtype == np.float64


def test_bilinear_resize_uses_opencv_pixel_mapping():
    row = np.array([[[0.0], [10.0]]], dtype=np.float32)  # 1 x 2 x 1
    out = T.Resize((4, 1))(row)
    np.testing.assert_allclose(out[0, :, 0], [0, 2.5, 7.5, 10])
    out8 = T.Resize((4, 1))(row.astype(np.uint8))
    assert out8.dtype == np.uint8 and out8[0, :, 0].tolist() == [0, 3, 8, 10]
    near = T.Resize((2, 1), interpolation=0)(np.arange(4, dtype=np.uint8).reshape(1, 4, 1))
    assert near[0, :, 0].tolist() == [0, 2]
    area = T.Resize((2, 1), interpolation=2)(np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1))
    np.testing.assert_allclose(area[0, :, 0], [1.5, 3.5])


def test_resize_output_sizes():
    x = _img(6, 4)
    assert T.Resize(3)(x).shape == (3, 3, 3)
    assert T.Resize((5, 2))(x).shape == (2, 5, 3)  # (width, height)
    assert T.Resize(2, keep_ratio=True)(x).shape == (3, 2, 3)  # short side 4 -> 2
    assert T.Resize(8, keep_ratio=True)(_img(4, 6)).shape == (8, 12, 3)
    assert T.Resize(3)(np.stack([x, x])).shape == (2, 3, 3, 3)
    assert T.Resize(3, interpolation=3)(x.astype(np.float32)).dtype == np.float32
    assert T.Resize(3, interpolation=4)(x).shape == (3, 3, 3)


def test_center_crop_and_crop_resize():
    x = _img(6, 8)
    np.testing.assert_array_equal(T.CenterCrop(4)(x), x[1:5, 2:6])
    np.testing.assert_array_equal(T.CenterCrop((2, 4))(x), x[1:5, 3:5])
    assert T.CenterCrop(10)(x).shape == (10, 10, 3)  # scaled-down crop, then resized
    np.testing.assert_array_equal(T.CropResize(1, 2, 3, 4)(x), x[2:6, 1:4])
    assert T.CropResize(1, 2, 3, 4, size=(5, 5))(x).shape == (5, 5, 3)
    with pytest.raises(ValueError, match="larger than input width"):
        T.CropResize(6, 0, 3, 2)(x)


def test_random_resized_crop_output_size():
    import random

    random.seed(0)
    x = _img(20, 30)
    for _ in range(5):
        assert T.RandomResizedCrop(8)(x).shape == (8, 8, 3)
    assert T.RandomResizedCrop((6, 4), scale=(0.5, 1.0))(x).shape == (4, 6, 3)


def test_random_flips_flip_half_the_time():
    np.random.seed(0)
    x = _img()
    lr = [np.array_equal(T.RandomFlipLeftRight()(x), x[:, ::-1]) for _ in range(200)]
    assert 60 < sum(lr) < 140
    tb = T.RandomFlipTopBottom()
    outs = {tb(x).tobytes() for _ in range(20)}
    assert outs == {x.tobytes(), x[::-1].tobytes()}


def test_brightness_contrast_saturation_follow_mxnet_kernels():
    np.testing.assert_array_equal(_ops.adjust_brightness(PIXEL, 1.5), [[[150, 255, 75]]])
    # gray mean = 0.299*100 + 0.587*200 + 0.114*50 = 153; out = 0.5 x + 76.5, truncated
    np.testing.assert_array_equal(_ops.adjust_contrast(PIXEL, 0.5), [[[126, 176, 101]]])
    # MXNet 1.9's saturation kernel keeps only the blue gray term: 0.114 * 50 * 0.5
    np.testing.assert_array_equal(_ops.adjust_saturation(PIXEL, 0.5), [[[52, 102, 27]]])
    f = PIXEL.astype(np.float32)
    np.testing.assert_allclose(_ops.adjust_brightness(f, 3.0), f * 3)  # floats not clipped


def test_hue_rotation():
    x = _img(4, 4)
    same = _ops.adjust_hue(x, 0.0)
    assert np.abs(same.astype(int) - x).max() <= 1
    full_turn = _ops.adjust_hue(x, 1.0)
    assert np.abs(full_turn.astype(int) - x).max() <= 1
    red = np.array([[[255, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(_ops.adjust_hue(red, 1 / 3), [[[0, 255, 0]]])
    gray = np.full((2, 2, 1), 77, np.uint8)
    np.testing.assert_array_equal(_ops.adjust_hue(gray, 0.3), gray)


def test_lighting_adds_pca_noise():
    alpha = (0.1, -0.2, 0.3)
    eig = np.array([[55.46 * -0.5675, 4.794 * 0.7192, 1.148 * 0.4009],
                    [55.46 * -0.5808, 4.794 * -0.0045, 1.148 * -0.8140],
                    [55.46 * -0.5836, 4.794 * -0.6948, 1.148 * 0.4203]])
    expected = np.clip(PIXEL.astype(np.float64) + eig @ np.array(alpha), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(_ops.adjust_lighting(PIXEL, alpha), expected)


def test_random_color_transforms_stay_in_their_ranges():
    np.random.seed(1)
    x = _img()
    b = T.RandomBrightness(0.2)(x.astype(np.float32))
    ratio = b / np.maximum(x, 1)
    assert ratio[x > 0].min() >= 0.8 - 1e-6 and ratio[x > 0].max() <= 1.2 + 1e-6
    assert T.RandomContrast(0.5)(x).dtype == np.uint8
    assert T.RandomSaturation(0.5)(x).shape == x.shape
    assert T.RandomHue(0.1)(x).shape == x.shape
    assert T.RandomLighting(0.1)(x).shape == x.shape
    np.testing.assert_array_equal(T.RandomColorJitter()(x), x)  # all strengths 0
    assert T.RandomColorJitter(0.3, 0.3, 0.3, 0.1)(x).dtype == np.uint8


RANDOM_AND_FIXED = [
    T.ToTensor(),
    T.Compose([T.ToTensor(), T.Normalize((0.4, 0.5, 0.6), (0.2, 0.3, 0.4))]),
    T.Resize((7, 3)),
    T.CenterCrop(3),
    T.RandomResizedCrop(4),
    T.CropResize(0, 1, 3, 3, size=5),
    T.RandomFlipLeftRight(),
    T.RandomFlipTopBottom(),
    T.RandomBrightness(0.3),
    T.RandomContrast(0.3),
    T.RandomSaturation(0.3),
    T.RandomHue(0.2),
    T.RandomColorJitter(0.2, 0.2, 0.2, 0.1),
    T.RandomLighting(0.2),
    T.RandomApply(T.RandomBrightness(0.5), p=0.5),
]


@pytest.mark.parametrize("tf", RANDOM_AND_FIXED, ids=lambda t: type(t).__name__)
def test_ndarray_input_gives_the_numpy_result_as_an_ndarray(tf):
    import random

    x = _img(6, 7, seed=2)
    np.random.seed(7)
    random.seed(7)
    ref = tf(x)
    np.random.seed(7)
    random.seed(7)
    nd_in = mx.nd.array(x, dtype="uint8")
    out = tf(nd_in)
    assert isinstance(out, mx.nd.NDArray) and out.dtype == ref.dtype
    np.testing.assert_array_equal(out.asnumpy(), ref)


def test_batch_inputs_nhwc():
    batch = np.stack([_img(seed=i) for i in range(3)])
    assert T.Compose([T.Resize(4), T.ToTensor()])(batch).shape == (3, 3, 4, 4)
    assert T.RandomColorJitter(0.2, 0.2, 0.2, 0.1)(batch).shape == batch.shape
    c = _ops.adjust_contrast(batch, 0.5)
    for i in range(3):  # gray mean per image
        np.testing.assert_array_equal(c[i], _ops.adjust_contrast(batch[i], 0.5))


def test_random_apply_probability_extremes():
    x = _img()
    np.testing.assert_array_equal(T.RandomApply(T.Cast("float64"), p=0.0)(x), x)
    assert T.RandomApply(T.Cast("float64"), p=1.0)(x).dtype == np.float64


def test_rotate_90_degrees_matches_rot90_and_checks_dtype():
    x = np.random.RandomState(3).rand(2, 5, 5).astype(np.float32)
    out = T.Rotate(90)(x)
    np.testing.assert_allclose(out, np.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    assert T.Rotate(30, zoom_in=True)(x).shape == x.shape
    with pytest.raises(TypeError, match="only supports float32"):
        T.Rotate(10)(_img())
    with pytest.raises(ValueError, match="ordered tuple"):
        T.RandomRotation((10, -10))
    np.random.seed(0)
    assert T.RandomRotation((-10, 10))(np.stack([x, x])).shape == (2, 2, 5, 5)


def test_compose_passes_extra_outputs_along_and_is_block_like():
    def split(x):
        return x, "extra"

    def check(x, extra):
        assert extra == "extra"
        return x + 1

    assert T.Compose([split, check])(1) == 2
    tf = T.Compose([T.ToTensor()])
    tf.hybridize()
    tf.initialize()
    assert tf.collect_params() == {} and "ToTensor" in repr(tf)
