"""gluon.data datasets and samplers (MXNet 1.9 semantics)."""

import numpy as np
import pytest

import hybrid as mx
from hybrid import recordio
from hybrid.gluon.contrib.data import IntervalSampler
from hybrid.gluon.data import (
    ArrayDataset,
    BatchSampler,
    Dataset,
    FilterSampler,
    RandomSampler,
    RecordFileDataset,
    SequentialSampler,
    SimpleDataset,
)
from hybrid.gluon.data import sampler as sampler_module
from hybrid.gluon.data._batching import fetch_batch, np_batchify
from hybrid.gluon.data.vision import transforms


def test_simple_dataset_wraps_a_list():
    ds = SimpleDataset(["a", "b", "c"])
    assert len(ds) == 3 and ds[1] == "b" and list(ds) == ["a", "b", "c"]


def test_array_dataset_zips_and_a_single_array_gives_items():
    x, y = np.arange(6).reshape(3, 2), np.array([10, 11, 12])
    ds = ArrayDataset(x, y)
    item = ds[1]
    assert isinstance(item, tuple) and item[0].tolist() == [2, 3] and item[1] == 11
    single = ArrayDataset(x)
    assert single[2].tolist() == [4, 5]


def test_array_dataset_rejects_different_lengths_and_no_arrays():
    with pytest.raises(ValueError, match="same length"):
        ArrayDataset(np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="at least 1"):
        ArrayDataset()


def test_array_dataset_turns_1d_ndarrays_into_numpy_but_keeps_nd_rows():
    data = mx.nd.array(np.arange(6).reshape(3, 2))
    label = mx.nd.array([0, 1, 2])
    ds = ArrayDataset(data, label)
    row, lab = ds[2]
    assert isinstance(row, mx.nd.NDArray) and row.asnumpy().tolist() == [4, 5]
    assert isinstance(lab, np.generic) and lab == 2


def test_transform_lazy_and_eager():
    calls = []

    def double(x, y):
        calls.append(x)
        return x * 2, y

    base = ArrayDataset(np.arange(4), np.arange(4) + 10)
    lazy = base.transform(double)
    assert calls == []
    assert lazy[3] == (6, 13) and calls == [3]
    eager = base.transform(double, lazy=False)
    assert type(eager) is SimpleDataset and len(calls) == 5
    assert eager[1] == (2, 11)


def test_transform_first_only_touches_the_first_element():
    ds = ArrayDataset(np.arange(3), np.arange(3)).transform_first(lambda x: -x)
    assert ds[2] == (-2, 2)
    single = SimpleDataset([1, 2]).transform_first(lambda x: x + 100)
    assert single[0] == 101


def test_filter_keeps_matching_samples_in_order():
    ds = SimpleDataset(list(range(10))).filter(lambda v: v % 3 == 0)
    assert list(ds) == [0, 3, 6, 9] and len(ds) == 4


def test_shard_gives_the_remainder_to_the_first_shards():
    ds = SimpleDataset(list(range(10)))
    shards = [list(ds.shard(3, i)) for i in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="out of 3"):
        ds.shard(3, 3)


def test_take_and_sample():
    ds = SimpleDataset(list(range(5)))
    assert list(ds.take(2)) == [0, 1]
    assert list(ds.take(None)) == list(range(5)) and len(ds.take(99)) == 5
    assert list(ds.sample(SequentialSampler(2, start=3))) == [3, 4]


def test_iterating_a_dataset_stops_at_len():
    class Clamping(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, idx):
            return min(idx, 2)  # never raises IndexError, like a clamping array

    assert list(Clamping()) == [0, 1, 2]


def test_sequential_and_random_samplers():
    assert list(SequentialSampler(4, start=2)) == [2, 3, 4, 5]
    np.random.seed(3)
    a = list(RandomSampler(20))
    b = list(RandomSampler(20))
    assert sorted(a) == list(range(20)) and a != b and len(RandomSampler(20)) == 20


def test_filter_sampler():
    s = FilterSampler(lambda v: v > 1, SimpleDataset([0, 5, 1, 7]))
    assert list(s) == [1, 3] and len(s) == 2


def test_batch_sampler_keep_discard_rollover():
    assert list(BatchSampler(SequentialSampler(7), 3, "keep")) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(SequentialSampler(7), 3, "keep")) == 3
    assert list(BatchSampler(SequentialSampler(7), 3, "discard")) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(SequentialSampler(7), 3, "discard")) == 2
    roll = BatchSampler(SequentialSampler(7), 3, "rollover")
    assert list(roll) == [[0, 1, 2], [3, 4, 5]]
    assert len(roll) == 2  # (1 + 7) // 3
    assert list(roll) == [[6, 0, 1], [2, 3, 4]]
    assert list(roll) == [[5, 6, 0], [1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="last_batch must be one of"):
        BatchSampler(SequentialSampler(3), 2, "bad")


def test_interval_sampler_with_and_without_rollover():
    assert list(IntervalSampler(6, 3)) == [0, 3, 1, 4, 2, 5]
    assert list(IntervalSampler(6, 3, rollover=False)) == [0, 3]
    assert len(IntervalSampler(6, 3)) == 6
    assert sampler_module.IntervalSampler is IntervalSampler
    with pytest.raises(ValueError, match="smaller than length"):
        IntervalSampler(3, 3)


def test_record_file_dataset_reads_records_by_index_order(tmp_path):
    rec, idx = str(tmp_path / "r.rec"), str(tmp_path / "r.idx")
    with recordio.MXIndexedRecordIO(idx, rec, "w") as w:
        for key in (5, 1, 9):
            w.write_idx(key, f"rec{key}".encode())
    ds = RecordFileDataset(rec)
    assert len(ds) == 3 and [ds[i] for i in range(3)] == [b"rec5", b"rec1", b"rec9"]


def test_vectorized_batches_equal_per_sample_batches():
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, size=(20, 6, 5, 3)).astype(np.uint8)
    y = np.arange(20, dtype=np.int32)
    pipelines = [
        transforms.Compose([transforms.RandomFlipLeftRight(), transforms.ToTensor(),
                            transforms.Normalize((0.1, 0.2, 0.3), (0.5, 0.6, 0.7))]),
        transforms.RandomBrightness(0.4),
        transforms.Compose([transforms.Resize((4, 3)), transforms.CenterCrop(3),
                            transforms.Cast("float64")]),
        transforms.RandomFlipTopBottom(),
    ]
    idx = [4, 0, 19, 7, 7]
    for tf in pipelines:
        ds = ArrayDataset(x, y).transform_first(tf)
        np.random.seed(5)
        fast = fetch_batch(ds, idx)
        np.random.seed(5)
        slow = np_batchify([ds[i] for i in idx])
        for f, s in zip(fast, slow):
            assert f.dtype == s.dtype
            np.testing.assert_array_equal(f, s)
    untransformed = fetch_batch(ArrayDataset(x, y), idx)
    np.testing.assert_array_equal(untransformed[0], x[idx])
    np.testing.assert_array_equal(fetch_batch(y, idx), np_batchify([y[i] for i in idx]))
    views = [ArrayDataset(x, y).shard(3, 1).transform_first(transforms.ToTensor()),
             ArrayDataset(x, y).transform_first(transforms.ToTensor()).take(12),
             ArrayDataset(x).filter(lambda im: im.mean() > 120).transform_first(
                 transforms.ToTensor())]
    for ds in views:
        small = [0, 2, 1]
        for f, s in zip(fetch_batch(ds, small), np_batchify([ds[i] for i in small])):
            np.testing.assert_array_equal(f, s)
    # a transform without a batch path falls back to per-sample application
    ds = ArrayDataset(x, y).transform_first(transforms.RandomLighting(0.1))
    out = fetch_batch(ds, idx)
    assert out[0].shape == (5, 6, 5, 3) and out[1].tolist() == idx
