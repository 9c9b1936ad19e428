"""``gluon.Trainer`` against MXNet 1.9.1 optimizer cases (three steps each)."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon
from tests.golden_cases import arrays, cases

OPTIMIZER_CASES = [c["name"] for c in cases("optimizer")]


def _run_trainer(spec: dict, data: dict) -> list[np.ndarray]:
    call = spec["call"]
    pspec = call["param"]
    w0 = data["weight0"]
    param = gluon.Parameter("weight", shape=w0.shape, dtype=pspec["dtype"],
                            lr_mult=pspec["lr_mult"], wd_mult=pspec["wd_mult"])
    param.initialize()
    param.set_data(w0)
    kwargs = dict(spec["kwargs"])
    if call.get("lr_scheduler"):
        sched = call["lr_scheduler"]
        kwargs["lr_scheduler"] = getattr(mx.lr_scheduler, sched["api"].split(".")[-1])(
            **sched["kwargs"])
    trainer = gluon.Trainer([param], spec["api"].split(".")[1].split()[0].lower(), kwargs)
    weights = []
    for i in (1, 2, 3):
        g = mx.nd.array(data[f"grad{i}"], dtype=data[f"grad{i}"].dtype)
        with autograd.record():
            loss = (param.data() * g).sum()
        loss.backward()
        trainer.step(call["step_batch_size"])
        weights.append(param.data().asnumpy())
    return weights


@pytest.mark.parametrize("name", OPTIMIZER_CASES)
def test_trainer_step_matches_mxnet(name: str) -> None:
    spec = next(c for c in cases("optimizer") if c["name"] == name)
    data = arrays(name)
    weights = _run_trainer(spec, data)
    for i, w in enumerate(weights, 1):
        expected = data[f"weight{i}"]
        assert w.dtype == expected.dtype
        np.testing.assert_allclose(w.astype(np.float64), expected.astype(np.float64),
                                   atol=spec["atol"], rtol=spec["rtol"],
                                   err_msg=f"{name} step {i}")


@pytest.mark.parametrize("bulk", [0, 100000])
def test_trainer_updates_all_parameters_in_one_compiled_call(bulk) -> None:
    from hybrid import engine
    from hybrid.gluon.trainer import UPDATES

    net = gluon.nn.Dense(3, in_units=4)
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    x = mx.nd.ones((2, 4))
    steps = engine.STEPS.traces("step")
    with engine.bulk(bulk):
        for batch in (2, 5, 7):
            with autograd.record():
                loss = net(x).sum()
            loss.backward()
            trainer.step(batch)
    # batch size and step count are traced, not baked in: one program, traced once
    if bulk:  # the update is part of the captured step's program
        assert engine.STEPS.traces("step") - steps == 1
        assert UPDATES.traces(trainer._owner) == 0
    else:
        assert UPDATES.traces(trainer._owner) == 1


def test_trainer_rescale_grad_is_one_over_batch_size() -> None:
    param = gluon.Parameter("w", shape=(2,))
    param.initialize(mx.init.Zero())
    trainer = gluon.Trainer([param], "sgd", {"learning_rate": 1.0})
    with autograd.record():
        loss = (param.data() * mx.nd.array([4.0, 8.0])).sum()
    loss.backward()
    trainer.step(4)
    np.testing.assert_allclose(param.data().asnumpy(), [-1.0, -2.0])


def test_save_and_load_states_resume_training_identically(tmp_path) -> None:
    def make():
        p = gluon.Parameter("w", shape=(3,))
        p.initialize(mx.init.One())
        return p, gluon.Trainer([p], "adam", {"learning_rate": 0.1})

    def step(p, trainer, g):
        with autograd.record():
            loss = (p.data() * mx.nd.array(g)).sum()
        loss.backward()
        trainer.step(1)

    p1, t1 = make()
    step(p1, t1, [1.0, 2.0, 3.0])
    path = str(tmp_path / "adam.states")
    t1.save_states(path)
    p2, t2 = make()
    p2.set_data(p1.data())
    t2.load_states(path)
    for p, t in ((p1, t1), (p2, t2)):
        step(p, t, [0.5, -1.0, 2.0])
    np.testing.assert_array_equal(p1.data().asnumpy(), p2.data().asnumpy())


def test_step_never_deletes_a_buffer_another_handle_shares() -> None:
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize(mx.init.One())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    kept = net.weight.data().detach()
    other = gluon.Parameter("copy", shape=(2, 3))
    other.initialize()
    other.set_data(net.weight.data())
    with autograd.record():
        loss = net(mx.nd.ones((1, 3))).sum()
    loss.backward()
    trainer.step(1)
    np.testing.assert_array_equal(kept.asnumpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(other.data().asnumpy(), np.ones((2, 3)))
    np.testing.assert_allclose(net.weight.data().asnumpy(), np.full((2, 3), 0.5))
