"""Memory of a training step, hybrid against the hand-written ``jax.jit`` step (W3 by default).

Each variant runs in its own process (so no other variant's arrays count): it builds
the workload, runs three steps (compiling), then measures

- **live**: the bytes of every live device array between two steps
  (``jax.live_arrays()``): weights, gradients, optimizer states, statistics, inputs;
- **step peak**: how far the process's resident memory rises above its level before
  the measured steps, over ten steps (``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``; Linux only): the step's temporaries, and any buffer a
  step allocates instead of reusing a donated one.

Ratios are to the hand-written step. Run it pinned like the suite::

    taskset -c 0 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1 \\
        python benchmarks/memory.py [--only W3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, os, sys
sys.path.insert(0, {here!r})
os.environ.setdefault("HYBRID_CACHE_DIR", "off")
import jax
import suite

def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

step, sync = suite.workload({name!r})[{variant!r}]()
for _ in range(3):
    sync(step())
live = sum(a.nbytes for a in jax.live_arrays() if not a.is_deleted())
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = rss("VmRSS")
for _ in range(10):
    out = step()
sync(out)
print(json.dumps({{"live": live, "peak": rss("VmHWM") - base}}))
"""


def measure(name: str, variant: str) -> dict:
    code = _CHILD.format(here=str(Path(__file__).parent), name=name, variant=variant)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=os.environ.copy())
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="W3")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for name in args.only.split(","):
        variants = ["jax", "hybridized", "eager", "compiled"]
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for _ in range(args.repeat):
            for v in variants:
                runs[v].append(measure(name, v))
        med = {v: {k: statistics.median(r[k] for r in runs[v]) for k in ("live", "peak")}
               for v in variants}
        for v in variants:
            row = {"benchmark": name, "variant": v, "live_mb": med[v]["live"] / 2**20,
                   "step_peak_mb": med[v]["peak"] / 2**20,
                   "live_ratio_to_jax": med[v]["live"] / med["jax"]["live"],
                   "live_plus_peak_ratio_to_jax":
                       (med[v]["live"] + med[v]["peak"])
                       / (med["jax"]["live"] + med["jax"]["peak"])}
            rows.append(row)
            print(f"{name:<5}{v:<12} live {row['live_mb']:8.1f} MB  step peak "
                  f"{row['step_peak_mb']:8.1f} MB  live x{row['live_ratio_to_jax']:.2f}  "
                  f"live+peak x{row['live_plus_peak_ratio_to_jax']:.2f}")
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main()
