"""Optimizer states files: no code from the file runs; MXNet 1.9's own files still load.

``tests/golden/files/trainer_*.states`` are real MXNet 1.9.1 ``Trainer.save_states``
pickles (``tests/golden/gen_optimizer_states.py``); ``optimizer_states/*.npz`` holds the
states MXNet had when it saved them and the weights after one more step.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, lr_scheduler
from hybrid import optimizer as opt
from hybrid.optimizer.states import HEADER_KEY, dumps_states, loads_states
from lowering.serialization import load as nd_load

GOLDEN = pathlib.Path(__file__).parents[1] / "golden"
MX_CASES = json.loads((GOLDEN / "optimizer_states" / "cases.json").read_text())


def _params(weights: list[np.ndarray]) -> list[gluon.Parameter]:
    params = []
    for i, w in enumerate(weights):
        p = gluon.Parameter(f"p{i}", shape=w.shape, dtype=w.dtype)
        p.initialize()
        p.set_data(mx.nd.array(w, dtype=w.dtype))
        params.append(p)
    return params


def _step(trainer: gluon.Trainer, params: list, grads: list[np.ndarray], batch: int = 1) -> None:
    gs = [mx.nd.array(g, dtype=g.dtype) for g in grads]
    with autograd.record():
        loss = sum((p.data() * g).sum() for p, g in zip(params, gs))
    loss.backward()
    trainer.step(batch)


def _mx_trainer(case: str, params: list) -> gluon.Trainer:
    spec = MX_CASES[case]
    kwargs = dict(spec["kwargs"])
    if spec["lr_scheduler"]:
        sched = spec["lr_scheduler"]["FactorScheduler"]
        kwargs["lr_scheduler"] = lr_scheduler.FactorScheduler(**sched)
    return gluon.Trainer(params, spec["optimizer"], kwargs)


@pytest.mark.parametrize("case", sorted(MX_CASES))
def test_trainer_resumes_from_an_mxnet_states_file_as_mxnet(case: str) -> None:
    with np.load(GOLDEN / "optimizer_states" / f"{case}.npz", allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    params = _params([data["w0_2"], data["w1_2"]])
    trainer = _mx_trainer(case, params)
    trainer.load_states(str(GOLDEN / "files" / f"trainer_{case}.states"))
    assert trainer.optimizer.num_update == MX_CASES[case]["num_update_when_saved"]
    assert trainer.optimizer._index_update_count == {0: 2, 1: 2}
    assert trainer.optimizer.param_dict[0] is params[0]
    for i in range(2):
        leaves = [np.asarray(a) for a in __import__("jax").tree_util.tree_leaves(
            trainer._states[i])]
        expected = [data[k] for k in sorted(data) if k.startswith(f"state{i}_")]
        assert len(leaves) == len(expected)
        for a, b in zip(leaves, expected):
            np.testing.assert_array_equal(a, b)
    _step(trainer, params, [data["g0_3"], data["g1_3"]], MX_CASES[case]["step_batch_size"])
    for i, p in enumerate(params):
        np.testing.assert_allclose(p.data().asnumpy(), data[f"w{i}_3"], rtol=1e-6, atol=1e-7)


def test_updater_set_states_reads_an_mxnet_states_pickle() -> None:
    blob = (GOLDEN / "files" / "trainer_adam.states").read_bytes()
    updater = opt.get_updater(opt.SGD())
    updater.set_states(blob)
    assert type(updater.optimizer) is opt.Adam
    assert isinstance(updater.optimizer.lr_scheduler, lr_scheduler.FactorScheduler)
    mean, var = updater.states[1]
    assert mean.shape == (3,) and var.shape == (3,)


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _crafted(tmp_path: pathlib.Path, payload_fn) -> tuple[pathlib.Path, pathlib.Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.states"
    path.write_bytes(pickle.dumps(payload_fn(_Evil(f"touch {marker}"))))
    return path, marker


@pytest.mark.parametrize("shape", ["bare", "in_states", "as_optimizer", "in_attrs"])
def test_a_crafted_states_pickle_calling_os_system_is_refused(tmp_path, shape) -> None:
    payloads = {
        "bare": lambda e: e,
        "in_states": lambda e: ({0: e}, None),
        "as_optimizer": lambda e: ({}, e),
        "in_attrs": lambda e: {0: (e, e)},
    }
    path, marker = _crafted(tmp_path, payloads[shape])
    trainer = gluon.Trainer(_params([np.ones(3, np.float32)]), "sgd")
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load .*system"):
        trainer.load_states(str(path))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        opt.get_updater(opt.SGD()).set_states(path.read_bytes())
    assert not marker.exists()


@pytest.mark.parametrize("global_name", [b"builtins\neval", b"subprocess\nPopen",
                                         b"mxnet.ndarray.ndarray\nsave", b"numpy\nload"])
def test_any_global_outside_mxnets_states_types_is_refused(global_name: bytes) -> None:
    blob = b"\x80\x02c" + global_name + b"\n(S'1'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        loads_states(blob)


OPTIMIZERS = [
    ("sgd", {"momentum": 0.9, "wd": 0.01}, "float32"),
    ("sgd", {"momentum": 0.9, "multi_precision": True}, "float16"),
    ("nag", {"momentum": 0.8}, "float32"),
    ("adam", {"lr_scheduler": "factor"}, "float32"),
    ("nadam", {}, "float32"),
    ("lars", {"momentum": 0.9}, "float32"),
    ("rmsprop", {"centered": True}, "float32"),
    ("lbsgd", {"momentum": 0.9, "batch_scale": 2}, "float32"),
    ("ftml", {}, "float32"),
    ("adadelta", {}, "float32"),
]


@pytest.mark.parametrize(("name", "kwargs", "dtype"), OPTIMIZERS,
                         ids=[f"{n}-{d}-{i}" for i, (n, _, d) in enumerate(OPTIMIZERS)])
def test_saved_states_resume_training_exactly(tmp_path, name, kwargs, dtype) -> None:
    rng = np.random.default_rng(3)
    w0 = [rng.standard_normal(s).astype(dtype) for s in [(3, 5), (7,)]]
    grads = [[rng.standard_normal(w.shape).astype(dtype) for w in w0] for _ in range(4)]

    def make(weights):
        params = _params(weights)
        kw = dict(kwargs)
        if kw.get("lr_scheduler") == "factor":  # a fresh one per trainer: schedulers mutate
            kw["lr_scheduler"] = lr_scheduler.FactorScheduler(step=1, factor=0.9, base_lr=0.01)
            kw["learning_rate"] = 0.01
        return params, gluon.Trainer(params, name, kw)

    params, trainer = make(w0)
    for g in grads[:2]:
        _step(trainer, params, g)
    path = tmp_path / "t.states"
    trainer.save_states(str(path))
    params2, trainer2 = make([p.data().asnumpy() for p in params])
    trainer2.load_states(str(path))
    for g in grads[2:]:
        _step(trainer, params, g)
        _step(trainer2, params2, g)
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data().asnumpy(), q.data().asnumpy())
    assert trainer2.optimizer.num_update == trainer.optimizer.num_update


def test_states_file_is_an_mxnet_ndarray_file_with_a_json_header(tmp_path) -> None:
    params = _params([np.ones((2, 3), np.float32)])
    trainer = gluon.Trainer(params, "adam", {"learning_rate": 0.1})
    _step(trainer, params, [np.ones((2, 3), np.float32)])
    path = tmp_path / "t.states"
    trainer.save_states(str(path))
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80")  # not a pickle
    arrays = nd_load(str(path))
    header = json.loads(bytes(arrays[HEADER_KEY]).decode())
    assert header["format"] == "hybrid-optimizer-states"
    assert header["optimizer"]["class"] == "adam"
    attrs = dict(header["optimizer"]["attrs"]["dict"])
    assert attrs["num_update"] == 1 and attrs["beta1"] == 0.9
    assert sorted(k for k in arrays if k != HEADER_KEY) == ["s0", "s1"]


def test_updater_get_states_round_trips_without_pickle() -> None:
    o = opt.Nadam(learning_rate=0.1)
    updater = opt.get_updater(o)
    w = mx.nd.array([1.0, 2.0, 3.0])
    updater([0], [mx.nd.array([0.5, -0.5, 1.0])], [w])
    blob = updater.get_states(dump_optimizer=True)
    assert not blob.startswith(b"\x80")
    other = opt.get_updater(opt.SGD())
    other.set_states(blob)
    assert type(other.optimizer) is opt.Nadam
    assert other.optimizer.m_schedule == o.m_schedule
    for a, b in zip(other.states[0], updater.states[0]):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    states, optimizer = loads_states(updater.get_states())
    assert optimizer is None and set(states) == {0}


def test_a_header_naming_an_unknown_class_is_refused() -> None:
    blob = dumps_states({}, opt.SGD())
    arrays = __import__("lowering").serialization.loads(blob)
    header = json.loads(bytes(arrays[HEADER_KEY]).decode())
    for field, value in (("class", "os.system"), ("class", "posix")):
        header["optimizer"][field] = value
        arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        with pytest.raises(ValueError, match="not registered"):
            loads_states(__import__("lowering").serialization.dumps(arrays))
    header["optimizer"] = {"class": "sgd", "attrs": {"lr_scheduler": "os", "attrs": {}}}
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with pytest.raises(ValueError, match="unknown learning-rate scheduler"):
        loads_states(__import__("lowering").serialization.dumps(arrays))


def test_saving_an_unregistered_optimizer_or_an_object_attribute_raises() -> None:
    class Mine(opt.SGD):
        pass

    with pytest.raises(TypeError, match="not registered"):
        dumps_states({}, Mine())
    o = opt.SGD()
    o.callback = object()
    with pytest.raises(TypeError, match=r"SGD\[.callback.\]"):
        dumps_states({}, o)


def test_not_a_states_file_is_refused() -> None:
    with pytest.raises(ValueError, match="not an optimizer states file"):
        loads_states(b"hello")
    with pytest.raises(ValueError, match="header entry"):
        loads_states(__import__("lowering").serialization.dumps({"w": np.ones(2)}))
