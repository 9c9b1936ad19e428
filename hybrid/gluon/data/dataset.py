"""Datasets (MXNet 1.9 ``gluon.data.dataset``).

A dataset is anything with ``__getitem__`` and ``__len__``.  The helpers below
build lazy views on top of one (``transform``, ``filter``, ``shard``, ``take``,
``sample``).  Nothing here imports JAX, so datasets can be sent to DataLoader
worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...image._array import is_ndarray

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset", "RecordFileDataset"]


class Dataset:
    """Abstract dataset: subclasses implement ``__getitem__(idx)`` and ``__len__()``.

    Iterating a dataset yields ``self[0] ... self[len(self) - 1]``.
    """

    def __getitem__(self, idx: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def filter(self, fn: Callable[[Any], bool]) -> Dataset:
        """A view with only the samples for which ``fn(sample)`` is true (evaluated now)."""
        from .sampler import FilterSampler  # noqa: PLC0415 - circular at import time

        return _SampledDataset(self, FilterSampler(fn, self))

    def shard(self, num_shards: int, index: int) -> Dataset:
        """The ``index``-th of ``num_shards`` contiguous shards.

        The first ``len(self) % num_shards`` shards get one extra sample.
        """
        if not index < num_shards:
            raise ValueError(f"Shard index of out bound: {index} out of {num_shards}")
        if not num_shards > 0:
            raise ValueError("Number of shards must be greater than 0")
        if not index >= 0:
            raise ValueError("Index must be non-negative")
        from .sampler import SequentialSampler  # noqa: PLC0415

        length = len(self)
        shard_len = length // num_shards
        rest = length % num_shards
        start = shard_len * index + min(index, rest)
        end = start + shard_len + (index < rest)
        return _SampledDataset(self, SequentialSampler(end - start, start))

    def take(self, count: int | None) -> Dataset:
        """The first ``count`` samples (all of them if ``count`` is None or too large)."""
        from .sampler import SequentialSampler  # noqa: PLC0415

        if count is None or count > len(self):
            count = len(self)
        return _SampledDataset(self, SequentialSampler(count))

    def sample(self, sampler: Any) -> Dataset:
        """A view in the order of the indices produced by ``sampler``."""
        return _SampledDataset(self, sampler)

    def transform(self, fn: Callable, lazy: bool = True) -> Dataset:
        """Apply ``fn`` to every sample; a tuple sample is unpacked: ``fn(*sample)``.

        ``lazy=True`` applies it on access; ``lazy=False`` applies it to every sample
        now and returns a :class:`SimpleDataset` of the results.
        """
        trans = _LazyTransformDataset(self, fn)
        if lazy:
            return trans
        return SimpleDataset([i for i in trans])

    def transform_first(self, fn: Callable, lazy: bool = True) -> Dataset:
        """Apply ``fn`` to the first element of each sample only (e.g. the image, not
        the label).  See :meth:`transform`."""
        return self.transform(_TransformFirstClosure(fn), lazy)


class SimpleDataset(Dataset):
    """Wraps a list, numpy array, NDArray or any other indexable sequence."""

    def __init__(self, data: Any):
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int) -> Any:
        return self._data[idx]


class _LazyTransformDataset(Dataset):
    """Applies ``fn`` to each sample on access."""

    def __init__(self, data: Any, fn: Callable):
        self._data = data
        self._fn = fn

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int) -> Any:
        item = self._data[idx]
        if isinstance(item, tuple):
            return self._fn(*item)
        return self._fn(item)


class _TransformFirstClosure:
    """Picklable ``lambda x, *args: (fn(x),) + args``."""

    def __init__(self, fn: Callable):
        self._fn = fn

    def __call__(self, x: Any, *args: Any) -> Any:
        if args:
            return (self._fn(x),) + args
        return self._fn(x)


class _SampledDataset(Dataset):
    """The samples of ``dataset`` in the order given by ``sampler``."""

    def __init__(self, dataset: Any, sampler: Any):
        self._dataset = dataset
        self._sampler = sampler
        self._indices = list(iter(sampler))

    def __len__(self) -> int:
        return len(self._sampler)

    def __getitem__(self, idx: int) -> Any:
        return self._dataset[self._indices[idx]]


class ArrayDataset(Dataset):
    """Zips several equally long array-like objects: ``ds[i] = (a[i], b[i], ...)``.

    With a single argument the samples are its items, not 1-tuples.  A 1-D NDArray
    is converted to numpy first (so its items are numpy scalars, as in MXNet); other
    NDArrays give NDArray rows.
    """

    def __init__(self, *args: Any):
        if len(args) == 0:
            raise ValueError("ArrayDataset needs at least 1 array")
        self._length = len(args[0])
        self._data = []
        for i, data in enumerate(args):
            if len(data) != self._length:
                raise ValueError(
                    f"All arrays must have the same length; array[0] has length "
                    f"{self._length} while array[{i}] has {len(data)}."
                )
            if is_ndarray(data) and len(data.shape) == 1:
                data = data.asnumpy()
            self._data.append(data)

    def __getitem__(self, idx: int) -> Any:
        if len(self._data) == 1:
            return self._data[0][idx]
        return tuple([data[idx] for data in self._data])

    def __len__(self) -> int:
        return self._length


class RecordFileDataset(Dataset):
    """The raw records of a RecordIO file (``filename`` and its ``.idx`` next to it).

    ``ds[i]`` is the payload (``bytes``) of the ``i``-th key of the index.
    """

    def __init__(self, filename: str):
        from ...recordio import MXIndexedRecordIO  # noqa: PLC0415

        self.idx_file = os.path.splitext(filename)[0] + ".idx"
        self.filename = filename
        self._record = MXIndexedRecordIO(self.idx_file, self.filename, "r")

    def __getitem__(self, idx: int) -> bytes:
        return self._record.read_idx(self._record.keys[idx])

    def __len__(self) -> int:
        return len(self._record.keys)


class _DownloadedDataset(Dataset):
    """Base of the vision datasets: ``_get_data()`` fills ``_data`` and ``_label``.

    ``_data`` is kept as a numpy array; items are returned as NDArrays in the main
    process and as numpy arrays inside DataLoader workers.
    """

    def __init__(self, root: str, transform: Callable | None):
        super().__init__()
        self._transform = transform
        self._data: Any = None
        self._label: Any = None
        root = os.path.expanduser(root)
        self._root = root
        if not os.path.isdir(root):
            os.makedirs(root, exist_ok=True)
        self._get_data()

    def _get_data(self) -> None:
        raise NotImplementedError

    def __getitem__(self, idx: int) -> Any:
        from ...image._array import fresh  # noqa: PLC0415

        data = self._data[idx]
        if isinstance(data, np.ndarray):
            data = fresh(data)
        if self._transform is not None:
            return self._transform(data, self._label[idx])
        return data, self._label[idx]

    def __len__(self) -> int:
        return len(self._label)
