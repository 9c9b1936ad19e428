"""Vision datasets (MXNet 1.9 ``gluon.data.vision.datasets``).

Each reads the real file formats from a local ``root``.  When a file is missing the
dataset downloads it from MXNet's repository (``MXNET_GLUON_REPO`` overrides the
URL) and checks its SHA-1, exactly as MXNet does; offline, the error says which
files to put where.  Items are ``(image, label)``: an HWC uint8 NDArray (a numpy
array inside DataLoader workers) and an ``np.int32`` label.
"""

from __future__ import annotations

import gzip
import os
import struct
import tarfile
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ....image import image as _image
from ..dataset import Dataset, RecordFileDataset, _DownloadedDataset

__all__ = [
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "CIFAR100",
    "ImageRecordDataset",
    "ImageFolderDataset",
]


def _data_dir() -> str:
    return os.getenv("MXNET_HOME", os.path.join(os.path.expanduser("~"), ".mxnet"))


def _fetch(namespace: str, filename: str, root: str, sha1: str, what: str,
           all_files: list[str]) -> str:
    """Path of ``root/filename``, downloading it if missing; a clear error offline.

    Unlike MXNet, an existing file whose SHA-1 differs from the official one is used
    (with a warning) instead of being downloaded again, so local copies and test
    files work offline.
    """
    from ...utils import _get_repo_file_url, check_sha1, download  # noqa: PLC0415

    path = os.path.join(root, filename)
    if os.path.exists(path):
        if not check_sha1(path, sha1):
            warnings.warn(
                f"{what}: {path} does not match the SHA-1 of the official file; using it anyway.",
                stacklevel=4,
            )
        return path
    url = _get_repo_file_url(namespace, filename)
    try:
        return download(url, path=root, sha1_hash=sha1)
    except Exception as err:  # noqa: BLE001 - re-raised with instructions
        raise RuntimeError(
            f"{what}: could not get {filename} ({type(err).__name__}: {err}).\n"
            f"Put the files {', '.join(all_files)} into the directory {root} "
            f"(they are downloaded from {url.rsplit('/', 1)[0]}/ and checked by SHA-1), "
            "or pass root= a directory that has them."
        ) from err


class MNIST(_DownloadedDataset):
    """MNIST handwritten digits (IDX files, gzip-compressed).

    Items are ``(28x28x1 uint8 image, int32 label)``.  Files (in ``root``):
    ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``.

    Parameters
    ----------
    root : str, default ``$MXNET_HOME/datasets/mnist``
    train : bool, default True
        Training (60,000) or test (10,000) set.
    transform : callable, default None
        ``transform(data, label)`` applied to each item.
    """

    def __init__(self, root: str = os.path.join(_data_dir(), "datasets", "mnist"),
                 train: bool = True, transform: Callable | None = None):
        self._train = train
        self._train_data = ("train-images-idx3-ubyte.gz",
                            "6c95f4b05d2bf285e1bfb0e7960c31bd3b3f8a7d")
        self._train_label = ("train-labels-idx1-ubyte.gz",
                             "2a80914081dc54586dbdf242f9805a6b8d2a15fc")
        self._test_data = ("t10k-images-idx3-ubyte.gz",
                           "c3a25af1f52dad7f726cce8cacb138654b760d48")
        self._test_label = ("t10k-labels-idx1-ubyte.gz",
                            "763e7fa3757d93b0cdec073cef058b2004252c17")
        self._namespace = "mnist"
        super().__init__(root, transform)

    def _get_data(self) -> None:
        data, label = (
            (self._train_data, self._train_label) if self._train
            else (self._test_data, self._test_label)
        )
        namespace = "gluon/dataset/" + self._namespace
        files = [data[0], label[0]]
        what = type(self).__name__
        data_file = _fetch(namespace, data[0], self._root, data[1], what, files)
        label_file = _fetch(namespace, label[0], self._root, label[1], what, files)
        self._data, self._label = read_idx_pair(data_file, label_file)


def read_idx_pair(data_file: str, label_file: str) -> tuple[np.ndarray, np.ndarray]:
    """Read an MNIST-style (images, labels) pair of gzip'ed IDX files.

    Returns ``(N, rows, cols, 1)`` uint8 images and ``(N,)`` int32 labels.
    """
    with gzip.open(label_file, "rb") as fin:
        magic, n = struct.unpack(">II", fin.read(8))
        if magic != 2049:
            raise ValueError(f"{label_file}: not an IDX label file (magic {magic}, expected 2049)")
        label = np.frombuffer(fin.read(), dtype=np.uint8).astype(np.int32)
    if len(label) != n:
        raise ValueError(f"{label_file}: header says {n} labels, file has {len(label)}")
    with gzip.open(data_file, "rb") as fin:
        magic, n_img, rows, cols = struct.unpack(">IIII", fin.read(16))
        if magic != 2051:
            raise ValueError(f"{data_file}: not an IDX image file (magic {magic}, expected 2051)")
        data = np.frombuffer(fin.read(), dtype=np.uint8)
    if n_img != len(label) or data.size != n_img * rows * cols:
        raise ValueError(
            f"{data_file}: {data.size} pixels for {n_img} images of {rows}x{cols}, "
            f"and {len(label)} labels"
        )
    return data.reshape(len(label), rows, cols, 1), label


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: same layout and item format as :class:`MNIST`.

    ``root`` defaults to ``$MXNET_HOME/datasets/fashion-mnist``.
    """

    def __init__(self, root: str = os.path.join(_data_dir(), "datasets", "fashion-mnist"),
                 train: bool = True, transform: Callable | None = None):
        self._train = train
        self._train_data = ("train-images-idx3-ubyte.gz",
                            "0cf37b0d40ed5169c6b3aba31069a9770ac9043d")
        self._train_label = ("train-labels-idx1-ubyte.gz",
                             "236021d52f1e40852b06a4c3008d8de8aef1e40b")
        self._test_data = ("t10k-images-idx3-ubyte.gz",
                           "626ed6a7c06dd17c0eec72fa3be1740f146a2863")
        self._test_label = ("t10k-labels-idx1-ubyte.gz",
                            "17f9ab60e7257a1620f4ad76bbbaf857c3920701")
        self._namespace = "fashion-mnist"
        _DownloadedDataset.__init__(self, root, transform)


class CIFAR10(_DownloadedDataset):
    """CIFAR-10 in its binary layout (``data_batch_1..5.bin``, ``test_batch.bin``).

    Each record is 1 label byte and 3072 pixel bytes (R, G, B planes of 32x32).
    Items are ``(32x32x3 uint8 image, int32 label)``.  Missing files are fetched
    as ``cifar-10-binary.tar.gz`` and extracted into ``root``.
    """

    def __init__(self, root: str = os.path.join(_data_dir(), "datasets", "cifar10"),
                 train: bool = True, transform: Callable | None = None):
        self._train = train
        self._archive_file = ("cifar-10-binary.tar.gz", "fab780a1e191a7eda0f345501ccd62d20f7ed891")
        self._train_data = [("data_batch_1.bin", "aadd24acce27caa71bf4b10992e9e7b2d74c2540"),
                            ("data_batch_2.bin", "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795"),
                            ("data_batch_3.bin", "1dd00a74ab1d17a6e7d73e185b69dbf31242f295"),
                            ("data_batch_4.bin", "aab85764eb3584312d3c7f65fd2fd016e36a258e"),
                            ("data_batch_5.bin", "26e2849e66a845b7f1e4614ae70f4889ae604628")]
        self._test_data = [("test_batch.bin", "67eb016db431130d61cd03c7ad570b013799c88c")]
        self._namespace = "cifar10"
        super().__init__(root, transform)

    _label_bytes = 1

    def _read_batch(self, filename: str) -> tuple[np.ndarray, np.ndarray]:
        rec = 3072 + self._label_bytes
        with open(filename, "rb") as fin:
            raw = np.frombuffer(fin.read(), dtype=np.uint8)
        if raw.size % rec:
            raise ValueError(f"{filename}: size {raw.size} is not a multiple of the "
                             f"{rec}-byte record of {type(self).__name__}")
        data = raw.reshape(-1, rec)
        images = data[:, self._label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), data[:, self._label_column()].astype(np.int32)

    def _label_column(self) -> int:
        return 0

    def _get_data(self) -> None:
        from ...utils import check_sha1  # noqa: PLC0415

        files = self._train_data if self._train else self._test_data
        needed = self._train_data + self._test_data
        if any(not os.path.exists(os.path.join(self._root, name))
               or not check_sha1(os.path.join(self._root, name), sha1)
               for name, sha1 in files):
            if not all(os.path.exists(os.path.join(self._root, name)) for name, _ in files):
                archive = _fetch("gluon/dataset/" + self._namespace, self._archive_file[0],
                                 self._root, self._archive_file[1], type(self).__name__,
                                 [name for name, _ in needed])
                with tarfile.open(archive) as tar:
                    _safe_extract(tar, self._root)
            else:
                warnings.warn(
                    f"{type(self).__name__}: the files in {self._root} do not match the SHA-1 "
                    "sums of the official release; using them anyway.",
                    stacklevel=3,
                )
        data, label = zip(*(self._read_batch(os.path.join(self._root, name))
                            for name, _ in files))
        self._data = np.concatenate(data)
        self._label = np.concatenate(label)


def _safe_extract(tar: tarfile.TarFile, root: str) -> None:
    """Extract a dataset archive, flattening a single top folder like MXNet's archives."""
    for member in tar.getmembers():
        if not member.isfile():
            continue
        name = os.path.basename(member.name)
        src = tar.extractfile(member)
        if src is None:
            continue
        with open(os.path.join(root, name), "wb") as dst:
            dst.write(src.read())


class CIFAR100(CIFAR10):
    """CIFAR-100 binary layout (``train.bin``, ``test.bin``; 2 label bytes per record).

    ``fine_label=True`` gives the 100 fine classes, else the 20 coarse ones.
    """

    def __init__(self, root: str = os.path.join(_data_dir(), "datasets", "cifar100"),
                 fine_label: bool = False, train: bool = True,
                 transform: Callable | None = None):
        self._train = train
        self._archive_file = ("cifar-100-binary.tar.gz",
                              "a0bb982c76b83111308126cc779a992fa506b90b")
        self._train_data = [("train.bin", "e207cd2e05b73b1393c74c7f5e7bea451d63e08e")]
        self._test_data = [("test.bin", "8fb6623e830365ff53cf14adec797474f5478006")]
        self._fine_label = fine_label
        self._namespace = "cifar100"
        _DownloadedDataset.__init__(self, root, transform)

    _label_bytes = 2

    def _label_column(self) -> int:
        return 0 + int(self._fine_label)


class ImageRecordDataset(RecordFileDataset):
    """Images stored in a RecordIO file (``filename`` + ``.idx``), as written by im2rec.

    Items are ``(decoded HWC uint8 image, label)`` where ``label`` is the
    ``IRHeader`` label (a float, or a float32 array for multi-labels).  ``flag``
    1 decodes colour (RGB), 0 grayscale.
    """

    def __init__(self, filename: str, flag: int = 1, transform: Callable | None = None):
        super().__init__(filename)
        self._flag = flag
        self._transform = transform

    def __getitem__(self, idx: int) -> Any:
        from ....recordio import unpack  # noqa: PLC0415

        record = super().__getitem__(idx)
        header, img = unpack(record)
        image = _image.imdecode(img, self._flag)
        if self._transform is not None:
            return self._transform(image, header.label)
        return image, header.label


class ImageFolderDataset(Dataset):
    """Images in class folders: ``root/<class>/<image>``.

    Classes are the sub-folders of ``root`` in sorted order (``synsets``); labels
    are their indices.  ``items`` lists ``(path, label)``.  Files other than .jpg,
    .jpeg and .png (and non-folders in ``root``) are skipped with a warning.
    """

    def __init__(self, root: str, flag: int = 1, transform: Callable | None = None):
        self._root = os.path.expanduser(root)
        self._flag = flag
        self._transform = transform
        self._exts = [".jpg", ".jpeg", ".png"]
        self._list_images(self._root)

    def _list_images(self, root: str) -> None:
        self.synsets: list[str] = []
        self.items: list[tuple[str, int]] = []
        if not os.path.isdir(root):
            raise FileNotFoundError(f"ImageFolderDataset: root {root!r} is not a directory")
        for folder in sorted(os.listdir(root)):
            path = os.path.join(root, folder)
            if not os.path.isdir(path):
                warnings.warn(f"Ignoring {path}, which is not a directory.", stacklevel=3)
                continue
            label = len(self.synsets)
            self.synsets.append(folder)
            for filename in sorted(os.listdir(path)):
                filename = os.path.join(path, filename)
                ext = os.path.splitext(filename)[1]
                if ext.lower() not in self._exts:
                    warnings.warn(
                        f"Ignoring {filename} of type {ext}. Only support "
                        f"{', '.join(self._exts)}",
                        stacklevel=3,
                    )
                    continue
                self.items.append((filename, label))

    def __getitem__(self, idx: int) -> Any:
        img = _image.imread(self.items[idx][0], self._flag)
        label = self.items[idx][1]
        if self._transform is not None:
            return self._transform(img, label)
        return img, label

    def __len__(self) -> int:
        return len(self.items)
