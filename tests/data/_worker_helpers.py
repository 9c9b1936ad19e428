"""Picklable datasets for the DataLoader worker tests.

Kept free of heavy imports: a worker unpickles these by importing this module, and
the tests check that a worker never imports JAX.
"""

import os
import signal
import sys
import time

import numpy as np


class ProbeDataset:
    """Item i is (i, pid of the loading process, whether jax is imported there, a draw
    from numpy's global RNG)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return (np.int64(i), np.int64(os.getpid()), np.int64("jax" in sys.modules),
                np.random.random())


class FailingDataset:
    """Raises ValueError for index ``bad``."""

    def __init__(self, n=16, bad=5):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"corrupt sample {i} in FailingDataset")
        return np.float32(i)


class DyingDataset:
    """The loading process dies at index ``bad``: ``os._exit`` or SIGKILL to itself."""

    def __init__(self, n=16, bad=5, how="exit"):
        self.n, self.bad, self.how = n, bad, how

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            if self.how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return np.float32(i)


class SlowDataset:
    """Sleeps ``delay`` seconds for index ``slow``."""

    def __init__(self, n=8, slow=2, delay=30.0):
        self.n, self.slow, self.delay = n, slow, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.slow:
            time.sleep(self.delay)
        return np.float32(i)


def sum_batchify(samples):
    """A custom batchify: (sum of the samples, number of samples) as a tuple of numpy."""
    arr = np.asarray(samples)
    return (arr.sum(), len(samples))
