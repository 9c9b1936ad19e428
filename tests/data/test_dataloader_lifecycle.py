"""DataLoader lifetime: an unbound loader keeps its workers for the whole loop, workers stop
once nothing references them, and a hung item under ``thread_pool=True`` times out without
holding the interpreter at exit."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hybrid.gluon.data import DataLoader

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("thread_pool", [False, True])
@pytest.mark.parametrize("num_workers,batch_size", [(1, 4), (2, 3)])
def test_unbound_loader_iterates_to_the_end(thread_pool, num_workers, batch_size):
    data = np.arange(40, dtype=np.float32).reshape(20, 2) * (num_workers + 1)
    batches = []
    for batch in DataLoader(data, batch_size=batch_size, num_workers=num_workers,
                            thread_pool=thread_pool):
        gc.collect()  # the loader object itself is garbage by now
        batches.append(batch.asnumpy())
    np.testing.assert_array_equal(np.concatenate(batches), data)
    assert len(batches) == -(-len(data) // batch_size)


def test_process_workers_stop_once_loader_and_iterators_are_gone():
    it = iter(DataLoader(np.ones((8, 2), np.float32), batch_size=2, num_workers=2))
    pids = it._pool.pids()
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    assert len(list(it)) == 4
    del it
    gc.collect()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [1, 2])
def test_hung_item_with_thread_pool_times_out_and_lets_the_interpreter_exit(num_workers):
    script = textwrap.dedent(f"""
        import multiprocessing, threading
        from hybrid.gluon.data import DataLoader

        class Hangs:
            def __len__(self):
                return 4
            def __getitem__(self, i):
                threading.Event().wait()  # never returns

        loader = DataLoader(Hangs(), batch_size=1, num_workers={num_workers},
                            thread_pool=True, timeout=1)
        try:
            next(iter(loader))
        except multiprocessing.TimeoutError as err:
            print("TIMEOUT", err)
    """)
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=90, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "TIMEOUT Worker timed out after 1 seconds" in result.stdout
    assert time.monotonic() - start < 90
