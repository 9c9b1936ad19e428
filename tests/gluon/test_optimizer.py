"""Optimizers (``mx.optimizer``) and the update operators against MXNet 1.9.1.

The golden optimizer cases were recorded through ``gluon.Trainer``; here they are
replayed through the optimizer objects alone: ``prepare_update`` gives MXNet's
``lr``/``wd``/``t`` (the parameter's ``lr_mult``/``wd_mult`` come from a
``param_dict`` entry, as the Trainer passes them) and ``fused_step`` applies the
update. The eager NDArray API is exercised through ``Updater``.
"""

from __future__ import annotations

import functools
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybrid import lr_scheduler
from hybrid import optimizer as opt
from hybrid.base import MXNetError
from hybrid.ndarray import NDArray
from lowering import registry
from tests.golden_cases import arrays, case, cases

OPT_CASES = cases("optimizer")


def _param(lr_mult=1.0, wd_mult=1.0):
    return types.SimpleNamespace(lr_mult=lr_mult, wd_mult=wd_mult)


def _optimizer_for(entry):
    """The optimizer of a golden case, configured as gluon.Trainer configures it."""
    call = entry["call"]
    kwargs = dict(entry["kwargs"])
    sched = call.get("lr_scheduler")
    if sched:
        cls = getattr(lr_scheduler, sched["api"].split(".")[-1])
        kwargs["lr_scheduler"] = cls(**sched["kwargs"])
    name = call["trainer"].split("'")[1]
    param = call["param"]
    o = opt.create(name, param_dict={0: _param(param["lr_mult"], param["wd_mult"])}, **kwargs)
    o.rescale_grad = call["effective_rescale_grad"]
    return o


def test_every_optimizer_golden_case_is_collected():
    assert len(OPT_CASES) == 25


@pytest.mark.parametrize("entry", OPT_CASES, ids=[c["name"] for c in OPT_CASES])
def test_three_fused_steps_match_mxnet_trainer(entry):
    data = arrays(entry["name"])
    o = _optimizer_for(entry)
    weight = jnp.asarray(data["weight0"])
    state = o.create_state_arrays(0, weight)
    for i in (1, 2, 3):
        lr, wd, t = o.prepare_update(0)
        assert t == i
        weight, state = o.fused_step(
            0, weight, jnp.asarray(data[f"grad{i}"]), state, lr, wd, o.rescale_grad, t
        )
        assert weight.dtype == data[f"weight{i}"].dtype
        np.testing.assert_allclose(
            np.asarray(weight, np.float64), data[f"weight{i}"].astype(np.float64),
            atol=entry["atol"], rtol=entry["rtol"], err_msg=f"{entry['name']} step {i}",
        )


def test_adamw_update_op_matches_mxnet():
    entry = case("adamw_update_op")
    data = arrays("adamw_update_op")
    op = registry.get("_contrib_adamw_update")
    attrs = op.parse_attrs(entry["kwargs"])
    new_w, new_mean, new_var = op.impl(*(jnp.asarray(data[k]) for k in entry["inputs"]), **attrs)
    np.testing.assert_allclose(new_w, data["out"], atol=entry["atol"], rtol=entry["rtol"])
    g = data["grad"] * data["rescale_grad"][0]
    np.testing.assert_allclose(new_mean, 0.9 * data["mean"] + 0.1 * g, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(new_var, 0.999 * data["var"] + 0.001 * g * g, rtol=1e-6, atol=1e-8)


def test_adamw_update_alias_is_the_same_op():
    assert registry.get("_adamw_update") is registry.get("_contrib_adamw_update")


@pytest.mark.parametrize("scale", [np.nan, np.inf, 0.0])
def test_adamw_update_skips_when_rescale_grad_is_nan_inf_or_zero(scale):
    data = arrays("adamw_update_op")
    op = registry.get("_contrib_adamw_update")
    attrs = op.parse_attrs({"lr": 0.01, "eta": 1.0, "wd": 0.1})
    ins = [jnp.asarray(data[k]) for k in ("weight", "grad", "mean", "var")]
    outs = op.impl(*ins, jnp.asarray([scale], jnp.float32), **attrs)
    for got, want in zip(outs, ins[:1] + ins[2:]):
        np.testing.assert_array_equal(got, want)


def test_update_ops_accept_traced_lr_wd_rescale_and_t():
    rng = np.random.default_rng(0)
    w, g, m, v = (jnp.asarray(rng.normal(size=(3, 4)), jnp.float32) for _ in range(4))
    v = jnp.abs(v)
    impl = registry.get("lamb_update_phase1").impl
    eager = impl(w, g, m, v, beta1=0.9, beta2=0.999, epsilon=1e-6, t=3, bias_correction=True,
                 wd=0.01, rescale_grad=0.5, clip_gradient=-1.0)
    jitted = jax.jit(
        lambda wd, rescale, t: impl(w, g, m, v, beta1=0.9, beta2=0.999, epsilon=1e-6, t=t,
                                    bias_correction=True, wd=wd, rescale_grad=rescale,
                                    clip_gradient=-1.0)
    )(0.01, 0.5, 3)
    for a, b in zip(eager, jitted):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _all_leaves(tree):
    return jax.tree_util.tree_leaves(tree)


JIT_CONFIGS = [
    ("sgd", {"momentum": 0.9, "wd": 0.01, "clip_gradient": 0.5}, "float32"),
    ("sgd", {"momentum": 0.9, "multi_precision": True}, "float16"),
    ("sgd", {"multi_precision": True}, "float16"),
    ("nag", {"momentum": 0.9}, "float32"),
    ("nag", {"momentum": 0.9, "multi_precision": True}, "float16"),
    ("signum", {"momentum": 0.9, "wd_lh": 0.01}, "float32"),
    ("signum", {"momentum": 0.0}, "float32"),
    ("lars", {"momentum": 0.9, "wd": 0.01}, "float32"),
    ("lbsgd", {"momentum": 0.9, "batch_scale": 2, "warmup_epochs": 1,
               "updates_per_epoch": 4}, "float32"),
    ("lbsgd", {"warmup_strategy": "lars", "batch_scale": 2}, "float32"),
    ("adam", {"wd": 0.01, "clip_gradient": 0.3}, "float32"),
    ("adam", {"multi_precision": True}, "float16"),
    ("adamax", {}, "float32"),
    ("nadam", {"wd": 0.01}, "float32"),
    ("lamb", {"wd": 0.01, "lower_bound": 0.1, "upper_bound": 5.0}, "float32"),
    ("lamb", {"multi_precision": True}, "float16"),
    ("ftml", {"wd": 0.01}, "float32"),
    ("rmsprop", {"clip_weights": 1.0}, "float32"),
    ("rmsprop", {"centered": True}, "float32"),
    ("adagrad", {"wd": 0.01}, "float32"),
    ("adadelta", {"wd": 0.01}, "float32"),
    ("ftrl", {"wd": 0.01}, "float32"),
    ("dcasgd", {"momentum": 0.5}, "float32"),
    ("sgld", {}, "float32"),
    ("groupadagrad", {}, "float32"),
    ("test", {}, "float32"),
]


@pytest.mark.parametrize(("name", "kwargs", "dtype"), JIT_CONFIGS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(JIT_CONFIGS)])
def test_fused_step_under_jit_with_traced_scalars_equals_unjitted(name, kwargs, dtype):
    rng = np.random.default_rng(1)
    o = opt.create(name, learning_rate=0.05, **kwargs)
    weight = jnp.asarray(rng.normal(size=(3, 4)), dtype)
    grads = [jnp.asarray(rng.normal(size=(3, 4)), dtype) for _ in range(4)]
    state_e = state_j = o.create_state_arrays(0, weight)
    w_e = w_j = weight
    step = jax.jit(functools.partial(o.fused_step, 0))
    for i, g in enumerate(grads, start=1):
        lr, wd, rescale = 0.05 / i, o.wd, 0.5
        w_e, state_e = o.fused_step(0, w_e, g, state_e, lr, wd, rescale, i)
        w_j, state_j = step(w_j, g, state_j, jnp.asarray(lr), jnp.asarray(wd),
                            jnp.asarray(rescale), jnp.asarray(i))
        assert w_j.dtype == weight.dtype
        tol = 1e-3 if dtype == "float16" else 1e-5
        np.testing.assert_allclose(np.asarray(w_j, np.float64), np.asarray(w_e, np.float64),
                                   rtol=tol, atol=tol)
        for a, b in zip(_all_leaves(state_j), _all_leaves(state_e)):
            np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                       rtol=tol, atol=tol)
    assert not np.allclose(np.asarray(w_e, np.float64), np.asarray(weight, np.float64))


def test_multi_precision_state_layout_follows_mxnet():
    w16 = jnp.ones((2, 2), jnp.float16)
    mom, w32 = opt.SGD(momentum=0.9, multi_precision=True).create_state_arrays(0, w16)
    assert mom.dtype == jnp.float32 and w32.dtype == jnp.float32
    w32, (mean, var) = opt.Adam(multi_precision=True).create_state_arrays(0, w16)
    assert w32.dtype == jnp.float32 and mean.dtype == jnp.float32
    with pytest.warns(UserWarning, match="multi_precision"):
        opt.Adam().create_state_arrays(0, w16)


# ---------------------------------------------------------------------------
# registry


@pytest.mark.parametrize("name", ["sgd", "SGD", "Sgd"])
def test_create_is_case_insensitive(name):
    o = opt.create(name, learning_rate=0.3, momentum=0.5)
    assert type(o) is opt.SGD
    assert o.learning_rate == 0.3 and o.momentum == 0.5


def test_every_mxnet_optimizer_is_registered_under_its_lowercase_name():
    expected = {"sgd", "ccsgd", "nag", "signum", "lars", "lbsgd", "adam", "adamax", "nadam",
                "lamb", "ftml", "rmsprop", "adagrad", "adadelta", "ftrl", "dcasgd", "sgld",
                "test", "groupadagrad"}
    assert expected <= set(opt.Optimizer.opt_registry)
    assert type(opt.Optimizer.create_optimizer("ccsgd")) is opt.ccSGD
    assert issubclass(opt.ccSGD, opt.SGD)
    assert opt.contrib.GroupAdaGrad is opt.GroupAdaGrad
    assert opt.optimizer.SGD is opt.SGD


def test_create_unknown_name_raises_value_error():
    with pytest.raises(ValueError, match="Cannot find optimizer nosuch"):
        opt.create("nosuch")


def test_register_adds_a_custom_optimizer_and_warns_on_override():
    @opt.register
    class MyTestOptimizerXyz(opt.Optimizer):
        pass

    try:
        assert type(opt.create("mytestoptimizerxyz")) is MyTestOptimizerXyz
        with pytest.warns(UserWarning, match="overriding"):
            opt.Optimizer.register(MyTestOptimizerXyz)
    finally:
        del opt.Optimizer.opt_registry["mytestoptimizerxyz"]


# ---------------------------------------------------------------------------
# learning rate, multipliers, counters


def test_learning_rate_defaults_follow_mxnet():
    assert opt.Optimizer().learning_rate == 0.01
    assert opt.SGD().learning_rate == 0.01
    assert opt.Adam().learning_rate == 0.001
    assert opt.Signum().learning_rate == 0.01
    assert opt.Ftrl().learning_rate == 0.1
    assert opt.Adamax().learning_rate == 0.002


def test_learning_rate_overwrites_scheduler_base_lr():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    with pytest.warns(UserWarning, match="overwritten"):
        o = opt.SGD(learning_rate=0.2, lr_scheduler=sched)
    assert sched.base_lr == 0.2
    o.prepare_update(0)
    o.prepare_update(0)
    assert o.learning_rate == pytest.approx(0.1)
    with pytest.raises(UserWarning):
        o.set_learning_rate(0.5)


def test_scheduler_base_lr_kept_when_learning_rate_is_none():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        o = opt.SGD(lr_scheduler=sched)
    assert o.lr is None and o.learning_rate == 0.7


def test_set_learning_rate_without_scheduler():
    o = opt.SGD(learning_rate=0.1)
    o.set_learning_rate(0.4)
    assert o.learning_rate == 0.4 and o.prepare_update(0)[0] == 0.4


def test_wd_mult_is_zero_for_names_not_ending_in_weight_or_gamma():
    o = opt.SGD(wd=0.1, param_idx2name={0: "fc_weight", 1: "fc_bias", 2: "bn_gamma"})
    assert [o._get_wd(i) for i in range(3)] == [0.1, 0.0, 0.1]
    o.set_wd_mult({"fc_bias": 0.5})
    assert o._get_wd(1) == pytest.approx(0.05)
    o.set_lr_mult({0: 3.0})
    assert o._get_lr(0) == pytest.approx(0.03)


def test_param_dict_multipliers_take_precedence():
    o = opt.SGD(learning_rate=0.1, wd=0.1, param_dict={0: _param(2.0, 0.0)})
    o.set_lr_mult({0: 5.0})
    assert o._get_lr(0) == pytest.approx(0.2) and o._get_wd(0) == 0.0


def test_update_counts_start_at_begin_num_update():
    o = opt.SGD(begin_num_update=10)
    assert o.prepare_update(0)[2] == 11
    assert o.prepare_update(1)[2] == 11
    assert o.prepare_update(0)[2] == 12
    assert o.num_update == 12 and o.begin_num_update == 10


def test_lbsgd_reads_learning_rate_before_advancing_the_count():
    sched = lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    o = opt.LBSGD(lr_scheduler=sched)
    assert [o.prepare_update(0)[0] for _ in range(3)] == [1.0, 1.0, 0.5]


@pytest.mark.parametrize("name", ["sgd", "nag", "adam", "adamax", "lamb", "rmsprop", "lbsgd",
                                  "nadam", "signum"])
@pytest.mark.parametrize("scheduled", [False, True])
def test_prepare_updates_equals_prepare_update_per_index(name, scheduled):
    """The batched pass gives what the per-index calls give, in MXNet's order: uneven
    counts (the scheduler sees num_update grow inside one pass), multipliers from
    param_dict, by index and by name."""

    def make():
        sched = lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=0.4) \
            if scheduled else None
        o = opt.create(name, learning_rate=None if scheduled else 0.3, wd=0.01,
                       lr_scheduler=sched, param_idx2name={3: "d_bias", 4: "e_weight"},
                       param_dict={0: _param(2.0, 0.5), 1: _param(1.0, 3.0)})
        o.set_lr_mult({2: 0.25, "e_weight": 4.0})
        o.set_wd_mult({2: 2.0})
        return o

    batched, single = make(), make()
    for o in (batched, single):  # uneven counts: index 1 is two updates ahead
        for _ in range(2):
            o.prepare_update(1)
    for indices in ([0, 1, 2, 3, 4], [0, 2], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]):
        lrs, wds, ts = batched.prepare_updates(indices)
        want = [single.prepare_update(i) for i in indices]
        assert lrs.tolist() == [w[0] for w in want]
        assert wds.tolist() == [w[1] for w in want]
        assert ts.tolist() == [w[2] for w in want]
        assert batched.num_update == single.num_update
        assert batched._index_update_count == single._index_update_count


def test_prepare_updates_checks_the_whole_batch():
    o = opt.SGD(learning_rate=0.1, param_dict={0: _param(), 1: _param(float("inf"))})
    with pytest.raises(MXNetError, match="lrs"):
        o.prepare_updates([0, 1])
    with pytest.raises(ZeroDivisionError):
        opt.Adam(beta1=1.0).prepare_updates([0, 1])
    with pytest.raises(AssertionError, match="Weight decay"):
        opt.GroupAdaGrad(wd=0.1).prepare_updates([0])


def test_groupadagrad_refuses_weight_decay():
    o = opt.GroupAdaGrad(wd=0.1)
    with pytest.raises(AssertionError, match="Weight decay"):
        o.prepare_update(0)


# ---------------------------------------------------------------------------
# eager NDArray API


@pytest.mark.parametrize("entry", OPT_CASES, ids=[c["name"] for c in OPT_CASES])
def test_eager_updater_matches_mxnet_trainer(entry):
    data = arrays(entry["name"])
    updater = opt.get_updater(_optimizer_for(entry))
    weight = NDArray(jnp.asarray(data["weight0"]))
    for i in (1, 2, 3):
        updater(0, NDArray(jnp.asarray(data[f"grad{i}"])), weight)
        assert weight._data.dtype == data[f"weight{i}"].dtype
        np.testing.assert_allclose(
            np.asarray(weight._data, np.float64), data[f"weight{i}"].astype(np.float64),
            atol=entry["atol"], rtol=entry["rtol"], err_msg=f"{entry['name']} step {i}",
        )
    leaves = jax.tree_util.tree_leaves(
        updater.states[0], is_leaf=lambda x: isinstance(x, NDArray)
    )
    assert all(isinstance(leaf, NDArray) for leaf in leaves)


def test_eager_update_multi_precision_keeps_fp32_master_copy():
    data = arrays("sgd_fp16_multi_precision")
    o = _optimizer_for(case("sgd_fp16_multi_precision"))
    weight = NDArray(jnp.asarray(data["weight0"]))
    state = o.create_state_multi_precision(0, weight)
    for i in (1, 2, 3):
        o.update_multi_precision(0, weight, NDArray(jnp.asarray(data[f"grad{i}"])), state)
    assert weight._data.dtype == jnp.float16 and state[1]._data.dtype == jnp.float32
    np.testing.assert_allclose(weight._data.astype(np.float32), data["weight3"], atol=2e-3)
    np.testing.assert_allclose(state[1]._data, data["weight3"], atol=2e-3)


def test_eager_update_accepts_lists_of_parameters():
    o = opt.SGD(learning_rate=0.5)
    ws = [NDArray(jnp.ones(2)), NDArray(jnp.zeros(2))]
    gs = [NDArray(jnp.ones(2)), NDArray(jnp.full(2, 2.0))]
    o.update([0, 1], ws, gs, [None, None])
    np.testing.assert_allclose(ws[0]._data, [0.5, 0.5])
    np.testing.assert_allclose(ws[1]._data, [-1.0, -1.0])


def test_nadam_eager_update_shares_the_momentum_schedule_across_parameters():
    o = opt.Nadam()
    states = [o.create_state(i, NDArray(jnp.ones(3))) for i in range(2)]
    for i in range(2):
        o.update(i, NDArray(jnp.ones(3)), NDArray(jnp.ones(3)), states[i])
    mu1 = 0.9 * (1 - 0.5 * 0.96 ** 0.004)
    assert o.m_schedule == pytest.approx(mu1 * mu1)


def test_adadelta_eager_update_rescales_the_gradient_in_place():
    o = opt.AdaDelta(rescale_grad=0.5)
    grad = NDArray(jnp.full(3, 4.0))
    o.update(0, NDArray(jnp.ones(3)), grad, o.create_state(0, NDArray(jnp.ones(3))))
    np.testing.assert_allclose(grad._data, [2.0, 2.0, 2.0])


def test_updater_states_round_trip_through_get_and_set_states():
    o = opt.Adam(learning_rate=0.1)
    updater = opt.Updater(o)
    weight = NDArray(jnp.ones(3))
    updater(0, NDArray(jnp.full(3, 0.5)), weight)
    blob = updater.get_states(dump_optimizer=True)
    restored = opt.Updater(opt.SGD())
    restored.set_states(blob)
    assert type(restored.optimizer) is opt.Adam
    assert restored.optimizer._index_update_count == {0: 1}
    for a, b in zip(restored.states[0], updater.states[0]):
        np.testing.assert_array_equal(a._data, b._data)
    assert opt.states.loads_states(updater.get_states())[0][0][0].shape == (3,)  # no pickle


def test_sgld_noise_is_reproducible_after_mx_random_seed():
    from hybrid import random

    def run():
        random.seed(7)
        o = opt.SGLD(learning_rate=0.01)
        w = jnp.zeros(4)
        state = o.create_state_arrays(0, w)
        w, state = o.fused_step(0, w, jnp.zeros(4), state, 0.01, 0.0, 1.0, 1)
        return np.asarray(w)

    first, second = run(), run()
    np.testing.assert_array_equal(first, second)
    assert np.std(first) > 0


def test_builtin_optimizers_support_the_fused_step():
    for name, klass in opt.Optimizer.opt_registry.items():
        if klass.__module__.startswith("hybrid.optimizer"):
            assert klass().supports_fused_step, name
    assert not opt.Optimizer().supports_fused_step


def test_mxnet_style_custom_optimizer_runs_through_the_eager_updater():
    class MXNetStyleHalfStep(opt.Optimizer):
        def create_state(self, index, weight):
            return NDArray(jnp.zeros(weight.shape))

        def update(self, index, weight, grad, state):
            self._update_count(index)
            weight[:] = weight - 0.5 * self._get_lr(index) * grad
            state[:] = grad

    o = MXNetStyleHalfStep(learning_rate=1.0)
    assert not o.supports_fused_step
    updater = opt.Updater(o)
    weight = NDArray(jnp.ones(2))
    updater(0, NDArray(jnp.full(2, 2.0)), weight)
    np.testing.assert_allclose(weight._data, [0.0, 0.0])
    np.testing.assert_allclose(updater.states[0]._data, [2.0, 2.0])


def test_generic_multi_precision_updates_the_master_copy_through_update():
    o = opt.Adamax(learning_rate=0.1, multi_precision=True)
    weight = NDArray(jnp.ones(3, jnp.float16))
    state = o.create_state_multi_precision(0, weight)
    o.update_multi_precision(0, weight, NDArray(jnp.ones(3, jnp.float16)), state)
    assert state[0]._data.dtype == jnp.float32
    np.testing.assert_allclose(state[0]._data, [0.9, 0.9, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(weight._data, state[0]._data.astype(jnp.float16))
