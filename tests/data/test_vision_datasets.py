"""Vision datasets read the official file formats from small files written here."""

import gzip
import io
import struct
import warnings

import numpy as np
import pytest

import hybrid as mx
from hybrid.gluon import utils as gutils
from hybrid.gluon.data import DataLoader
from hybrid.gluon.data.vision import (
    CIFAR10,
    CIFAR100,
    MNIST,
    FashionMNIST,
    ImageFolderDataset,
    ImageRecordDataset,
)

MAGIC = 0xCED7230A


def _write_idx(root, prefix, images, labels):
    with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


@pytest.fixture
def mnist_root(tmp_path):
    rng = np.random.RandomState(0)
    train = rng.randint(0, 256, size=(5, 28, 28)).astype(np.uint8)
    test = rng.randint(0, 256, size=(3, 28, 28)).astype(np.uint8)
    _write_idx(tmp_path, "train", train, np.array([3, 1, 4, 1, 5], np.uint8))
    _write_idx(tmp_path, "t10k", test, np.array([9, 2, 6], np.uint8))
    return tmp_path, train, test


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_mnist_reads_idx_gz_files(mnist_root, cls):
    root, train, test = mnist_root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # our files are not the official ones (sha1)
        ds = cls(root=str(root), train=True)
        ds_test = cls(root=str(root), train=False)
    assert len(ds) == 5 and len(ds_test) == 3
    img, label = ds[2]
    assert isinstance(img, mx.nd.NDArray) and img.shape == (28, 28, 1) and img.dtype == np.uint8
    np.testing.assert_array_equal(img.asnumpy()[:, :, 0], train[2])
    assert label == 4 and label.dtype == np.int32
    np.testing.assert_array_equal(ds_test[0][0].asnumpy()[:, :, 0], test[0])


def test_mnist_transform_and_dataloader(mnist_root):
    root, train, _ = mnist_root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = MNIST(root=str(root), transform=lambda d, l: (d.astype("float32") / 255, l))
    img, label = ds[0]
    assert img.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, labels = next(iter(DataLoader(MNIST(root=str(root)), batch_size=4)))
    assert data.shape == (4, 28, 28, 1) and data.dtype == np.uint8
    assert labels.dtype == np.int32 and labels.asnumpy().tolist() == [3, 1, 4, 1]


def test_missing_files_offline_say_which_files_to_put_where(tmp_path, monkeypatch):
    def offline(url, verify_ssl):
        raise OSError("Network is unreachable")
        yield b""  # pragma: no cover

    monkeypatch.setattr(gutils, "_http_get", offline)
    with pytest.raises(RuntimeError) as info:
        MNIST(root=str(tmp_path / "nowhere"))
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "nowhere") in msg and "Network is unreachable" in msg
    assert list((tmp_path / "nowhere").iterdir()) == []  # no partial download left


def _cifar_records(n, label_bytes, rng):
    labels = rng.randint(0, 10, size=(n, label_bytes)).astype(np.uint8)
    pixels = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    return np.concatenate([labels, pixels], axis=1), labels, pixels


def test_cifar10_reads_the_binary_batches(tmp_path):
    rng = np.random.RandomState(1)
    parts = []
    for i in range(1, 6):
        raw, labels, pixels = _cifar_records(2, 1, rng)
        (tmp_path / f"data_batch_{i}.bin").write_bytes(raw.tobytes())
        parts.append((labels, pixels))
    raw, tl, tp = _cifar_records(3, 1, rng)
    (tmp_path / "test_batch.bin").write_bytes(raw.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = CIFAR10(root=str(tmp_path))
        test = CIFAR10(root=str(tmp_path), train=False)
    assert len(ds) == 10 and len(test) == 3
    img, label = ds[4]  # first record of data_batch_3
    labels, pixels = parts[2]
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    expected = pixels[0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(img.asnumpy(), expected)
    assert label == labels[0, 0] and label.dtype == np.int32
    assert test[2][1] == tl[2, 0]


@pytest.mark.parametrize("fine", [False, True])
def test_cifar100_coarse_and_fine_labels(tmp_path, fine):
    rng = np.random.RandomState(2)
    raw, labels, pixels = _cifar_records(4, 2, rng)
    (tmp_path / "train.bin").write_bytes(raw.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = CIFAR100(root=str(tmp_path), fine_label=fine)
    img, label = ds[3]
    assert label == labels[3, int(fine)]
    np.testing.assert_array_equal(img.asnumpy(), pixels[3].reshape(3, 32, 32).transpose(1, 2, 0))


def _png_bytes(arr):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_dataset_lists_sorted_classes_and_skips_other_files(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.RandomState(3)
    imgs = {}
    for cls in ("dog", "cat"):
        (tmp_path / cls).mkdir()
        for j in range(2):
            arr = rng.randint(0, 256, size=(7, 9, 3)).astype(np.uint8)
            imgs[(cls, j)] = arr
            PIL.fromarray(arr).save(tmp_path / cls / f"{j}.png")
    smooth = np.zeros((7, 9, 3), np.uint8)
    smooth[..., 0], smooth[..., 1], smooth[..., 2] = 200, 120, 40
    PIL.fromarray(smooth).save(tmp_path / "cat" / "x.jpg", quality=95)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "README").write_text("not a folder")
    with pytest.warns(UserWarning, match="Ignoring"):
        ds = ImageFolderDataset(str(tmp_path))
    assert ds.synsets == ["cat", "dog"]
    assert [(p.rsplit("/", 2)[-2:], l) for p, l in ds.items] == [
        (["cat", "0.png"], 0), (["cat", "1.png"], 0), (["cat", "x.jpg"], 0),
        (["dog", "0.png"], 1), (["dog", "1.png"], 1)]
    img, label = ds[3]
    assert label == 1 and img.dtype == np.uint8 and img.shape == (7, 9, 3)
    np.testing.assert_array_equal(img.asnumpy(), imgs[("dog", 0)])
    jpg, _ = ds[2]
    assert np.abs(jpg.asnumpy().astype(int) - smooth).max() <= 3
    gray = ImageFolderDataset(str(tmp_path), flag=0)[0][0]
    assert gray.shape == (7, 9, 1)


def test_image_record_dataset_reads_a_rec_built_byte_by_byte(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.RandomState(4)
    images = [rng.randint(0, 256, size=(5, 4, 3)).astype(np.uint8) for _ in range(3)]
    labels = [2.0, 0.0, [1.0, 5.0]]
    rec = b""
    idx = ""
    for i, (img, lab) in enumerate(zip(images, labels)):
        body = _png_bytes(img)
        if isinstance(lab, list):
            payload = struct.pack("<IfQQ", len(lab), 0.0, i, 0) + np.float32(lab).tobytes() + body
        else:
            payload = struct.pack("<IfQQ", 0, lab, i, 0) + body
        idx += f"{i}\t{len(rec)}\n"
        assert struct.pack("<I", MAGIC) not in payload[: len(payload) // 4 * 4]
        rec += struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * (-len(payload) % 4)
    (tmp_path / "imgs.rec").write_bytes(rec)
    (tmp_path / "imgs.idx").write_text(idx)
    ds = ImageRecordDataset(str(tmp_path / "imgs.rec"))
    assert len(ds) == 3
    img, label = ds[0]
    np.testing.assert_array_equal(img.asnumpy(), images[0])
    assert label == 2.0
    _, multi = ds[2]
    assert multi.tolist() == [1.0, 5.0]
    gray = ImageRecordDataset(str(tmp_path / "imgs.rec"), flag=0)[1][0]
    assert gray.shape == (5, 4, 1)
    tf = ImageRecordDataset(str(tmp_path / "imgs.rec"), transform=lambda d, l: (d.shape, l))
    assert tf[1] == ((5, 4, 3), 0.0)


def test_image_record_pipeline_in_worker_processes(tmp_path):
    pytest.importorskip("PIL")
    from hybrid import recordio
    from hybrid.gluon.data.vision import transforms

    rng = np.random.RandomState(5)
    images = [rng.randint(0, 256, size=(6, 6, 3)).astype(np.uint8) for _ in range(10)]
    with recordio.MXIndexedRecordIO(str(tmp_path / "p.idx"), str(tmp_path / "p.rec"), "w") as w:
        for i, img in enumerate(images):
            w.write_idx(i, recordio.pack_img((0, float(i % 3), i, 0), img[:, :, ::-1],
                                             img_fmt=".png"))
    ds = ImageRecordDataset(str(tmp_path / "p.rec")).transform_first(
        transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.5, 0.5)]))
    ref = [(d.asnumpy(), l.asnumpy()) for d, l in DataLoader(ds, batch_size=4)]
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    got = [(d.asnumpy(), l.asnumpy()) for d, l in loader]
    loader.close()
    assert len(got) == 3
    for (gd, gl), (rd, rl) in zip(got, ref):
        np.testing.assert_array_equal(gd, rd)
        np.testing.assert_array_equal(gl, rl)
    expected = (images[1].transpose(2, 0, 1).astype(np.float32) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(got[0][0][1], expected, rtol=1e-6)
    assert got[0][1].tolist() == [0.0, 1.0, 2.0, 0.0]
