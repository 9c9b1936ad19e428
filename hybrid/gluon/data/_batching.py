"""Vectorized batch loading for the common dataset shapes (no JAX; used by workers).

``fetch_batch(dataset, indices)`` returns what the default batchify would make of
``[dataset[i] for i in indices]`` (numpy arrays; a list for tuple samples), but for
datasets built as

* a numpy array, an ``ArrayDataset`` of numpy arrays, or a vision dataset without
  ``transform``, and
* the same wrapped by ``transform_first(t)`` where ``t`` is a transform (or a
  ``Compose`` of transforms) that can process a batch sample-wise,

(also behind ``shard``/``take``/``filter``/``sample`` views), it gathers the rows with
one fancy-indexing operation per array and runs each
transform once on the whole batch instead of once per sample.  Deterministic
transforms give bit-identical results.  Random transforms draw one value per
sample from the same global RNG; with a single random transform the values (and
so the batches) are the same as per-sample application, with several the order
of the draws differs (sample 0's first transform, sample 1's first transform,
... instead of sample 0's transforms, sample 1's ...).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .dataset import (
    ArrayDataset,
    _DownloadedDataset,
    _LazyTransformDataset,
    _SampledDataset,
    _TransformFirstClosure,
)

_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NO_PLAN = object()


def np_batchify(data: list) -> Any:
    """Default batchify on numpy: arrays/scalars stacked (dtype kept), tuples zipped."""
    from ...image._array import is_ndarray  # noqa: PLC0415

    first = data[0]
    if isinstance(first, np.ndarray):
        return np.stack(data)
    if isinstance(first, tuple):
        return [np_batchify(list(field)) for field in zip(*data)]
    if is_ndarray(first):
        return np.stack([x.asnumpy() for x in data])
    return np.asarray(data)


def _source_arrays(ds: Any) -> list[np.ndarray] | None:
    if type(ds) is np.ndarray:
        arrays = [ds]
    elif type(ds) is ArrayDataset:
        arrays = ds._data
    elif (isinstance(ds, _DownloadedDataset) and ds._transform is None
          and type(ds).__getitem__ is _DownloadedDataset.__getitem__):
        arrays = [ds._data, ds._label]
    else:
        return None
    if all(type(a) is np.ndarray and not a.dtype.hasobject and a.ndim >= 1 for a in arrays):
        return list(arrays)
    return None


def _batch_steps(fn: Any) -> list[Callable] | None:
    inner = getattr(fn, "_transforms", None)
    if inner is not None and type(fn).__name__ in ("Compose", "HybridCompose"):
        steps = [getattr(t, "_batch", None) for t in inner]
        return steps if all(callable(s) for s in steps) else None
    step = getattr(fn, "_batch", None)
    return [step] if callable(step) else None


def _make_plan(ds: Any) -> Callable | None:
    """A function ``indices -> batch`` equivalent to per-sample loading, or None."""
    arrays = _source_arrays(ds)
    if arrays is not None:
        if len(arrays) == 1:
            only = arrays[0]
            return lambda idx: only[idx]
        return lambda idx: [a[idx] for a in arrays]
    if type(ds) is _SampledDataset:
        inner = _make_plan(ds._dataset)
        if inner is None:
            return None
        index_map = np.asarray(ds._indices)
        if index_map.dtype.kind not in "iu":
            return None
        return lambda idx: inner(index_map[idx])
    if type(ds) is _LazyTransformDataset and type(ds._fn) is _TransformFirstClosure:
        inner = _make_plan(ds._data)
        steps = _batch_steps(ds._fn._fn)
        if inner is None or steps is None:
            return None

        def plan(idx: np.ndarray) -> Any:
            out = inner(idx)
            if out is NotImplemented:
                return out
            first = out[0] if isinstance(out, list) else out
            for step in steps:
                first = step(first)
                if first is NotImplemented:
                    return NotImplemented
            if isinstance(out, list):
                out[0] = first
                return out
            return first

        return plan
    return None


def _run_plan(plan: Callable, indices: Any) -> Any:
    idx = np.asarray(indices, dtype=np.intp)
    if idx.ndim != 1 or idx.size == 0:
        return NotImplemented
    return plan(idx)


def fetch_batch(dataset: Any, indices: Any) -> Any:
    """``np_batchify([dataset[i] for i in indices])``, vectorized when the dataset allows."""
    try:
        plan = _PLANS.get(dataset, None)
    except TypeError:  # not weak-referenceable
        plan = _make_plan(dataset) or _NO_PLAN
    else:
        if plan is None:
            plan = _make_plan(dataset) or _NO_PLAN
            try:
                _PLANS[dataset] = plan
            except TypeError:
                pass
    if plan is not _NO_PLAN:
        out = _run_plan(plan, indices)
        if out is not NotImplemented:
            return out
    return np_batchify([dataset[i] for i in indices])
