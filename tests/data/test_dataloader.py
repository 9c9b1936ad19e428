"""DataLoader: arguments and batching (MXNet 1.9 semantics), worker processes and threads."""

import gc
import multiprocessing
import os
import time

import numpy as np
import pytest

import hybrid as mx
from hybrid.gluon.data import (
    ArrayDataset,
    BatchSampler,
    DataLoader,
    SequentialSampler,
    SimpleDataset,
)
from hybrid.gluon.data.dataloader import default_batchify_fn, default_mp_batchify_fn
from hybrid.gluon.data.vision import transforms

from . import _worker_helpers as helpers


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except FileNotFoundError:
        return False
    return True


def _wait_dead(pids, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


# ---------------------------------------------------------------------------------------
# argument validation and batching (in-process)


def test_batch_size_is_required_without_batch_sampler():
    with pytest.raises(ValueError, match="batch_size must be specified"):
        DataLoader(np.arange(10))


def test_shuffle_and_sampler_are_exclusive():
    with pytest.raises(ValueError, match="shuffle must not be specified"):
        DataLoader(np.arange(10), batch_size=2, shuffle=True, sampler=SequentialSampler(10))


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 2}, {"shuffle": True}, {"sampler": SequentialSampler(10)},
     {"last_batch": "keep"}],
)
def test_batch_sampler_excludes_other_sampling_arguments(kwargs):
    bs = BatchSampler(SequentialSampler(10), 3)
    with pytest.raises(ValueError, match="must not be specified if batch_sampler"):
        DataLoader(np.arange(10), batch_sampler=bs, **kwargs)


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout must be positive"):
        DataLoader(np.arange(4), batch_size=2, timeout=0)


def test_last_batch_default_keeps_the_short_batch():
    loader = DataLoader(np.arange(10, dtype=np.float32), batch_size=4)
    batches = [b.asnumpy().tolist() for b in loader]
    assert len(loader) == 3
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_last_batch_discard_drops_the_short_batch():
    loader = DataLoader(np.arange(10, dtype=np.float32), batch_size=4, last_batch="discard")
    assert len(loader) == 2
    assert [b.shape[0] for b in loader] == [4, 4]


def test_last_batch_rollover_carries_samples_into_next_epoch():
    loader = DataLoader(np.arange(10, dtype=np.float32), batch_size=4, last_batch="rollover")
    first = [b.asnumpy().tolist() for b in loader]
    assert first == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(loader) == 3  # 2 rolled-over samples + 10 new ones
    second = [b.asnumpy().tolist() for b in loader]
    assert second[0] == [8, 9, 0, 1]


def test_invalid_last_batch_is_rejected():
    with pytest.raises(ValueError, match="last_batch must be one of"):
        DataLoader(np.arange(4), batch_size=2, last_batch="drop")


def test_shuffle_visits_every_sample_once_in_a_new_order():
    np.random.seed(0)
    loader = DataLoader(np.arange(100, dtype=np.float32), batch_size=10, shuffle=True)
    epoch1 = np.concatenate([b.asnumpy() for b in loader])
    epoch2 = np.concatenate([b.asnumpy() for b in loader])
    assert sorted(epoch1.tolist()) == list(range(100))
    assert not np.array_equal(epoch1, np.arange(100))
    assert not np.array_equal(epoch1, epoch2)


def test_default_batchify_keeps_numpy_dtypes():
    for dtype in (np.float64, np.int32, np.uint8, np.int64):
        data = [np.array([1, 2], dtype=dtype), np.array([3, 4], dtype=dtype)]
        out = default_batchify_fn(data)
        assert isinstance(out, mx.nd.NDArray)
        assert out.dtype == dtype
        assert out.shape == (2, 2)
    assert default_batchify_fn([1, 2, 3]).dtype == np.int64  # Python ints -> int64


def test_default_batchify_zips_tuples_into_a_list_but_not_lists():
    samples = [(np.float32(1), np.int32(0)), (np.float32(2), np.int32(1))]
    out = default_batchify_fn(samples)
    assert isinstance(out, list) and len(out) == 2
    assert out[0].dtype == np.float32 and out[1].dtype == np.int32
    as_lists = default_batchify_fn([[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(as_lists, mx.nd.NDArray) and as_lists.shape == (2, 2)


def test_default_batchify_stacks_ndarray_items():
    items = [mx.nd.array([1, 2], dtype="int32"), mx.nd.array([3, 4], dtype="int32")]
    out = default_batchify_fn(items)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.asnumpy(), [[1, 2], [3, 4]])
    assert default_mp_batchify_fn(items).shape == (2, 2)


def test_custom_batchify_fn_and_batch_sampler_are_used():
    bs = BatchSampler(SequentialSampler(7), 3, "keep")
    loader = DataLoader(SimpleDataset(list(range(7))), batch_sampler=bs,
                        batchify_fn=lambda samples: sum(samples))
    assert list(loader) == [0 + 1 + 2, 3 + 4 + 5, 6]


def test_array_dataset_of_ndarrays_batches_like_mxnet():
    x = mx.nd.array(np.arange(12).reshape(6, 2), dtype="float32")
    y = mx.nd.array(np.arange(6), dtype="int32")
    loader = DataLoader(ArrayDataset(x, y), batch_size=4)
    (d0, l0), (d1, l1) = list(loader)
    assert d0.shape == (4, 2) and d1.shape == (2, 2)
    assert l0.dtype == np.int32
    np.testing.assert_array_equal(l1.asnumpy(), [4, 5])


def test_pin_memory_returns_batches_in_pinned_context():
    loader = DataLoader(np.arange(4, dtype=np.float32), batch_size=2, pin_memory=True)
    batch = next(iter(loader))
    assert batch.context == mx.cpu_pinned(0)


def test_negative_num_workers_means_in_process():
    loader = DataLoader(np.arange(4, dtype=np.float32), batch_size=2, num_workers=-1)
    assert len(list(loader)) == 2
    assert loader._worker_pids() == []


# ---------------------------------------------------------------------------------------
# worker processes


@pytest.fixture(scope="module")
def cifar_like():
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, size=(64, 8, 8, 3)).astype(np.uint8)
    y = np.arange(64, dtype=np.int32)
    return x, y


def test_workers_match_in_process_results_and_never_import_jax(cifar_like):
    x, y = cifar_like
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.5, 0.25)])
    ds = ArrayDataset(x, y).transform_first(tf)
    ref = [(d.asnumpy(), l.asnumpy()) for d, l in DataLoader(ds, batch_size=10)]
    loader = DataLoader(ds, batch_size=10, num_workers=2)
    for _ in range(2):  # two epochs on the same worker pool
        got = [(d.asnumpy(), l.asnumpy()) for d, l in loader]
        assert len(got) == len(ref) == 7
        for (gd, gl), (rd, rl) in zip(got, ref):
            assert gd.dtype == np.float32 and gl.dtype == np.int32
            np.testing.assert_array_equal(gd, rd)
            np.testing.assert_array_equal(gl, rl)
    pids = loader._worker_pids()
    assert len(pids) == 2 and os.getpid() not in pids

    probe = DataLoader(helpers.ProbeDataset(), batch_size=2, num_workers=2)
    batches = [[b.asnumpy() for b in batch] for batch in probe]
    pids_seen = {int(b[1][0]) for b in batches}
    assert pids_seen == set(probe._worker_pids())
    assert all(b[2].tolist() == [0, 0] for b in batches), "a DataLoader worker imported jax"
    by_worker = {}
    for b in batches:
        by_worker.setdefault(int(b[1][0]), []).extend(b[3].tolist())
    draws = list(by_worker.values())
    assert draws[0] != draws[1], "workers must not share one random stream"
    probe_pids = probe._worker_pids()
    loader.close()
    probe.close()
    assert _wait_dead(pids + probe_pids) == []


def test_big_ndarray_dataset_reaches_workers_as_shared_numpy():
    rows = np.arange(1024 * 512, dtype=np.float32).reshape(1024, 512)  # 2 MiB: shared memory
    data = mx.nd.array(rows, dtype="float32")
    loader = DataLoader(ArrayDataset(data), batch_size=512, num_workers=2,
                        batchify_fn=helpers.sum_batchify)
    sums = [s for s, n in loader]
    assert [float(s) for s in sums] == [float(rows[:512].sum()), float(rows[512:].sum())]
    assert all(isinstance(s, (np.generic, np.ndarray)) for s in sums)  # custom batchify as is
    if os.path.isdir("/dev/shm"):  # the shared copy is unlinked once the workers mapped it
        assert not [f for f in os.listdir("/dev/shm") if f.startswith("hybrid-data-")]
    loader.close()


def test_worker_exception_is_reraised_with_its_traceback():
    loader = DataLoader(helpers.FailingDataset(), batch_size=4, num_workers=2)
    it = iter(loader)
    next(it)
    with pytest.raises(ValueError, match="corrupt sample 5") as info:
        next(it)
    text = str(info.value.__cause__)
    assert "FailingDataset" in text and "__getitem__" in text and "Traceback" in text
    assert any("DataLoader worker" in n for n in getattr(info.value, "__notes__", []))
    # the pool survives a Python exception: a new epoch starts again
    assert next(iter(loader)).shape == (4,)
    loader.close()


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_dead_worker_is_reported_quickly(how):
    loader = DataLoader(helpers.DyingDataset(how=how), batch_size=4, num_workers=2,
                        timeout=60)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="DataLoader worker") as info:
        for _ in loader:
            pass
    assert time.monotonic() - start < 20, "worker death must not wait for the timeout"
    msg = str(info.value)
    assert ("exit code 3" in msg) if how == "exit" else ("SIGKILL" in msg)
    old = loader._worker_pids()
    # the next epoch starts a fresh pool
    with pytest.raises(RuntimeError):
        list(loader)
    loader.close()
    assert _wait_dead(old) == []


def test_hung_worker_times_out():
    loader = DataLoader(helpers.SlowDataset(delay=30), batch_size=2, num_workers=1, timeout=1)
    it = iter(loader)
    next(it)
    start = time.monotonic()
    with pytest.raises(multiprocessing.TimeoutError, match="timed out after 1 seconds"):
        next(it)
    assert time.monotonic() - start < 10
    pids = loader._worker_pids()
    loader.close()
    assert _wait_dead(pids) == []


def test_interrupted_epochs_leave_no_stray_workers(cifar_like):
    x, y = cifar_like
    loader = DataLoader(ArrayDataset(x, y), batch_size=4, num_workers=2, prefetch=6)
    for i, _ in enumerate(loader):  # break out of an epoch
        if i == 1:
            break
    # the next epoch is complete and in order despite the abandoned batches in flight
    labels = np.concatenate([l.asnumpy() for _, l in loader])
    np.testing.assert_array_equal(labels, y)
    it = iter(loader)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the training loop
        for _ in it:
            raise KeyboardInterrupt
    pids = loader._worker_pids()
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    del it, loader  # garbage collecting the iterator and the loader ends the workers
    gc.collect()
    assert _wait_dead(pids) == []


def test_unpicklable_dataset_falls_back_to_threads():
    ds = SimpleDataset(list(range(6))).transform(lambda v: v * 2)
    loader = DataLoader(ds, batch_size=3, num_workers=2)
    with pytest.warns(RuntimeWarning, match="worker threads"):
        batches = [b.asnumpy().tolist() for b in loader]
    assert batches == [[0, 2, 4], [6, 8, 10]]
    assert loader._worker_pids() == []


def test_thread_pool_gives_the_same_batches():
    x = np.arange(30, dtype=np.float32).reshape(15, 2)
    loader = DataLoader(ArrayDataset(x, np.arange(15)), batch_size=4, num_workers=2,
                        thread_pool=True, prefetch=1)
    got = list(loader)
    assert len(got) == 4
    np.testing.assert_array_equal(np.concatenate([d.asnumpy() for d, _ in got]), x)
    assert got[0][1].dtype == np.int64


def test_auto_reload_prefetches_the_next_epoch():
    loader = DataLoader(np.arange(8, dtype=np.float32), batch_size=4, num_workers=1,
                        thread_pool=True, auto_reload=True)
    assert len(list(loader)) == 2
    pending = loader._pending
    assert pending is not None and pending._sent > 0  # already loading epoch 2
    assert iter(loader) is pending
    assert [b.asnumpy().tolist() for b in pending] == [[0, 1, 2, 3], [4, 5, 6, 7]]


_CTRL_C_SCRIPT = """
import sys
import numpy as np
from hybrid.gluon.data import ArrayDataset, DataLoader
from hybrid.gluon.data.vision import transforms

if __name__ == "__main__":
    ds = ArrayDataset(np.zeros((4096, 8, 8, 3), np.uint8), np.arange(4096))
    loader = DataLoader(ds.transform_first(transforms.ToTensor()), batch_size=16,
                        num_workers=2)
    it = iter(loader)
    next(it)
    print("PIDS", *loader._worker_pids(), flush=True)
    while True:
        for _ in loader:
            pass
"""


def test_ctrl_c_in_a_real_program_stops_it_and_its_workers(tmp_path):
    import signal
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(_CTRL_C_SCRIPT)
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("PIDS"), proc.stderr.read()
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert _wait_dead(pids) == []


_MAIN_DEFINED_TRANSFORM = """
import numpy as np
from hybrid.gluon.data import DataLoader, SimpleDataset

def double(x):
    return np.float32(x * 2)

def run():
    ds = SimpleDataset(list(range(8))).transform(double)
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    print([b.asnumpy().tolist() for b in loader], len(loader._worker_pids()))

{entry}
"""


@pytest.mark.parametrize(
    "entry,workers,warns",
    [("if __name__ == '__main__':\n    run()", "2", False), ("run()", "0", True)],
    ids=["guarded-script-uses-processes", "unguarded-script-falls-back-to-threads"],
)
def test_functions_defined_in_the_main_script(tmp_path, entry, workers, warns):
    import subprocess
    import sys

    script = tmp_path / "main_script.py"
    script.write_text(_MAIN_DEFINED_TRANSFORM.format(entry=entry))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == (
        f"[[0.0, 2.0, 4.0, 6.0], [8.0, 10.0, 12.0, 14.0]] {workers}")
    assert ("if __name__ == '__main__'" in out.stderr) == warns


@pytest.mark.parametrize("thread_pool", [False, True], ids=["processes", "threads"])
def test_two_iterators_over_one_loader_interleave(thread_pool):
    loader = DataLoader(np.arange(12, dtype=np.float32), batch_size=3, num_workers=2,
                        thread_pool=thread_pool, timeout=20)
    pairs = [(a.asnumpy().tolist(), b.asnumpy().tolist()) for a, b in zip(loader, loader)]
    assert pairs == [([0, 1, 2], [0, 1, 2]), ([3, 4, 5], [3, 4, 5]), ([6, 7, 8], [6, 7, 8]),
                     ([9, 10, 11], [9, 10, 11])]
    loader.close()
