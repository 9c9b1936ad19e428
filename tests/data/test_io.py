"""mx.io: DataDesc, DataBatch, NDArrayIter (pad / discard / roll_over), ResizeIter,
PrefetchingIter."""

import numpy as np
import pytest

import hybrid as mx
from hybrid import io as mio


def _labels(batch):
    return batch.label[0].asnumpy().tolist()


def test_data_desc_is_a_named_tuple_with_dtype_and_layout():
    d = mio.DataDesc("data", (4, 3))
    assert d == ("data", (4, 3)) and d.name == "data" and d.dtype == np.float32
    assert d.layout == "NCHW" and repr(d).startswith("DataDesc[data,(4, 3)")
    assert mio.DataDesc.get_batch_axis("TNC") == 1 and mio.DataDesc.get_batch_axis(None) == 0
    descs = mio.DataDesc.get_list([("a", (1,)), ("b", (2,))], [("a", np.int32), ("b", "f")])
    assert descs[0].dtype == np.int32


def test_data_batch_checks_list_inputs():
    b = mio.DataBatch([mx.nd.zeros((2, 3))], [mx.nd.zeros((2,))], pad=1)
    assert "data shapes: [(2, 3)]" in str(b) and b.pad == 1
    with pytest.raises(TypeError, match="list of NDArrays"):
        mio.DataBatch(mx.nd.zeros((2,)))


def test_ndarray_iter_pad_wraps_around_and_reports_pad():
    data = np.arange(10).reshape(5, 2)
    it = mio.NDArrayIter(data, np.arange(5), batch_size=2)
    batches = list(it)
    assert [_labels(b) for b in batches] == [[0, 1], [2, 3], [4, 0]]
    assert [b.pad for b in batches] == [0, 0, 1]
    assert batches[0].data[0].dtype == np.float32  # numpy input -> float32 NDArray
    assert it.provide_data[0] == ("data", (2, 2))
    assert it.provide_label[0].name == "softmax_label"
    it.reset()
    assert len(list(it)) == 3


def test_ndarray_iter_discard_and_roll_over():
    it = mio.NDArrayIter(np.arange(5), np.arange(5), batch_size=2, last_batch_handle="discard")
    assert [_labels(b) for b in it] == [[0, 1], [2, 3]]
    roll = mio.NDArrayIter(np.arange(5), np.arange(5), batch_size=2,
                           last_batch_handle="roll_over")
    assert [_labels(b) for b in roll] == [[0, 1], [2, 3]]
    roll.reset()
    second = list(roll)
    assert _labels(second[0]) == [4, 0] and second[0].pad == 1
    assert [_labels(b) for b in second[1:]] == [[1, 2], [3, 4]]


def test_ndarray_iter_dict_and_list_inputs_and_shuffle():
    it = mio.NDArrayIter({"b": np.zeros((4, 1)), "a": np.ones((4, 2))}, batch_size=4)
    assert [d.name for d in it.provide_data] == ["a", "b"]
    lst = mio.NDArrayIter([np.zeros((4, 1)), np.ones((4, 1))], batch_size=2)
    assert [d.name for d in lst.provide_data] == ["_0_data", "_1_data"]
    np.random.seed(0)
    sh = mio.NDArrayIter(np.arange(20), np.arange(20), batch_size=5, shuffle=True)
    seen = sum((_labels(b) for b in sh), [])
    assert sorted(seen) == list(range(20)) and seen != list(range(20))
    for b in mio.NDArrayIter(np.arange(20), np.arange(20), batch_size=5, shuffle=True):
        np.testing.assert_array_equal(b.data[0].asnumpy(), b.label[0].asnumpy())
    with pytest.raises(ValueError, match="last_batch_handle"):
        mio.NDArrayIter(np.arange(4), last_batch_handle="keep")


def test_resize_iter_repeats_or_truncates():
    base = mio.NDArrayIter(np.arange(6), np.arange(6), batch_size=2)
    longer = mio.ResizeIter(base, 5)
    assert [_labels(b) for b in longer] == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    shorter = mio.ResizeIter(mio.NDArrayIter(np.arange(6), np.arange(6), batch_size=2), 2)
    assert len(list(shorter)) == 2
    shorter.reset()
    assert _labels(next(shorter)) == [0, 1]


def test_prefetching_iter_concatenates_and_renames():
    a = mio.NDArrayIter(np.arange(4), np.arange(4), batch_size=2)
    b = mio.NDArrayIter(np.arange(4) + 10, np.arange(4) + 10, batch_size=2)
    it = mio.PrefetchingIter([a, b], rename_data=[{"data": "d1"}, {"data": "d2"}])
    assert [d.name for d in it.provide_data] == ["d1", "d2"]
    batches = list(it)
    assert len(batches) == 2 and len(batches[0].data) == 2
    assert batches[1].data[1].asnumpy().tolist() == [12, 13]
    it.reset()
    assert len(list(it)) == 2
