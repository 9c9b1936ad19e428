"""``gluon.data.DataLoader`` (MXNet 1.9 semantics; worker design in ``_workers.py``)."""

from __future__ import annotations

import pickle
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...image._array import is_ndarray, new_ndarray
from . import sampler as _sampler
from ._batching import fetch_batch
from ._workers import ProcessPool, ThreadPool, WorkerStartupError

__all__ = ["DataLoader", "default_batchify_fn", "default_mp_batchify_fn"]


def _nd():
    import hybrid.ndarray as nd  # noqa: PLC0415 - JAX only in the main process

    return nd


def default_batchify_fn(data: list) -> Any:
    """Collate samples into a batch (MXNet's ``default_batchify_fn``).

    NDArray samples are stacked with ``nd.stack``; tuple samples (not lists) are
    zipped and batchified field by field, giving a list; anything else goes through
    ``np.asarray`` and becomes an NDArray of the same numpy dtype (float64 stays
    float64, Python ints become int64).
    """
    first = data[0]
    if is_ndarray(first):
        return _nd().stack(*data)
    if isinstance(first, tuple):
        return [default_batchify_fn(list(field)) for field in zip(*data)]
    arr = np.stack(data) if isinstance(first, np.ndarray) else np.asarray(data)
    return new_ndarray(arr)


def default_mp_batchify_fn(data: list) -> Any:
    """Batchify used with ``num_workers > 0``; same result as :func:`default_batchify_fn`.

    (In MXNet it stacks into shared memory.  Here workers stack in numpy and the
    main process makes the NDArrays, so this function is only called in-process.)
    """
    return default_batchify_fn(data)


_DEFAULTS = (default_batchify_fn, default_mp_batchify_fn)


def _numpy_to_nd(batch: Any) -> Any:
    if isinstance(batch, np.ndarray):
        return new_ndarray(batch)
    if isinstance(batch, list):
        return [_numpy_to_nd(b) for b in batch]
    return batch


def _as_in_context(data: Any, ctx: Any) -> Any:
    """Move the NDArrays of a (nested list/tuple) batch to ``ctx``."""
    if is_ndarray(data):
        return data.as_in_context(ctx)
    if isinstance(data, (list, tuple)):
        return [_as_in_context(d, ctx) for d in data]
    return data


def _pinned_context(device_id: int) -> Any:
    try:
        from ...context import cpu_pinned  # noqa: PLC0415
    except ImportError:  # pragma: no cover - core without cpu_pinned
        return None
    return cpu_pinned(device_id)


class _Failure:
    """The exception of a batch fetched ahead of time, raised when it is requested."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class _MultiWorkerIter:
    """One epoch over a worker pool: keeps ``prefetch`` batches in flight, in order."""

    def __init__(self, loader: DataLoader, pool: Any, default_batchify: bool):
        self._loader_ref = weakref.ref(loader)
        self._pool = pool
        self._timeout = loader._timeout
        self._default = default_batchify
        self._pin_ctx = _pinned_context(loader._pin_device_id) if loader._pin_memory else None
        self._epoch = pool.new_epoch()
        # an iterator dropped mid-epoch (break, exception, garbage collection) frees
        # its batches still in flight
        self._closer = weakref.finalize(self, pool.end_epoch, self._epoch)
        self._batch_sampler = loader._batch_sampler
        self._iter = iter(self._batch_sampler)
        self._sent = 0
        self._rcvd = 0
        self._ready: dict[int, Any] = {}
        self._done = False
        for _ in range(loader._prefetch):
            self._push_next()

    def __len__(self) -> int:
        return len(self._batch_sampler)

    def __iter__(self) -> _MultiWorkerIter:
        return self

    def _push_next(self) -> None:
        r = next(self._iter, None)
        if r is None:
            return
        self._pool.submit((self._epoch, self._sent), r)
        self._sent += 1

    def _convert(self, batch: Any) -> Any:
        if self._default:
            batch = _numpy_to_nd(batch)
        if self._pin_ctx is not None:
            batch = _as_in_context(batch, self._pin_ctx)
        return batch

    def _fetch(self, i: int) -> Any:
        if i in self._ready:
            batch = self._ready.pop(i)
            if isinstance(batch, _Failure):
                raise batch.exc
            return batch
        return self._convert(self._pool.get((self._epoch, i), self._timeout))

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        self._push_next()
        if self._rcvd == self._sent:
            self._finish()
            raise StopIteration
        try:
            batch = self._fetch(self._rcvd)
        except BaseException:
            self._done = True
            self._closer()
            raise
        self._rcvd += 1
        # Put the next batch on the device now if it has already arrived, so that
        # the host-to-device copy overlaps with the caller's work on this one.
        nxt = self._rcvd
        if nxt < self._sent and nxt not in self._ready and self._pool.ready((self._epoch, nxt)):
            try:
                self._ready[nxt] = self._fetch(nxt)
            except Exception as exc:  # noqa: BLE001 - re-raised when that batch is requested
                self._ready[nxt] = _Failure(exc)
        return batch

    next = __next__

    def _finish(self) -> None:
        self._done = True
        self._closer()
        loader = self._loader_ref()
        if loader is not None:
            loader._epoch_finished(self)


class DataLoader:
    """Loads data from a dataset and returns mini-batches of data.

    Parameters
    ----------
    dataset : Dataset
        Source dataset.  Numpy arrays, NDArrays and lists can be used directly.
    batch_size : int
        Size of a mini-batch.  Required unless ``batch_sampler`` is given.
    shuffle : bool
        Whether to shuffle the samples (a new permutation every epoch).
    sampler : Sampler
        The sampler to use.  Either specify ``sampler`` or ``shuffle``, not both.
    last_batch : {'keep', 'discard', 'rollover'}, default 'keep'
        What to do with an incomplete last batch: ``keep`` returns a smaller batch,
        ``discard`` drops it, ``rollover`` prepends its samples to the next epoch.
    batch_sampler : Sampler
        A sampler that yields lists of indices.  Excludes ``batch_size``,
        ``shuffle``, ``sampler`` and ``last_batch``.
    batchify_fn : callable
        Merges a list of samples into a batch.  Defaults to
        :func:`default_batchify_fn`.  With ``num_workers > 0`` a custom function runs
        in the workers and its result is returned as is.
    num_workers : int, default 0
        Number of worker processes (0 loads in the main process).  Workers are
        started on first use and live as long as the DataLoader; they never import
        JAX (see ``hybrid/gluon/data/_workers.py``).  A dataset that cannot be
        pickled (e.g. it holds a lambda) falls back to threads, with a warning.
    pin_memory : bool, default False
        Return batches in ``cpu_pinned(pin_device_id)`` memory.
    pin_device_id : int, default 0
    prefetch : int, default ``2 * num_workers``
        Number of batches requested ahead of the one being consumed.
    thread_pool : bool, default False
        Use threads instead of processes for the workers.
    timeout : int, default 120
        Seconds to wait for a batch before raising ``multiprocessing.TimeoutError``.
        A worker that dies is reported at once.
    auto_reload : bool, default False
        When an epoch ends, immediately start loading the next one, so that the next
        ``iter(loader)`` finds batches already prefetched.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = None,
        shuffle: bool = False,
        sampler: Any = None,
        last_batch: str | None = None,
        batch_sampler: Any = None,
        batchify_fn: Callable | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        pin_device_id: int = 0,
        prefetch: int | None = None,
        thread_pool: bool = False,
        timeout: int = 120,
        auto_reload: bool = False,
    ):
        self._dataset = dataset
        self._pin_memory = pin_memory
        self._pin_device_id = pin_device_id
        self._thread_pool = thread_pool
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, given {timeout}")
        self._timeout = timeout
        self._auto_reload = auto_reload

        if batch_sampler is None:
            if batch_size is None:
                raise ValueError("batch_size must be specified unless batch_sampler is specified")
            if sampler is None:
                if shuffle:
                    sampler = _sampler.RandomSampler(len(dataset))
                else:
                    sampler = _sampler.SequentialSampler(len(dataset))
            elif shuffle:
                raise ValueError("shuffle must not be specified if sampler is specified")
            batch_sampler = _sampler.BatchSampler(
                sampler, batch_size, last_batch if last_batch else "keep"
            )
        elif batch_size is not None or shuffle or sampler is not None or last_batch is not None:
            raise ValueError(
                "batch_size, shuffle, sampler and last_batch must "
                "not be specified if batch_sampler is specified."
            )

        self._batch_sampler = batch_sampler
        self._num_workers = num_workers if num_workers >= 0 else 0
        self._prefetch = max(0, int(prefetch) if prefetch is not None else 2 * self._num_workers)
        if batchify_fn is None:
            batchify_fn = default_mp_batchify_fn if self._num_workers > 0 else default_batchify_fn
        self._batchify_fn = batchify_fn
        self._pool: Any = None
        self._pending: _MultiWorkerIter | None = None

    # -- iteration -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        if self._num_workers == 0:
            return self._same_process_iter()
        pending, self._pending = self._pending, None
        if pending is not None and pending._pool is self._pool and not self._pool.broken:
            return pending
        return self._new_worker_iter()

    def _same_process_iter(self) -> Iterator[Any]:
        pin_ctx = _pinned_context(self._pin_device_id) if self._pin_memory else None
        fast = self._is_default_batchify()
        for batch in self._batch_sampler:
            if fast:
                ret = _numpy_to_nd(fetch_batch(self._dataset, batch))
            else:
                ret = self._batchify_fn([self._dataset[idx] for idx in batch])
            if pin_ctx is not None:
                ret = _as_in_context(ret, pin_ctx)
            yield ret

    def _is_default_batchify(self) -> bool:
        return self._batchify_fn in _DEFAULTS

    def _make_pool(self) -> Any:
        worker_batchify = None if self._is_default_batchify() else self._batchify_fn
        if self._thread_pool:
            return ThreadPool(self._num_workers, self._dataset, worker_batchify)
        try:
            return ProcessPool(self._num_workers, self._dataset, worker_batchify)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            warnings.warn(
                f"DataLoader: the dataset or batchify_fn cannot be sent to worker processes "
                f"({type(err).__name__}: {err}); using {self._num_workers} worker threads "
                "instead. Use picklable functions (not lambdas or local functions) to get "
                "worker processes.",
                RuntimeWarning,
                stacklevel=4,
            )
            self._thread_pool = True
            return ThreadPool(self._num_workers, self._dataset, worker_batchify)
        except WorkerStartupError as err:
            if "__main__" not in str(err) and "if __name__" not in str(err):
                raise
            warnings.warn(
                "DataLoader: worker processes could not import the main module, which "
                f"defines part of the dataset ({err}); using {self._num_workers} worker "
                "threads instead. Protect the entry point of the script with "
                "`if __name__ == '__main__':` to get worker processes.",
                RuntimeWarning,
                stacklevel=4,
            )
            self._thread_pool = True
            return ThreadPool(self._num_workers, self._dataset, worker_batchify)

    def _new_worker_iter(self) -> _MultiWorkerIter:
        if self._pool is None or self._pool.broken:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = self._make_pool()
        return _MultiWorkerIter(self, self._pool, self._is_default_batchify())

    def _epoch_finished(self, it: _MultiWorkerIter) -> None:
        if self._auto_reload and self._pool is it._pool and not self._pool.broken:
            self._pending = _MultiWorkerIter(self, self._pool, self._is_default_batchify())

    def __len__(self) -> int:
        return len(self._batch_sampler)

    # -- lifecycle -------------------------------------------------------------------------
    def _worker_pids(self) -> list[int]:
        """Process ids of the live worker pool (empty without process workers)."""
        return self._pool.pids() if self._pool is not None else []

    def close(self) -> None:
        """Stop the workers now, even under a live iterator. Without ``close`` they
        stop once neither the loader nor any of its iterators is referenced (so
        ``for b in DataLoader(...)`` keeps them for the whole loop), and at exit."""
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
