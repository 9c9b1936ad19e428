"""Generate tests/golden/multi_context/ with the real MXNet 1.9.1.

Run with the reference interpreter (never from the test suite)::

    /work/mxref/bin/python tests/golden/gen_multi_context.py

Each case trains a small ``HybridSequential`` (Dense(4, relu, in_units=3), Dense(2,
in_units=4)) whose parameters are initialised on several CPU contexts
(``cpu(0)``, ``cpu(1)``, ...) with the same random values. Every step draws a batch,
splits it with ``gluon.utils.split_and_load``, records one L2 loss per context, calls
``autograd.backward`` on the list and ``trainer.step(batch_size)`` with SGD +
momentum + weight decay. The trainer options (``kvstore``, ``update_on_kvstore``) vary:
MXNet's default with several contexts updates on the kvstore (gradients stay per
context, the summed gradient updates one stored weight that is copied to every
context); ``update_on_kvstore=False`` writes the summed gradient back to every
context's gradient and updates each copy; ``kvstore=None`` does no reduction at all.
One case calls ``set_data`` after the first step, which in MXNet resets the kvstore
(and with it the optimizer state it holds).

Output: ``cases.json`` (one entry per case) and ``<case>.npz`` with ``init:<p>`` (the
initial value of structural parameter p), ``x<s>``/``y<s>`` (batch of step s,
1-based), ``w:<p>:<c>:<s>`` and ``g:<p>:<c>:<s>`` (weight and gradient on context c
after step s).
"""

from __future__ import annotations

import json
import pathlib

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

OUT = pathlib.Path(__file__).parent / "multi_context"
STEPS = 3
OPTIMIZER = {"learning_rate": 0.05, "momentum": 0.9, "wd": 0.01}

CASES = [
    {"name": "ctx2_default", "n_ctx": 2, "batch": 6, "even_split": True, "trainer": {}},
    {"name": "ctx2_update_on_kvstore_false", "n_ctx": 2, "batch": 6, "even_split": True,
     "trainer": {"update_on_kvstore": False}},
    {"name": "ctx2_kvstore_none", "n_ctx": 2, "batch": 6, "even_split": True,
     "trainer": {"kvstore": None}},
    {"name": "ctx3_local_uneven", "n_ctx": 3, "batch": 7, "even_split": False,
     "trainer": {"kvstore": "local"}},
    {"name": "ctx3_local_update_on_kvstore_false", "n_ctx": 3, "batch": 6,
     "even_split": True, "trainer": {"kvstore": "local", "update_on_kvstore": False}},
    {"name": "ctx2_set_data_after_step1", "n_ctx": 2, "batch": 4, "even_split": True,
     "trainer": {}, "set_data_after_step": 1},
    # Four contexts with BatchNorm (per-context batch statistics and running averages).
    {"name": "ctx4_batchnorm_sgd", "n_ctx": 4, "batch": 16, "even_split": True,
     "trainer": {}, "net": "batchnorm"},
    {"name": "ctx4_batchnorm_adam", "n_ctx": 4, "batch": 16, "even_split": True,
     "trainer": {}, "net": "batchnorm", "optimizer": "adam",
     "optimizer_params": {"learning_rate": 0.01}},
]


NETS = {
    "mlp": "HybridSequential(Dense(4, relu, in_units=3), Dense(2, in_units=4))",
    "batchnorm": "HybridSequential(Dense(4, in_units=3, use_bias=False), BatchNorm(in_channels=4), "
                 "Activation(relu), Dense(2, in_units=4))",
}


def _net(kind: str = "mlp"):
    net = gluon.nn.HybridSequential()
    if kind == "batchnorm":
        net.add(gluon.nn.Dense(4, in_units=3, use_bias=False), gluon.nn.BatchNorm(in_channels=4),
                gluon.nn.Activation("relu"), gluon.nn.Dense(2, in_units=4))
    else:
        net.add(gluon.nn.Dense(4, activation="relu", in_units=3),
                gluon.nn.Dense(2, in_units=4))
    return net


def run(spec: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ctxs = [mx.cpu(i) for i in range(spec["n_ctx"])]
    net = _net(spec.get("net", "mlp"))
    net.initialize(ctx=ctxs)
    params = net._collect_params_with_prefix()
    out: dict[str, np.ndarray] = {}
    for name, p in params.items():
        value = rng.standard_normal(p.shape).astype(np.float32) * 0.5
        if name.endswith("running_var"):
            value = np.abs(value) + 0.5
        p.set_data(mx.nd.array(value))
        out[f"init:{name}"] = value
    trainer = gluon.Trainer(net.collect_params(), spec.get("optimizer", "sgd"),
                            dict(spec.get("optimizer_params", OPTIMIZER)), **spec["trainer"])
    loss_fn = gluon.loss.L2Loss()
    for step in range(1, STEPS + 1):
        x = rng.standard_normal((spec["batch"], 3)).astype(np.float32)
        y = rng.standard_normal((spec["batch"], 2)).astype(np.float32)
        out[f"x{step}"], out[f"y{step}"] = x, y
        xs = gluon.utils.split_and_load(mx.nd.array(x), ctxs, even_split=spec["even_split"])
        ys = gluon.utils.split_and_load(mx.nd.array(y), ctxs, even_split=spec["even_split"])
        with autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(spec["batch"])
        if spec.get("set_data_after_step") == step:
            w = params["0.weight"]
            w.set_data(w.data(ctxs[0]) * 0.5)
        for name, p in params.items():
            for c, ctx in enumerate(ctxs):
                out[f"w:{name}:{c}:{step}"] = p.data(ctx).asnumpy()
                if p.grad_req != "null":
                    out[f"g:{name}:{c}:{step}"] = p.grad(ctx).asnumpy()
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    entries = []
    for seed, spec in enumerate(CASES):
        arrays = run(spec, seed)
        np.savez(OUT / f"{spec['name']}.npz", **arrays)
        entries.append({"optimizer": "sgd", "optimizer_params": OPTIMIZER, "net": "mlp",
                        **spec, "seed": seed, "steps": STEPS, "loss": "L2Loss",
                        "net_description": NETS[spec.get("net", "mlp")],
                        "mxnet_version": mx.__version__})
    (OUT / "cases.json").write_text(json.dumps(entries, indent=1) + "\n")


if __name__ == "__main__":
    main()
