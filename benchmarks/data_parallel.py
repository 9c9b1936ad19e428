"""Data parallelism on 1, 2 and 4 forced CPU devices: hybrid's multi-context loop against a
hand-written sharded ``jax.jit`` step (W1: MLP 784-256-256-10, batch 128, SGD momentum).

hybrid runs MXNet's loop: ``split_and_load`` over ``[mx.cpu(i) ...]``, one loss per
device, ``autograd.backward(losses)``, ``trainer.step`` (gradients summed over the
devices). The hand-written step shards the batch over a ``Mesh`` and replicates the
parameters; XLA inserts the gradient all-reduce. Each device count runs in its own
process (``XLA_FLAGS=--xla_force_host_platform_device_count=N``); medians of
interleaved rounds, the ratio, and hybrid's compiled executions per step are printed.
The forced devices share the CPU, so the figure is about overhead, not scaling::

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/data_parallel.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, statistics, sys, time
from functools import partial
import numpy as np
import jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import hybrid as mx
from hybrid import autograd, gluon, nd
from lowering import x64

n, rounds, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
assert len(jax.devices()) == n
rng = np.random.RandomState(0)
X = rng.rand(128, 784).astype(np.float32)
Y = rng.randint(0, 10, 128).astype(np.float32)
sizes = [784, 256, 256, 10]

ctxs = [mx.cpu(i) for i in range(n)]
net = gluon.nn.HybridSequential()
for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    net.add(gluon.nn.Dense(b, activation=None if i == 2 else "relu", in_units=a))
net.initialize(mx.init.Xavier(), ctx=ctxs)
net.hybridize()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
xs = gluon.utils.split_and_load(nd.array(X), ctxs)
ys = gluon.utils.split_and_load(nd.array(Y), ctxs)

def hybrid_step():
    with autograd.record():
        losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
    autograd.backward(losses)
    trainer.step(128)
    return losses

def hybrid_sync(losses):
    for l in losses:
        l.wait_to_read()

mesh = Mesh(np.array(jax.devices()), ("batch",))
rep, shard = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
params = [(jnp.asarray(rng.randn(o, i).astype(np.float32) * 0.05), jnp.zeros(o))
          for i, o in zip(sizes[:-1], sizes[1:])]
params = jax.device_put(params, rep)
moms = jax.device_put(jax.tree_util.tree_map(jnp.zeros_like, params), rep)
xb, yb = jax.device_put(jnp.asarray(X), shard), jax.device_put(jnp.asarray(Y), shard)

def loss_of(p, x, y):
    h = x
    for k, (w, b) in enumerate(p):
        h = h @ w.T + b
        if k < 2:
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), 1)[:, 0]

@partial(jax.jit, donate_argnums=(0, 1))
def train(p, m, x, y):
    g = jax.grad(lambda q: loss_of(q, x, y).sum())(p)
    m = jax.tree_util.tree_map(lambda mm, gg: 0.9 * mm - 0.05 * gg / 128, m, g)
    return jax.tree_util.tree_map(lambda pp, mm: pp + mm, p, m), m

state = {"p": params, "m": moms}
def jax_step():
    state["p"], state["m"] = train(state["p"], state["m"], xb, yb)
    return state["p"]

variants = {"hybrid": (hybrid_step, hybrid_sync),
            "jax": (jax_step, jax.block_until_ready)}
for step, sync in variants.values():
    for _ in range(3):
        sync(step())
times = {k: [] for k in variants}
calls = []
for _ in range(rounds):
    for k, (step, sync) in variants.items():
        before = x64.CALLS[0]
        t = time.perf_counter()
        for _ in range(steps):
            out = step()
        sync(out)
        times[k].append((time.perf_counter() - t) / steps)
        if k == "hybrid":
            calls.append((x64.CALLS[0] - before) / steps)
med = {k: statistics.median(v) for k, v in times.items()}
print(json.dumps({"devices": n, "hybrid_ms": med["hybrid"] * 1e3, "jax_ms": med["jax"] * 1e3,
                  "ratio": med["hybrid"] / med["jax"],
                  "executions_per_step": statistics.median(calls)}))
"""


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'devices':>8}{'hybrid ms':>11}{'jax ms':>9}{'ratio':>8}{'execs':>7}")
    for n in (int(d) for d in args.devices.split(",")):
        env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false "
               f"--xla_force_host_platform_device_count={n}", "HYBRID_CACHE_DIR": "off"}
        done = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(args.rounds),
                               str(args.steps)], env=env, capture_output=True, text=True,
                              check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{n:>8}{row['hybrid_ms']:>11.3f}{row['jax_ms']:>9.3f}{row['ratio']:>8.2f}"
              f"{row['executions_per_step']:>7.1f}")
    for r in rows:
        print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main()
