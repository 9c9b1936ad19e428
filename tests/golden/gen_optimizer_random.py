"""Generate tests/golden/optimizer_random/ with the real MXNet 1.9.1.

Run with the reference interpreter (never from the test suite)::

    /work/mxref/bin/python tests/golden/gen_optimizer_random.py

For every optimizer of ``mx.optimizer`` several random cases are drawn: 2-3 parameters
of random shapes (1-D, 2-D, odd sizes), random hyper-parameters (learning rate,
momentum, weight decay, gradient clipping, rescale factor, per-parameter lr/wd
multipliers) and 4 update steps. Each case runs the way ``gluon.Trainer`` drives
MXNet: one ``Updater`` call per step over the list of all parameters (so optimizers
with ``aggregate_num > 0`` go through MXNet's aggregated multi-tensor kernels) with the
gradients written in place into the same gradient buffers. Float16 cases (with and
without ``multi_precision``) are included where MXNet supports them.

Output: ``cases.json`` (one entry per case: optimizer name, constructor kwargs, the
parameters' shapes/dtypes/multipliers, number of steps) and one ``<case>.npz`` per
case with ``w{p}_0`` (initial weight of parameter p), ``g{p}_{s}`` (gradient at step s,
1-based) and ``w{p}_{s}`` (weight after step s). SGLD cases store ``noise_std`` (the
standard deviation of MXNet's Langevin noise on each step) instead of exact weights.
"""

from __future__ import annotations

import json
import math
import pathlib
import types

import mxnet as mx
import numpy as np

OUT = pathlib.Path(__file__).parent / "optimizer_random"
STEPS = 4


def _shapes(rng: np.random.Generator, two_d_only: bool = False) -> list[tuple[int, ...]]:
    pool = [(int(rng.integers(1, 12)),), (int(rng.integers(2, 7)), int(rng.integers(2, 9))),
            (int(rng.integers(13, 40)),), (int(rng.integers(1, 5)), int(rng.integers(5, 12)))]
    if two_d_only:
        pool = [s for s in pool if len(s) == 2] + [(int(rng.integers(2, 6)), 3)]
    n = int(rng.integers(2, 4))
    idx = rng.choice(len(pool), size=n, replace=False)
    return [pool[i] for i in idx]


def _common(rng: np.random.Generator, lr_range=(0.005, 0.3)) -> dict:
    kw: dict = {"learning_rate": float(np.round(rng.uniform(*lr_range), 5))}
    if rng.random() < 0.7:
        kw["wd"] = float(np.round(rng.uniform(1e-4, 0.1), 5))
    if rng.random() < 0.5:
        kw["clip_gradient"] = float(np.round(rng.uniform(0.3, 1.5), 3))
    if rng.random() < 0.6:
        kw["rescale_grad"] = float(np.round(rng.uniform(0.1, 2.0), 4))
    return kw


def _momentum(rng: np.random.Generator) -> float:
    return float(np.round(rng.uniform(0.5, 0.99), 3)) if rng.random() < 0.8 else 0.0


def _specific(name: str, rng: np.random.Generator) -> dict:
    u = lambda a, b, d=4: float(np.round(rng.uniform(a, b), d))  # noqa: E731
    if name in ("sgd", "nag", "ccsgd"):
        return {"momentum": _momentum(rng)}
    if name == "signum":
        return {"momentum": _momentum(rng), "wd_lh": u(0, 0.05) if rng.random() < 0.5 else 0.0}
    if name == "lars":
        return {"momentum": _momentum(rng), "eta": u(0.0005, 0.01),
                "eps": u(0, 1e-3, 6), "momentum_correction": bool(rng.random() < 0.7)}
    if name == "lbsgd":
        return {"momentum": _momentum(rng), "batch_scale": int(rng.integers(1, 4)),
                "warmup_strategy": str(rng.choice(["linear", "power2", "sqrt", "lars"])),
                "warmup_epochs": int(rng.integers(1, 3)), "updates_per_epoch": 2}
    if name in ("adam", "adamax", "nadam", "ftml"):
        kw = {"beta1": u(0.5, 0.95), "beta2": u(0.9, 0.9999)}
        if name in ("adam", "nadam", "ftml"):
            kw["epsilon"] = float(rng.choice([1e-8, 1e-6, 1e-3]))
        if name == "nadam":
            kw["schedule_decay"] = u(0.001, 0.01)
        return kw
    if name == "lamb":
        kw = {"beta1": u(0.5, 0.95), "beta2": u(0.9, 0.9999),
              "epsilon": float(rng.choice([1e-6, 1e-4])),
              "bias_correction": bool(rng.random() < 0.7)}
        if rng.random() < 0.4:
            kw["lower_bound"] = u(0.1, 1.0)
        if rng.random() < 0.4:
            kw["upper_bound"] = u(1.0, 3.0)
        return kw
    if name == "rmsprop":
        kw = {"gamma1": u(0.8, 0.99), "gamma2": u(0.8, 0.99), "epsilon": 1e-8,
              "centered": bool(rng.random() < 0.5)}
        if rng.random() < 0.4:
            kw["clip_weights"] = u(0.5, 2.0)
        return kw
    if name in ("adagrad", "groupadagrad"):
        return {"eps": float(rng.choice([1e-7, 1e-5]))}
    if name == "adadelta":
        return {"rho": u(0.8, 0.99), "epsilon": float(rng.choice([1e-5, 1e-3]))}
    if name == "ftrl":
        return {"lamda1": u(0.001, 0.05), "beta": u(0.5, 2.0)}
    if name == "dcasgd":
        return {"momentum": 0.0, "lamda": u(0.01, 0.1)}
    return {}


# name -> (number of float32 cases, float16 multi_precision cases, float16 plain cases)
PLAN = {
    "sgd": (5, 2, 1), "nag": (5, 2, 1), "ccsgd": (1, 0, 0), "signum": (4, 0, 0),
    "lars": (4, 1, 0), "lbsgd": (4, 0, 0), "adam": (4, 1, 1), "adamax": (3, 0, 0),
    "nadam": (3, 0, 0), "lamb": (4, 1, 0), "ftml": (3, 0, 0), "rmsprop": (5, 1, 0),
    "adagrad": (3, 1, 0), "adadelta": (3, 0, 0), "ftrl": (3, 0, 0), "dcasgd": (3, 0, 0),
    "test": (1, 0, 0), "groupadagrad": (2, 0, 0), "sgld": (2, 0, 0),
}


def _run(name: str, kwargs: dict, params: list[dict], rng: np.random.Generator) -> dict:
    param_dict = {i: types.SimpleNamespace(lr_mult=p["lr_mult"], wd_mult=p["wd_mult"])
                  for i, p in enumerate(params)}
    opt = mx.optimizer.create(name, param_dict=param_dict, **kwargs)
    updater = mx.optimizer.get_updater(opt)
    arrays: dict = {}
    weights, grads = [], []
    for i, p in enumerate(params):
        w0 = rng.standard_normal(p["shape"]).astype(p["dtype"])
        arrays[f"w{i}_0"] = w0
        weights.append(mx.nd.array(w0, dtype=p["dtype"]))
        grads.append(mx.nd.zeros(p["shape"], dtype=p["dtype"]))
    noise = []
    for s in range(1, STEPS + 1):
        before = [w.asnumpy().astype(np.float64) for w in weights]
        for i, p in enumerate(params):
            g = (rng.standard_normal(p["shape"]) * 1.5).astype(p["dtype"])
            arrays[f"g{i}_{s}"] = g
            grads[i][:] = g  # in place, as gluon's backward writes the gradient buffer
        updater(list(range(len(params))), grads, weights)
        for i, w in enumerate(weights):
            arrays[f"w{i}_{s}"] = w.asnumpy()
        if name == "sgld":
            lr = kwargs["learning_rate"]
            devs = []
            for i, p in enumerate(params):
                lr_i = lr * p["lr_mult"]
                wd_i = kwargs.get("wd", 0.0) * p["wd_mult"]
                g = arrays[f"g{i}_{s}"].astype(np.float64) * opt.rescale_grad
                if "clip_gradient" in kwargs:
                    g = np.clip(g, -kwargs["clip_gradient"], kwargs["clip_gradient"])
                det = before[i] - lr_i / 2 * (g + wd_i * before[i])
                devs.append((arrays[f"w{i}_{s}"] - det) / math.sqrt(lr_i))
            noise.append(float(np.std(np.concatenate([d.ravel() for d in devs]))))
    if name == "sgld":
        arrays = {k: v for k, v in arrays.items() if k.startswith(("w", "g")) and
                  (k.endswith("_0") or k.startswith("g"))}
        arrays["noise_std"] = np.asarray(noise)
    return arrays


# Out-of-range hyper-parameters: MXNet 1.9 accepts most (and computes what its formulas
# give, NaN included) and raises for a few; hybrid must do the same.
HYPER = [
    ("sgd", {"learning_rate": -0.1}), ("sgd", {"learning_rate": -0.1, "momentum": 0.9}),
    ("sgd", {"momentum": 1.5}), ("sgd", {"momentum": -0.5}), ("sgd", {"wd": -0.1}),
    ("sgd", {"clip_gradient": -1.0}), ("sgd", {"clip_gradient": 0.0}),
    ("sgd", {"rescale_grad": -1.0}), ("sgd", {"learning_rate": float("nan")}),
    ("sgd", {"learning_rate": float("inf")}), ("sgd", {"wd": float("nan")}),
    ("nag", {"momentum": -0.5}), ("nag", {"learning_rate": -0.1, "momentum": 0.9}),
    ("adam", {"learning_rate": -0.1}), ("adam", {"beta1": 1.0}), ("adam", {"beta1": -1.0}),
    ("adam", {"beta1": 1.5}), ("adam", {"beta2": -0.5}), ("adam", {"epsilon": -1.0}),
    ("adam", {"learning_rate": float("nan")}), ("adamax", {"beta1": 1.0}),
    ("rmsprop", {"gamma1": 1.5}), ("rmsprop", {"learning_rate": -0.1}),
    ("rmsprop", {"epsilon": -1e-8, "centered": True}), ("adagrad", {"learning_rate": -0.1}),
    ("adadelta", {"rho": 1.5}), ("ftrl", {"learning_rate": -0.1}), ("ftrl", {"learning_rate": 0.0}),
    ("ftml", {"beta1": 1.0}), ("signum", {"momentum": -0.5}), ("lamb", {"beta1": 1.5}),
    ("lamb", {"learning_rate": -0.1}), ("lamb", {"learning_rate": float("nan")}),
    ("nadam", {"beta1": 1.5}), ("lars", {"learning_rate": -0.1, "momentum": 0.9}),
    ("adam", {"foo": 1}),
]


def _hyper_cases() -> list[dict]:
    out = []
    for name, kwargs in HYPER:
        entry: dict = {"optimizer": name, "kwargs": kwargs, "weight0": [1.0, -2.0, 3.0],
                       "grad": [0.5, 0.5, -1.0], "steps": 2}
        try:
            opt = mx.optimizer.create(name, **kwargs)
            updater = mx.optimizer.get_updater(opt)
            w, g = mx.nd.array(entry["weight0"]), mx.nd.array(entry["grad"])
            for _ in range(entry["steps"]):
                updater([0], [g], [w])
            entry["weight"] = [float(x) for x in w.asnumpy()]
        except Exception as err:  # noqa: BLE001
            entry["raises"] = {"type": type(err).__name__,
                               "message": str(err).splitlines()[0][:300]}
        out.append(entry)
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for f in OUT.glob("*.npz"):
        f.unlink()
    rng = np.random.default_rng(20261203)
    mx.random.seed(7)
    cases = []
    for name, (n32, nmp, n16) in PLAN.items():
        variants = [("float32", False)] * n32 + [("float16", True)] * nmp + \
                   [("float16", False)] * n16
        for k, (dtype, mp) in enumerate(variants):
            kwargs = {**_common(rng), **_specific(name, rng)}
            if name == "groupadagrad":
                kwargs.pop("wd", None)
            if name == "sgld":
                kwargs["learning_rate"] = float(np.round(rng.uniform(0.01, 0.05), 4))
            if mp:
                kwargs["multi_precision"] = True
            shapes = _shapes(rng, two_d_only=name == "groupadagrad")
            if name == "sgld":
                shapes = [(40, 30), (500,)]
            params = []
            for shape in shapes:
                lr_mult = float(np.round(rng.uniform(0.5, 2.0), 3)) if rng.random() < 0.3 else 1.0
                wd_mult = float(np.round(rng.uniform(0.0, 2.0), 3)) if rng.random() < 0.3 else 1.0
                if name == "groupadagrad":
                    wd_mult = 1.0
                params.append({"shape": list(shape), "dtype": dtype, "lr_mult": lr_mult,
                               "wd_mult": wd_mult})
            if name == "lars" and k == 1:
                kwargs["param_idx2name"] = {1: "dense0_bias"}
            case_name = f"{name}_{k}_{dtype}{'_mp' if mp else ''}"
            entry = {"name": case_name, "optimizer": name, "kwargs": kwargs,
                     "params": params, "steps": STEPS, "dtype": dtype, "multi_precision": mp}
            try:
                arrays = _run(name, kwargs, params, rng)
            except Exception as err:  # noqa: BLE001  (MXNet refusing the case is data too)
                entry["raises"] = {"type": type(err).__name__,
                                   "message": str(err).splitlines()[0][:300]}
            else:
                np.savez_compressed(OUT / f"{case_name}.npz", **arrays)
            cases.append(entry)
    meta = {"mxnet_version": mx.__version__, "generator": "tests/golden/gen_optimizer_random.py",
            "procedure": "Updater(list of all parameters) per step, gradients written in place",
            "cases": cases, "hyper_cases": _hyper_cases()}
    (OUT / "cases.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    print(f"{len(cases)} cases written to {OUT}")


if __name__ == "__main__":
    main()
