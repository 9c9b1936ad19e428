"""Every optimizer against MXNet 1.9.1 on random shapes and hyper-parameters.

The cases in ``tests/golden/optimizer_random`` (made by
``tests/golden/gen_optimizer_random.py`` with the real MXNet) run 4 steps over 2-3
parameters with random learning rates, momenta, weight decays, clipping, rescale factors
and lr/wd multipliers, the way ``gluon.Trainer`` drives MXNet (one ``Updater`` call over
all parameters per step). They are replayed here through hybrid's ``Updater`` (the eager
NDArray API) and through ``gluon.Trainer`` (the compiled fused step). float32 results
must agree to 1e-6 relative (of the weight's scale); float16 ones to one float16 ulp.
"""

from __future__ import annotations

import functools
import json
import pathlib
import types

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon
from hybrid import optimizer as opt
from hybrid.ndarray import NDArray

ROOT = pathlib.Path(__file__).parents[1] / "golden" / "optimizer_random"


@functools.lru_cache(maxsize=1)
def _meta() -> dict:
    return json.loads((ROOT / "cases.json").read_text())


def _cases(pred) -> list[dict]:
    return [c for c in _meta()["cases"] if pred(c)]


EXACT = _cases(lambda c: "raises" not in c and c["optimizer"] != "sgld")
RAISING = _cases(lambda c: "raises" in c)
SGLD = _cases(lambda c: c["optimizer"] == "sgld")


def _params(cases: list[dict]) -> list:
    """One pytest param per case; beyond the first two cases of an optimizer, ``slow``."""
    out = []
    for c in cases:
        index = int(c["name"].split("_")[1])
        marks = [pytest.mark.slow] if index >= 2 else []
        out.append(pytest.param(c, id=c["name"], marks=marks))
    return out


def _arrays(entry: dict) -> dict[str, np.ndarray]:
    with np.load(ROOT / f"{entry['name']}.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _kwargs(entry: dict) -> dict:
    kwargs = dict(entry["kwargs"])
    if "param_idx2name" in kwargs:
        kwargs["param_idx2name"] = {int(k): v for k, v in kwargs["param_idx2name"].items()}
    return kwargs


def _updater_weights(entry: dict, data: dict) -> list[list[np.ndarray]]:
    """Weights after every step, through ``Updater`` (gradients written in place)."""
    params = entry["params"]
    param_dict = {i: types.SimpleNamespace(lr_mult=p["lr_mult"], wd_mult=p["wd_mult"])
                  for i, p in enumerate(params)}
    o = opt.create(entry["optimizer"], param_dict=param_dict, **_kwargs(entry))
    updater = opt.get_updater(o)
    weights = [mx.nd.array(data[f"w{i}_0"], dtype=p["dtype"]) for i, p in enumerate(params)]
    grads = [mx.nd.zeros(tuple(p["shape"]), dtype=p["dtype"]) for p in params]
    out = []
    for s in range(1, entry["steps"] + 1):
        for i, g in enumerate(grads):
            g[:] = mx.nd.array(data[f"g{i}_{s}"], dtype=params[i]["dtype"])
        updater(list(range(len(params))), grads, weights)
        out.append([w.asnumpy() for w in weights])
    return out


def _trainer_weights(entry: dict, data: dict) -> list[list[np.ndarray]]:
    """Weights after every step, through ``gluon.Trainer.step(1)``."""
    params = []
    for i, p in enumerate(entry["params"]):
        param = gluon.Parameter(f"p{i}", shape=tuple(p["shape"]), dtype=p["dtype"],
                                lr_mult=p["lr_mult"], wd_mult=p["wd_mult"])
        param.initialize()
        param.set_data(mx.nd.array(data[f"w{i}_0"], dtype=p["dtype"]))
        params.append(param)
    trainer = gluon.Trainer(params, entry["optimizer"], _kwargs(entry))
    out = []
    for s in range(1, entry["steps"] + 1):
        grads = [mx.nd.array(data[f"g{i}_{s}"], dtype=p.dtype) for i, p in enumerate(params)]
        with autograd.record():
            loss = sum((p.data() * g).sum() for p, g in zip(params, grads))
        loss.backward()
        trainer.step(1)
        out.append([p.data().asnumpy() for p in params])
    return out


def _assert_matches(entry: dict, data: dict, got: list[list[np.ndarray]], how: str) -> None:
    for s, weights in enumerate(got, 1):
        for i, w in enumerate(weights):
            expected = data[f"w{i}_{s}"]
            assert w.dtype == expected.dtype, (how, s, i)
            scale = float(np.max(np.abs(expected.astype(np.float64)))) or 1.0
            if expected.dtype == np.float16:
                rtol, atol = 2.0**-10, 2.0**-24
            else:
                rtol, atol = 1e-6, 1e-6 * scale
            np.testing.assert_allclose(
                w.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol,
                err_msg=f"{entry['name']} via {how}: parameter {i} "
                        f"{tuple(expected.shape)} after step {s}")


@pytest.mark.parametrize("entry", _params(EXACT))
def test_optimizer_updater_matches_mxnet_on_random_cases(entry: dict) -> None:
    data = _arrays(entry)
    _assert_matches(entry, data, _updater_weights(entry, data), "Updater")


@pytest.mark.parametrize("entry", _params(EXACT))
def test_trainer_step_matches_mxnet_on_random_cases(entry: dict) -> None:
    data = _arrays(entry)
    _assert_matches(entry, data, _trainer_weights(entry, data), "gluon.Trainer")


@pytest.mark.parametrize("entry", _params(RAISING))
def test_optimizer_raises_where_mxnet_raises_on_random_cases(entry: dict) -> None:
    data = {f"w{i}_0": np.zeros(p["shape"], p["dtype"]) for i, p in enumerate(entry["params"])}
    data.update({f"g{i}_{s}": np.ones(p["shape"], p["dtype"])
                 for i, p in enumerate(entry["params"]) for s in range(1, 5)})
    with pytest.raises(mx.base.MXNetError):
        _updater_weights(entry, data)


@pytest.mark.parametrize("entry", _params(SGLD))
def test_sgld_noise_has_mxnets_scale_on_random_cases(entry: dict) -> None:
    data = _arrays(entry)
    kwargs = _kwargs(entry)
    o = opt.create("sgld", **kwargs)
    params = entry["params"]
    weights = [NDArray(np.asarray(data[f"w{i}_0"])) for i in range(len(params))]
    states = [o.create_state(i, w) for i, w in enumerate(weights)]
    lr, wd = kwargs["learning_rate"], kwargs.get("wd", 0.0)
    for s in range(1, entry["steps"] + 1):
        devs = []
        for i, w in enumerate(weights):
            before = w.asnumpy().astype(np.float64)
            g64 = data[f"g{i}_{s}"].astype(np.float64) * kwargs.get("rescale_grad", 1.0)
            if "clip_gradient" in kwargs:
                g64 = np.clip(g64, -kwargs["clip_gradient"], kwargs["clip_gradient"])
            o.update(i, w, NDArray(np.asarray(data[f"g{i}_{s}"])), states[i])
            det = before - lr / 2 * (g64 + wd * before)
            devs.append(((w.asnumpy() - det) / np.sqrt(lr)).ravel())
        noise = np.concatenate(devs)
        assert abs(noise.mean()) < 0.1
        assert abs(noise.std() - 1.0) < 0.1
        assert abs(noise.std() - data["noise_std"][s - 1]) < 0.1


HYPER = _meta()["hyper_cases"]
_ERRORS = {"MXNetError": mx.base.MXNetError, "ZeroDivisionError": ZeroDivisionError,
           "TypeError": TypeError}


@pytest.mark.parametrize("entry", HYPER, ids=[f"{c['optimizer']}-{sorted(c['kwargs'].items())}"
                                              for c in HYPER])
def test_out_of_range_hyper_parameters_are_accepted_or_refused_as_mxnet(entry: dict) -> None:
    def run() -> np.ndarray:
        o = opt.create(entry["optimizer"], **entry["kwargs"])
        updater = opt.get_updater(o)
        w, g = mx.nd.array(entry["weight0"]), mx.nd.array(entry["grad"])
        for _ in range(entry["steps"]):
            updater([0], [g], [w])
        return w.asnumpy()

    if "raises" in entry:
        with pytest.raises(_ERRORS[entry["raises"]["type"]]):
            run()
        return
    np.testing.assert_allclose(run(), np.asarray(entry["weight"], np.float32), rtol=1e-6,
                               atol=1e-7, equal_nan=True)
