"""Eager scalar ops: ``x * s`` over many distinct scalars vs one scalar, and ``jax.jit``.

An eager op must not compile once per scalar value: the scalar is a traced
operand of the op's one compiled program. Each round runs 100 multiplications
with 100 distinct scalars, 100 with one scalar, and the hand-written
``jax.jit(lambda x, s: x * s)`` with distinct scalars; rounds are interleaved and
repeated and the medians and ratios are printed (target: distinct / one <= 1.5).
The first round includes the compiles. Run it pinned to one core:

    taskset -c 0 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1 \\
        python benchmarks/eager_scalar.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from hybrid import nd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=100)
    args = parser.parse_args()
    x = nd.array(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32))
    raw = x._data
    jitted = jax.jit(lambda a, s: a * s)
    scalars = [0.5 + 0.01 * i for i in range(args.ops)]

    def distinct():
        for s in scalars:
            y = x * s
        y.wait_to_read()

    def one():
        for _ in scalars:
            y = x * 0.5
        y.wait_to_read()

    def handwritten():
        for s in scalars:
            y = jitted(raw, s)
        y.block_until_ready()

    variants = {"distinct scalars": distinct, "one scalar": one, "jax.jit": handwritten}
    times: dict[str, list[float]] = {k: [] for k in variants}
    first: dict[str, float] = {}
    for r in range(args.rounds + 1):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r == 0:
                first[name] = dt
            else:
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    per = {k: v / args.ops * 1e6 for k, v in med.items()}
    for k in variants:
        print(f"{k:>17}: {per[k]:7.1f} us/op (first round {first[k] * 1e3:.1f} ms)")
    ratio = med["distinct scalars"] / med["one scalar"]
    print(f"distinct / one scalar: {ratio:.2f} (target <= 1.5) "
          f"{'OK' if ratio <= 1.5 else 'SLOWER THAN TARGET'}")
    print(f"first round, distinct / one scalar: "
          f"{first['distinct scalars'] / first['one scalar']:.2f}")
    print(f"eager / jax.jit: {med['distinct scalars'] / med['jax.jit']:.2f}")


if __name__ == "__main__":
    main()
