"""The benchmark suite: hybrid against the hand-written ``jax.jit`` step, in one process.

Workloads (see ``benchmarks/workloads.py``): W1 MLP, W2 LeNet, W3 CIFAR ResNet-18,
W4 2-layer LSTM LM, W5 per-call overhead, W6 10/50/200-layer Dense(64) MLP. For each,
the variants (hybrid hybridized, hybrid eager, hybrid ``trainer.compile_step``,
hand-written ``jax.jit``, and PyTorch on CPU for W1, W2, W6 when it is installed)
run interleaved for ``--rounds`` rounds
of ``--steps`` steps; medians and ratios to ``jax.jit`` are printed, with the compiled
programs executed per hybrid step, and one JSON line per figure. Pin it:

    taskset -c 0 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1 \\
        python benchmarks/suite.py [--only W1,W6] [--rounds 7] [--steps 20]

Each figure is also measured for compile time: the first step of a fresh model,
hybrid's against the hand-written step's (``compile`` ratio).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Compile times are compared with the hand-written step's, which JAX compiles afresh:
# hybrid's on-disk cache stays off here (benchmarks/startup.py measures it).
os.environ.setdefault("HYBRID_CACHE_DIR", "off")

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import workloads as w  # noqa: E402

import hybrid as mx  # noqa: E402
from hybrid import nd  # noqa: E402
from lowering import x64  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _data(kind: str, rng: np.random.RandomState):
    if kind == "mlp":
        return rng.rand(128, 784).astype(np.float32), rng.randint(0, 10, 128).astype(np.float32)
    if kind == "lenet":
        return (rng.rand(64, 1, 28, 28).astype(np.float32),
                rng.randint(0, 10, 64).astype(np.float32))
    if kind == "resnet":
        return (rng.rand(16, 3, 32, 32).astype(np.float32),
                rng.randint(0, 10, 16).astype(np.float32))
    if kind == "lstm":
        return (rng.randint(0, 10000, (35, 20)).astype(np.float32),
                rng.randint(0, 10000, (35, 20)).astype(np.float32))
    x = rng.rand(64, 64).astype(np.float32)
    return x, rng.randint(0, 10, 64).astype(np.float32)


def _mlp_variants(sizes: list[int], x, y) -> dict:
    out = {"jax": lambda: w.jax_mlp(sizes, x, y),
           "hybridized": lambda: w.hybrid_mlp(sizes, x, y, True),
           "eager": lambda: w.hybrid_mlp(sizes, x, y, False),
           "compiled": lambda: w.hybrid_mlp(sizes, x, y, "compiled")}
    if HAS_TORCH:
        out["torch"] = lambda: w.torch_mlp(sizes, x, y)
    return out


def workload(name: str):
    """``{variant: builder}`` of one workload; each builder returns ``(step, sync)``."""
    rng = np.random.RandomState(0)
    if name == "W1":
        return _mlp_variants([784, 256, 256, 10], *_data("mlp", rng))
    if name == "W2":
        x, y = _data("lenet", rng)
        out = {"jax": lambda: w.jax_lenet(x, y),
               "hybridized": lambda: w.hybrid_lenet(x, y, True),
               "eager": lambda: w.hybrid_lenet(x, y, False),
               "compiled": lambda: w.hybrid_lenet(x, y, "compiled")}
        if HAS_TORCH:
            out["torch"] = lambda: w.torch_lenet(x, y)
        return out
    if name == "W3":
        x, y = _data("resnet", rng)
        return {"jax": lambda: w.jax_resnet18(x, y),
                "hybridized": lambda: w.hybrid_resnet18(x, y, True),
                "eager": lambda: w.hybrid_resnet18(x, y, False),
                "compiled": lambda: w.hybrid_resnet18(x, y, "compiled")}
    if name == "W4":
        x, y = _data("lstm", rng)
        return {"jax": lambda: w.jax_lstm_lm(x, y, 10000, 256),
                "hybridized": lambda: w.hybrid_lstm_lm(x, y, True, 10000, 256),
                "eager": lambda: w.hybrid_lstm_lm(x, y, False, 10000, 256),
                "compiled": lambda: w.hybrid_lstm_lm(x, y, "compiled", 10000, 256)}
    if name.startswith("W6"):
        layers = int(name.split("-")[1])
        return _mlp_variants([64] * (layers + 1) + [10], *_data("deep", rng))
    raise ValueError(name)


def per_call_overhead():
    """W5: eager ``a + b`` on (16, 16) and a tiny hybridized block ``x + p``."""
    a, b = nd.ones((16, 16)), nd.ones((16, 16))
    ja, jb = jnp.ones((16, 16)), jnp.ones((16, 16))

    class Tiny(mx.gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            with self.name_scope():
                self.p = self.params.get("p", shape=(16, 16))

        def hybrid_forward(self, F, x, p):
            return x + p

    tiny = Tiny()
    tiny.initialize()
    tiny.hybridize()
    jitted = jax.jit(lambda x, p: x + p)
    jp = jnp.ones((16, 16))
    return {
        "eager a+b": ((lambda: a + b), lambda r: r.wait_to_read()),
        "jnp a+b": ((lambda: ja + jb), lambda r: r.block_until_ready()),
        "block x+p": ((lambda: tiny(a)), lambda r: r.wait_to_read()),
        "jit x+p": ((lambda: jitted(ja, jp)), lambda r: r.block_until_ready()),
    }


def measure(step, sync, steps: int) -> float:
    start = time.perf_counter()
    out = None
    for _ in range(steps):
        out = step()
    sync(out)
    return (time.perf_counter() - start) / steps


def run_workload(name: str, rounds: int, steps: int) -> list[dict]:
    builders = workload(name)
    variants, compile_s = {}, {}
    for variant, build in builders.items():
        step, sync = build()
        t = time.perf_counter()
        sync(step())
        compile_s[variant] = time.perf_counter() - t
        t = time.perf_counter()
        sync(step())
        compile_s[variant + " step 2"] = time.perf_counter() - t
        variants[variant] = (step, sync)
    times = {k: [] for k in variants}
    calls = {k: [] for k in variants}
    for _ in range(rounds):
        for variant, (step, sync) in variants.items():
            before = x64.CALLS[0]
            times[variant].append(measure(step, sync, steps))
            calls[variant].append((x64.CALLS[0] - before) / steps)
    base = statistics.median(times["jax"])
    rows = []
    for variant in variants:
        med = statistics.median(times[variant])
        row = {"benchmark": name, "variant": variant, "ms_per_step": med * 1e3,
               "ratio_to_jax": med / base,
               "executions_per_step": statistics.median(calls[variant])
               if variant in ("hybridized", "eager", "compiled") else None,
               "first_step_s": compile_s[variant],
               "second_step_s": compile_s[variant + " step 2"],
               "compile_ratio_to_jax": compile_s[variant] / compile_s["jax"]}
        rows.append(row)
    return rows


def run_overhead(rounds: int, steps: int) -> list[dict]:
    variants = per_call_overhead()
    for step, sync in variants.values():
        measure(step, sync, 20)
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, (step, sync) in variants.items():
            times[k].append(measure(step, sync, steps * 50))
    med = {k: statistics.median(v) for k, v in times.items()}
    return [{"benchmark": "W5", "variant": "eager a+b", "us_per_call": med["eager a+b"] * 1e6,
             "ratio_to_jax": med["eager a+b"] / med["jnp a+b"]},
            {"benchmark": "W5", "variant": "block x+p", "us_per_call": med["block x+p"] * 1e6,
             "ratio_to_jax": med["block x+p"] / med["jit x+p"]}]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="W1,W2,W3,W4,W5,W6-10,W6-50,W6-200")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    rows: list[dict] = []
    print(f"{'workload':<9}{'variant':<12}{'ms/step':>10}{'ratio':>8}{'execs':>7}"
          f"{'compile':>9}{'step 2 (s)':>11}")
    for name in args.only.split(","):
        if name == "W5":
            for r in run_overhead(args.rounds, args.steps):
                print(f"{'W5':<9}{r['variant']:<12}{r['us_per_call']:>9.1f}u"
                      f"{r['ratio_to_jax']:>8.2f}")
                rows.append(r)
            continue
        steps = max(2, args.steps // 4) if name in ("W3", "W4") else args.steps
        for r in run_workload(name, args.rounds, steps):
            execs = "" if r["executions_per_step"] is None else f"{r['executions_per_step']:.1f}"
            print(f"{name:<9}{r['variant']:<12}{r['ms_per_step']:>10.3f}"
                  f"{r['ratio_to_jax']:>8.2f}{execs:>7}{r['compile_ratio_to_jax']:>9.2f}"
                  f"{r['second_step_s']:>11.3f}")
            rows.append(r)
        sys.stdout.flush()
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main()
