"""DataLoader throughput: hybrid.gluon.data vs torch.utils.data, same work, same run.

CIFAR-shaped uint8 images (50,000 x 32x32x3, random), the pipeline
``RandomFlipLeftRight -> ToTensor -> Normalize`` applied per sample, batches of 128,
shuffled, for each requested ``num_workers``.  PyTorch (if installed) runs the same
per-sample transforms written with torch ops and its default collate.  Variants are
interleaved, every epoch is timed, and the table shows the median batches/second
and the ratio hybrid / torch.  Both loaders keep their workers across epochs
(``persistent_workers=True`` for torch); a warm-up epoch is not timed.

Recommended invocations (the 0-worker case on one core):

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/dataloader.py --workers 0
    python benchmarks/dataloader.py --workers 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    x = rng.randint(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.randint(0, 10, size=(n,)).astype(np.int32)
    return x, y


class PerSample:
    """Wraps a dataset so that hybrid cannot vectorize it (forces per-sample transforms)."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


def hybrid_loader(x, y, batch_size: int, workers: int, per_sample: bool = False):
    from hybrid.gluon.data import ArrayDataset, DataLoader
    from hybrid.gluon.data.vision import transforms as T

    tf = T.Compose([T.RandomFlipLeftRight(), T.ToTensor(), T.Normalize(MEAN, STD)])
    ds = ArrayDataset(x, y).transform_first(tf)
    if per_sample:
        ds = PerSample(ds)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)


class TorchCifarLike:
    """The same per-sample work as the hybrid pipeline, written with torch ops."""

    def __init__(self, x, y):
        import torch

        self.x, self.y = x, y
        self.mean = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        import torch

        img = torch.from_numpy(self.x[i])
        if torch.rand(1).item() < 0.5:
            img = img.flip(1)
        img = img.permute(2, 0, 1).float().div(255.0)
        img = (img - self.mean) / self.std
        return img, int(self.y[i])


def torch_loader(x, y, batch_size: int, workers: int):
    import torch

    return torch.utils.data.DataLoader(
        TorchCifarLike(x, y), batch_size=batch_size, shuffle=True, num_workers=workers,
        persistent_workers=workers > 0,
    )


def run_epoch(loader, kind: str, max_batches: int | None) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    last = None
    for data, _label in loader:
        n += 1
        last = data
        if max_batches is not None and n >= max_batches:
            break
    if kind.startswith("hybrid") and last is not None:
        last.wait_to_read()
    return n, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--samples", type=int, default=50000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per variant")
    p.add_argument("--max-batches", type=int, default=None,
                   help="stop each epoch after this many batches (default: full epoch)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch variants")
    args = p.parse_args(argv)

    x, y = make_data(args.samples)
    try:
        if args.no_torch:
            raise ImportError
        import torch

        torch.set_num_threads(1)
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed: hybrid only", file=sys.stderr)

    # PyTorch forks its workers (its default on Linux): build and warm them up before
    # hybrid imports JAX, so that no JAX runtime is forked.
    variants = []
    if have_torch:
        for w in args.workers:
            loader = torch_loader(x, y, args.batch_size, w)
            run_epoch(loader, "torch", args.max_batches)  # warm-up
            variants.append(("torch", w, loader))
    for w in args.workers:
        for kind, per_sample in (("hybrid", False), ("hybrid/ps", True)):
            loader = hybrid_loader(x, y, args.batch_size, w, per_sample)
            run_epoch(loader, kind, args.max_batches)  # warm-up: workers, compile, caches
            variants.append((kind, w, loader))

    rates: dict[tuple[str, int], list[float]] = {(k, w): [] for k, w, _ in variants}
    for _ in range(args.repeats):
        for kind, w, loader in variants:
            n, dt = run_epoch(loader, kind, args.max_batches)
            rates[(kind, w)].append(n / dt)

    print("hybrid = default (vectorized transform_first path); hybrid/ps = same pipeline "
          "forced through per-sample transforms")
    print(f"{'loader':<10} {'workers':>7} {'batches/s (median)':>19} {'min':>8} {'max':>8} "
          f"{'vs torch':>9}")
    for w in args.workers:
        t = statistics.median(rates[("torch", w)]) if have_torch else None
        for kind in ("hybrid", "hybrid/ps", "torch"):
            if (kind, w) not in rates:
                continue
            r = rates[(kind, w)]
            med = statistics.median(r)
            ratio = f"{med / t:8.2f}x" if (kind != "torch" and t) else ""
            print(f"{kind:<10} {w:>7} {med:>19.1f} {min(r):>8.1f} {max(r):>8.1f} {ratio:>9}")
    for _kind, _w, loader in variants:
        close = getattr(loader, "close", None)
        if close is not None:
            close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
