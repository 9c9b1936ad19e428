"""Parameter, Constant and ParameterDict semantics."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd


def test_parameter_initialize_data_grad_and_zero_grad() -> None:
    p = gluon.Parameter("w", shape=(2, 3), init=mx.init.One(), lr_mult=0.5, wd_mult=2.0)
    p.initialize()
    assert p.data().asnumpy().tolist() == [[1, 1, 1], [1, 1, 1]]
    assert p.lr_mult == 0.5 and p.wd_mult == 2.0
    with autograd.record():
        y = (p.data() * 3).sum()
    y.backward()
    assert p.grad().asnumpy().tolist() == [[3, 3, 3], [3, 3, 3]]
    p.zero_grad()
    assert p.grad().asnumpy().sum() == 0
    assert p.list_ctx() == [mx.cpu()]


def test_initialize_twice_warns_and_force_reinit_reinitializes() -> None:
    p = gluon.Parameter("w", shape=(2,), init=mx.init.Zero())
    p.initialize()
    with pytest.warns(UserWarning, match="already initialized"):
        p.initialize()
    p.initialize(init=mx.init.One(), force_reinit=True)
    assert p.data().asnumpy().tolist() == [1, 1]


def test_unknown_shape_without_deferral_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid shape"):
        gluon.Parameter("w", shape=(0, 3)).initialize()


def test_set_data_and_grad_req_null() -> None:
    p = gluon.Parameter("w", shape=(2,), grad_req="null")
    p.initialize()
    p.set_data(nd.array([5, 6]))
    assert p.data().asnumpy().tolist() == [5, 6]
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        p.grad()


def test_constant_never_gets_a_gradient() -> None:
    c = gluon.Constant("c", nd.array([1.0, 2.0]))
    c.initialize()
    assert c.grad_req == "null"
    assert c.data().asnumpy().tolist() == [1, 2]


def test_parameter_dict_get_shares_and_checks_attributes() -> None:
    pd = gluon.ParameterDict("net_")
    w = pd.get("weight", shape=(2, 2))
    assert pd.get("weight") is w and w.name == "net_weight"
    with pytest.raises(AssertionError, match="lr_mult"):
        pd.get("weight", lr_mult=3.0)
    shared = gluon.ParameterDict("net_", shared=pd)
    assert shared.get("weight") is w
    pd.initialize(mx.init.One())
    pd.setattr("grad_req", "add")
    assert w.grad_req == "add"


def test_parameter_dict_save_and_load(tmp_path) -> None:
    pd = gluon.ParameterDict("net_")
    pd.get("a", shape=(2,), init=mx.init.Constant(3.0))
    pd.initialize()
    path = str(tmp_path / "p.params")
    pd.save(path, strip_prefix="net_")
    other = gluon.ParameterDict("net_")
    other.get("a", shape=(2,))
    other.initialize(mx.init.Zero())
    other.load(path, restore_prefix="net_")
    assert other["net_a"].data().asnumpy().tolist() == [3, 3]


def test_sequential_runs_children_eagerly_and_hybridizes_hybrid_children() -> None:
    net = gluon.nn.Sequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(3, in_units=2), gluon.nn.Lambda(lambda x: x * 2))
    net.initialize(mx.init.One())
    net.hybridize()
    out = net(nd.ones((1, 2)))
    np.testing.assert_allclose(out.asnumpy(), [[4, 4, 4]])  # bias keeps its "zeros" init
    assert net[0].num_compilations == 1
    assert len(net) == 2
