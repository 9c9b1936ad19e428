"""Train-step speed: hybrid eager vs hybrid hybridized vs a hand-written ``jax.jit`` step.

The model is the MLP 784-256-256-10 (ReLU), batch 128, softmax cross-entropy,
SGD with momentum 0.9. Each variant runs ``--steps`` steps per round; rounds are
interleaved and repeated, and the medians and ratios to the hand-written step
are printed. Run it pinned to one core for stable numbers:

    taskset -c 0 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1 \\
        python benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import hybrid as mx
from hybrid import autograd, gluon, nd

BATCH, IN, HIDDEN, OUT = 128, 784, 256, 10
LR, MOMENTUM = 0.1, 0.9


def hybrid_variant(hybridize: bool, x: np.ndarray, y: np.ndarray):
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(HIDDEN, activation="relu", in_units=IN),
                gluon.nn.Dense(HIDDEN, activation="relu", in_units=HIDDEN),
                gluon.nn.Dense(OUT, in_units=HIDDEN))
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": LR, "momentum": MOMENTUM})
    data, label = nd.array(x), nd.array(y)

    def step():
        with autograd.record():
            loss = loss_fn(net(data), label)
        loss.backward()
        trainer.step(BATCH)
        return loss

    def sync(loss):
        loss.wait_to_read()

    return step, sync


def jax_variant(x: np.ndarray, y: np.ndarray):
    rng = np.random.RandomState(0)

    def glorot(fan_out, fan_in):
        s = np.sqrt(6.0 / (fan_in + fan_out))
        return jnp.asarray(rng.uniform(-s, s, (fan_out, fan_in)).astype(np.float32))

    params = {
        "w0": glorot(HIDDEN, IN), "b0": jnp.zeros(HIDDEN, jnp.float32),
        "w1": glorot(HIDDEN, HIDDEN), "b1": jnp.zeros(HIDDEN, jnp.float32),
        "w2": glorot(OUT, HIDDEN), "b2": jnp.zeros(OUT, jnp.float32),
    }
    moms = jax.tree_util.tree_map(jnp.zeros_like, params)

    def loss_fn(p, xb, yb):
        h = jax.nn.relu(xb @ p["w0"].T + p["b0"])
        h = jax.nn.relu(h @ p["w1"].T + p["b1"])
        logits = h @ p["w2"].T + p["b2"]
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, yb[:, None], axis=-1).squeeze(-1)

    @partial(jax.jit, donate_argnums=(0, 1))
    def train_step(p, m, xb, yb):
        loss, grads = jax.value_and_grad(lambda q: loss_fn(q, xb, yb).sum())(p)
        m = jax.tree_util.tree_map(lambda mm, g: MOMENTUM * mm - LR * g / BATCH, m, grads)
        p = jax.tree_util.tree_map(lambda pp, mm: pp + mm, p, m)
        return p, m, loss

    xb, yb = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
    state = {"p": params, "m": moms}

    def step():
        state["p"], state["m"], loss = train_step(state["p"], state["m"], xb, yb)
        return loss

    def sync(loss):
        loss.block_until_ready()

    return step, sync


def measure(step, sync, steps: int) -> float:
    start = time.perf_counter()
    out = None
    for _ in range(steps):
        out = step()
    sync(out)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="train-step benchmark")
    parser.add_argument("--steps", type=int, default=50, help="steps per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    args = parser.parse_args(argv)

    rng = np.random.RandomState(0)
    x = rng.rand(BATCH, IN).astype(np.float32)
    y = rng.randint(0, OUT, BATCH).astype(np.float32)
    variants = {
        "jax.jit (hand-written)": jax_variant(x, y),
        "hybrid hybridized": hybrid_variant(True, x, y),
        "hybrid eager": hybrid_variant(False, x, y),
    }
    for step, sync in variants.values():  # compile and warm up
        measure(step, sync, 5)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, (step, sync) in variants.items():
            times[name].append(measure(step, sync, args.steps))
    base = statistics.median(times["jax.jit (hand-written)"])
    print(f"MLP {IN}-{HIDDEN}-{HIDDEN}-{OUT}, batch {BATCH}, SGD momentum; "
          f"median of {args.rounds} rounds x {args.steps} steps")
    print(f"{'variant':<26}{'ms/step':>10}{'ratio':>8}")
    medians = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        medians[name] = med / base
        print(f"{name:<26}{med * 1e3:>10.3f}{med / base:>8.2f}")
    return medians


if __name__ == "__main__":
    main()
