"""``mx.io`` data iterators (MXNet 1.9 ``python/mxnet/io/io.py``, Python iterators only)."""

from __future__ import annotations

import threading
from collections import OrderedDict, namedtuple
from typing import Any

import numpy as np

from ..image._array import is_ndarray

__all__ = [
    "DataDesc",
    "DataBatch",
    "DataIter",
    "ResizeIter",
    "PrefetchingIter",
    "NDArrayIter",
]


def _nd():
    import hybrid.ndarray as nd  # noqa: PLC0415

    return nd


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """Name, shape, dtype and layout of one input: ``DataDesc(name, shape, dtype, layout)``.

    A namedtuple of ``(name, shape)`` with extra ``dtype`` (default float32) and
    ``layout`` (default ``'NCHW'``) attributes, as in MXNet.
    """

    def __new__(cls, name: str, shape: tuple, dtype: Any = np.float32, layout: str = "NCHW"):
        ret = super().__new__(cls, name, shape)
        ret.dtype = dtype
        ret.layout = layout
        return ret

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout: str | None) -> int:
        """Index of ``'N'`` in ``layout`` (0 when layout is None, -1 when absent)."""
        if layout is None:
            return 0
        return layout.find("N")

    @staticmethod
    def get_list(shapes: list, types: list | None) -> list[DataDesc]:
        """DataDescs from ``[(name, shape)]`` and optional ``[(name, dtype)]``."""
        if types is not None:
            type_dict = dict(types)
            return [DataDesc(x[0], x[1], type_dict[x[0]]) for x in shapes]
        return [DataDesc(x[0], x[1]) for x in shapes]


class DataBatch:
    """One batch: lists of ``data`` and ``label`` NDArrays, plus ``pad`` (number of
    padding samples at the end), ``index``, ``bucket_key``, ``provide_data/label``."""

    def __init__(self, data: list | None, label: list | None = None, pad: int | None = None,
                 index: Any = None, bucket_key: Any = None, provide_data: list | None = None,
                 provide_label: list | None = None):
        if data is not None and not isinstance(data, (list, tuple)):
            raise TypeError("Data must be list of NDArrays")
        if label is not None and not isinstance(label, (list, tuple)):
            raise TypeError("Label must be list of NDArrays")
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self) -> str:
        data_shapes = [d.shape for d in self.data]
        label_shapes = [lab.shape for lab in self.label] if self.label else None
        return f"{type(self).__name__}: data shapes: {data_shapes} label shapes: {label_shapes}"


class DataIter:
    """Base iterator: subclasses implement ``iter_next``/``getdata``/``getlabel``/``getpad``
    (or override ``next``).  Iterating yields :class:`DataBatch` objects; call
    ``reset()`` to start a new epoch."""

    def __init__(self, batch_size: int = 0):
        self.batch_size = batch_size

    def __iter__(self):
        return self

    def reset(self) -> None:
        """Go back to the first batch."""

    def next(self) -> DataBatch:
        """The next batch; raises StopIteration at the end of the epoch."""
        if self.iter_next():
            return DataBatch(data=self.getdata(), label=self.getlabel(), pad=self.getpad(),
                             index=self.getindex())
        raise StopIteration

    def __next__(self) -> DataBatch:
        return self.next()

    def iter_next(self) -> bool:
        """Move to the next batch; False at the end."""
        return False

    def getdata(self) -> Any:
        """Data of the current batch."""
        return None

    def getlabel(self) -> Any:
        """Label of the current batch."""
        return None

    def getindex(self) -> Any:
        """Index of the current batch (None)."""
        return None

    def getpad(self) -> Any:
        """Number of padding samples in the current batch."""
        return None


class ResizeIter(DataIter):
    """Make ``data_iter`` exactly ``size`` batches long per epoch (restarting it, or
    stopping early, as needed)."""

    def __init__(self, data_iter: DataIter, size: int, reset_internal: bool = True):
        super().__init__()
        self.data_iter = data_iter
        self.size = size
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch: DataBatch | None = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        self.batch_size = data_iter.batch_size
        if hasattr(data_iter, "default_bucket_key"):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self) -> None:
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self) -> bool:
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


class PrefetchingIter(DataIter):
    """Runs ``iters`` (one or a list of DataIters) in background threads, one batch ahead.

    The batches of several iterators are concatenated (data and label lists).
    ``rename_data``/``rename_label``: one ``{old_name: new_name}`` dict per iterator.
    """

    def __init__(self, iters: Any, rename_data: list | None = None,
                 rename_label: list | None = None):
        super().__init__()
        if not isinstance(iters, list):
            iters = [iters]
        if len(iters) == 0:
            raise ValueError("PrefetchingIter needs at least one iterator")
        self.n_iter = len(iters)
        self.iters = iters
        self.rename_data = rename_data
        self.rename_label = rename_label
        self.batch_size = self.provide_data[0][1][0]
        self.data_ready = [threading.Event() for _ in range(self.n_iter)]
        self.data_taken = [threading.Event() for _ in range(self.n_iter)]
        for e in self.data_taken:
            e.set()
        self.started = True
        self.current_batch: DataBatch | None = None
        self.next_batch: list = [None] * self.n_iter

        def prefetch_func(self, i):
            while True:
                self.data_taken[i].wait()
                if not self.started:
                    break
                try:
                    self.next_batch[i] = self.iters[i].next()
                except StopIteration:
                    self.next_batch[i] = None
                self.data_taken[i].clear()
                self.data_ready[i].set()

        self.prefetch_threads = [
            threading.Thread(target=prefetch_func, args=[self, i], daemon=True)
            for i in range(self.n_iter)
        ]
        for t in self.prefetch_threads:
            t.start()

    def __del__(self):
        self.started = False
        for e in getattr(self, "data_taken", []):
            e.set()
        for t in getattr(self, "prefetch_threads", []):
            t.join(timeout=5)

    def _renamed(self, descs_per_iter: list, renames: list | None) -> list:
        if renames is None:
            return sum(descs_per_iter, [])
        out = []
        for r, descs in zip(renames, descs_per_iter):
            for x in descs:
                if isinstance(x, DataDesc):
                    out.append(DataDesc(r[x.name], x.shape, x.dtype))
                else:
                    out.append(DataDesc(*x))
        return out

    @property
    def provide_data(self) -> list:
        return self._renamed([list(i.provide_data) for i in self.iters], self.rename_data)

    @property
    def provide_label(self) -> list:
        return self._renamed([list(i.provide_label) for i in self.iters], self.rename_label)

    def reset(self) -> None:
        for e in self.data_ready:
            e.wait()
        for i in self.iters:
            i.reset()
        for e in self.data_ready:
            e.clear()
        for e in self.data_taken:
            e.set()

    def iter_next(self) -> bool:
        for e in self.data_ready:
            e.wait()
        if self.next_batch[0] is None:
            if any(b is not None for b in self.next_batch):
                raise ValueError("Number of entry mismatches between iterators")
            return False
        for batch in self.next_batch:
            if batch.pad != self.next_batch[0].pad:
                raise ValueError("Number of entry mismatches between iterators")
        self.current_batch = DataBatch(
            sum([list(b.data) for b in self.next_batch], []),
            sum([list(b.label or []) for b in self.next_batch], []),
            self.next_batch[0].pad,
            self.next_batch[0].index,
            provide_data=self.provide_data,
            provide_label=self.provide_label,
        )
        for e in self.data_ready:
            e.clear()
        for e in self.data_taken:
            e.set()
        return True

    def next(self) -> DataBatch:
        if self.iter_next():
            return self.current_batch
        raise StopIteration

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


def _init_data(data: Any, allow_empty: bool, default_name: str) -> list:
    """Normalize NDIter input to a sorted list of ``(name, NDArray)``."""
    if data is None:
        if not allow_empty:
            raise ValueError("data must not be None")
        data = []
    if isinstance(data, np.ndarray) or is_ndarray(data):
        data = [data]
    if isinstance(data, list):
        if not allow_empty and len(data) == 0:
            raise ValueError("data must not be empty")
        if len(data) == 1:
            data = OrderedDict([(default_name, data[0])])
        else:
            data = OrderedDict([(f"_{i}_{default_name}", d) for i, d in enumerate(data)])
    if not isinstance(data, dict):
        raise TypeError(
            "Input must be NDArray, numpy.ndarray, a list of them or dict with them as values"
        )
    nd = _nd()
    out = {}
    for k, v in data.items():
        if is_ndarray(v):
            out[k] = v
        else:
            try:
                out[k] = nd.array(v)
            except Exception as err:  # noqa: BLE001 - re-raised as TypeError
                raise TypeError(
                    f"Invalid type '{type(v)}' for {k}, should be NDArray or numpy.ndarray"
                ) from err
    return sorted(out.items())


class NDArrayIter(DataIter):
    """Iterate over in-memory arrays (MXNet's ``NDArrayIter``).

    ``data``/``label``: an array, a list of arrays (named ``_0_data``, ...) or a dict.
    numpy inputs become float32 NDArrays, as ``nd.array`` does.
    ``last_batch_handle``: ``'pad'`` fills the last batch with samples from the start
    (``pad`` tells how many), ``'discard'`` drops it, ``'roll_over'`` carries the
    remaining samples into the first batch of the next epoch.
    """

    def __init__(self, data: Any, label: Any = None, batch_size: int = 1, shuffle: bool = False,
                 last_batch_handle: str = "pad", data_name: str = "data",
                 label_name: str = "softmax_label"):
        super().__init__(batch_size)
        if last_batch_handle not in ("pad", "discard", "roll_over"):
            raise ValueError(
                "last_batch_handle must be 'pad', 'discard' or 'roll_over', got "
                f"{last_batch_handle!r}"
            )
        self.data = _init_data(data, allow_empty=False, default_name=data_name)
        self.label = _init_data(label, allow_empty=True, default_name=label_name)
        self.idx = np.arange(self.data[0][1].shape[0])
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        self.batch_size = batch_size
        self.cursor = -self.batch_size
        self.num_data = self.idx.shape[0]
        self._cache_data: list | None = None
        self._cache_label: list | None = None
        self.reset()
        self.data_list = [x[1] for x in self.data] + [x[1] for x in self.label]
        self.num_source = len(self.data_list)

    @property
    def provide_data(self) -> list[DataDesc]:
        return [DataDesc(k, tuple([self.batch_size] + list(v.shape[1:])), v.dtype)
                for k, v in self.data]

    @property
    def provide_label(self) -> list[DataDesc]:
        return [DataDesc(k, tuple([self.batch_size] + list(v.shape[1:])), v.dtype)
                for k, v in self.label]

    def hard_reset(self) -> None:
        """Reset ignoring roll-over data."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_data = None
        self._cache_label = None

    def reset(self) -> None:
        if self.shuffle:
            self._shuffle_data()
        if (self.last_batch_handle == "roll_over"
                and self.num_data - self.batch_size < self.cursor < self.num_data):
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size

    def iter_next(self) -> bool:
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self) -> DataBatch:
        if not self.iter_next():
            raise StopIteration
        data = self.getdata()
        label = self.getlabel()
        if data[0].shape[0] != self.batch_size:
            self._cache_data = data
            self._cache_label = label
            raise StopIteration
        return DataBatch(data=data, label=label, pad=self.getpad(), index=None)

    def _getdata(self, data_source: list, start: int | None = None,
                 end: int | None = None) -> list:
        start = start if start is not None else 0
        if end is None:
            end = data_source[0][1].shape[0] if data_source else 0
        return [x[1][start:end] for x in data_source]

    def _concat(self, first: list, second: list) -> list:
        if not first or not second:
            return first if first else second
        nd = _nd()
        return [nd.concat(a, b, dim=0) for a, b in zip(first, second)]

    def _batchify(self, data_source: list) -> list:
        if not self.cursor < self.num_data:
            raise RuntimeError("DataIter needs reset.")
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            cache = self._cache_data if self._cache_data is not None else self._cache_label
            if cache is None:
                raise RuntimeError("next epoch should have cached data")
            second = self._getdata(data_source, end=self.cursor + self.batch_size)
            if self._cache_data is not None:
                self._cache_data = None
            else:
                self._cache_label = None
            return self._concat(cache, second)
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            pad = self.batch_size - self.num_data + self.cursor
            first = self._getdata(data_source, start=self.cursor)
            second = self._getdata(data_source, end=pad)
            return self._concat(first, second)
        end_idx = min(self.cursor + self.batch_size, self.num_data)
        return self._getdata(data_source, self.cursor, end_idx)

    def getdata(self) -> list:
        return self._batchify(self.data)

    def getlabel(self) -> list:
        return self._batchify(self.label)

    def getpad(self) -> int:
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0

    def _shuffle_data(self) -> None:
        np.random.shuffle(self.idx)
        nd = _nd()
        self.data = [(k, nd.array(v.asnumpy()[self.idx], v.context)) for k, v in self.data]
        self.label = [(k, nd.array(v.asnumpy()[self.idx], v.context)) for k, v in self.label]
