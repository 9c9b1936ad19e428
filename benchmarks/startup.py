"""First-step time of a new process, with hybrid's on-disk compile cache cold and warm.

Each run is a fresh Python process that builds the MLP 784-256-256-10 (batch 128,
softmax cross-entropy, SGD with momentum) and times its first training step
(which compiles) and its second. Per variant (hybrid hybridized, hybrid eager,
and a hand-written ``jax.jit`` step, which hybrid's cache does not touch) the
process runs with an empty cache directory, then again with the one it left.
Repeated ``--repeat`` times, interleaved; medians printed, with the ratios
"process 2 / process 1" and "hybrid first step / jax first step". Pin it:

    taskset -c 0 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1 \\
        python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

_CHILD = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import jax, jax.numpy as jnp
    variant = sys.argv[1]
    rng = np.random.RandomState(0)
    X = rng.rand(128, 784).astype(np.float32)
    Y = rng.randint(0, 10, 128).astype(np.float32)
    if variant == "jax":
        from functools import partial
        sizes = [(784, 256), (256, 256), (256, 10)]
        params = [(jnp.asarray(rng.randn(i, o).astype(np.float32) * 0.05), jnp.zeros(o))
                  for i, o in sizes]
        moms = jax.tree_util.tree_map(jnp.zeros_like, params)

        def loss_fn(params, x, y):
            for k, (w, b) in enumerate(params):
                x = x @ w + b
                if k < 2:
                    x = jax.nn.relu(x)
            logp = jax.nn.log_softmax(x)
            return -jnp.take_along_axis(logp, y.astype(jnp.int32)[:, None], 1).mean()

        @partial(jax.jit, donate_argnums=(0, 1))
        def step(params, moms, x, y):
            loss, g = jax.value_and_grad(loss_fn)(params, x, y)
            moms = jax.tree_util.tree_map(lambda m, g: 0.9 * m - 0.1 * g, moms, g)
            params = jax.tree_util.tree_map(lambda p, m: p + m, params, moms)
            return params, moms, loss

        def run():
            global params, moms
            params, moms, loss = step(params, moms, jnp.asarray(X), jnp.asarray(Y))
            return float(loss)
    else:
        import hybrid as mx
        from hybrid import autograd, gluon, nd
        net = gluon.nn.HybridSequential()
        net.add(gluon.nn.Dense(256, activation="relu", in_units=784),
                gluon.nn.Dense(256, activation="relu", in_units=256),
                gluon.nn.Dense(10, in_units=256))
        net.initialize(mx.init.Xavier())
        if variant == "hybridized":
            net.hybridize()
        trainer = gluon.Trainer(net.collect_params(), "sgd",
                                {"learning_rate": 0.1, "momentum": 0.9})
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        x, y = nd.array(X), nd.array(Y)

        def run():
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(128)
            return float(loss.mean().asscalar())
    t1 = time.perf_counter()
    run()
    t2 = time.perf_counter()
    run()
    t3 = time.perf_counter()
    print(json.dumps({"first": t2 - t1, "second": t3 - t2, "import": t1 - t0}))
""")


def child(variant: str, cache: str) -> dict:
    env = {**os.environ, "HYBRID_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", _CHILD, variant], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    variants = ("jax", "hybridized", "eager")
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeat):
        for variant in variants:
            with tempfile.TemporaryDirectory() as cache:
                for proc in (1, 2):
                    times.setdefault((variant, proc), []).append(child(variant, cache)["first"])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'variant':<12}{'process 1 (ms)':>16}{'process 2 (ms)':>16}{'2/1':>8}"
          f"{'1 / jax 1':>11}")
    for variant in variants:
        p1, p2 = med[(variant, 1)], med[(variant, 2)]
        print(f"{variant:<12}{p1 * 1e3:>16.1f}{p2 * 1e3:>16.1f}{p2 / p1:>8.2f}"
              f"{p1 / med[('jax', 1)]:>11.2f}")
    for variant in variants:
        print(json.dumps({"benchmark": "startup", "variant": variant,
                          "first_step_s": med[(variant, 1)],
                          "first_step_warm_cache_s": med[(variant, 2)],
                          "warm_over_cold": med[(variant, 2)] / med[(variant, 1)],
                          "cold_over_jax": med[(variant, 1)] / med[("jax", 1)]}))


if __name__ == "__main__":
    main()
