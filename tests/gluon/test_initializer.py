"""Initializers against MXNet 1.9.1 reference draws/statistics, plus dispatch and registry."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from hybrid import initializer as init
from tests.golden_cases import arrays, cases

INIT_CASES = cases("initializer_stats")
EXACT_CASES = [c for c in INIT_CASES if c["extra"]["exact"]]
RANDOM_CASES = [c for c in INIT_CASES if not c["extra"]["exact"]]


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Make random draws independent of test order."""
    try:
        from hybrid import random as hybrid_random

        hybrid_random.seed(20240601)
    except (ImportError, AttributeError):
        init._fallback_key = None


def _gluon_style_init(entry: dict) -> np.ndarray:
    """What ``Parameter('weight', shape).initialize(init=Init(**kwargs))`` does in MXNet.

    The parameter's own initializer goes into ``attrs['__init__']`` and the global
    default (``Uniform()``) is the one called, so ``Init._init_weight`` fills the array.
    """
    cls = getattr(init, entry["api"].split(".")[-1])
    arr = np.zeros(entry["extra"]["shape"], dtype=np.float32)
    desc = init.InitDesc("weight", attrs={"__init__": cls(**entry["kwargs"])})
    init.Uniform()(desc, arr)
    return arr


def _stats(w: np.ndarray) -> np.ndarray:
    w64 = w.astype(np.float64)
    return np.array([w64.mean(), w64.std(), w64.min(), w64.max()])


def test_every_initializer_golden_case_is_collected():
    assert len(INIT_CASES) == 16
    assert len(EXACT_CASES) == 5


@pytest.mark.parametrize("entry", EXACT_CASES, ids=[c["name"] for c in EXACT_CASES])
def test_deterministic_initializer_matches_mxnet_exactly(entry):
    ref = arrays(entry["name"])
    got = _gluon_style_init(entry)
    assert got.dtype == ref["weight"].dtype
    np.testing.assert_array_equal(got, ref["weight"])
    np.testing.assert_array_equal(_stats(got), ref["stats"])


@pytest.mark.parametrize("entry", RANDOM_CASES, ids=[c["name"] for c in RANDOM_CASES])
def test_random_initializer_statistics_match_theory_and_mxnet(entry):
    """Our draw is within ``stat_tolerance`` (~5 sigma) of theory and of MXNet's draw."""
    ref_stats = arrays(entry["name"])["stats"]
    got = _gluon_style_init(entry)
    mean, std, lo, hi = _stats(got)
    tol = entry["extra"]["stat_tolerance"]
    theory = entry["extra"]["theory"]

    # Two independent draws: their difference has sqrt(2) times the spread of one draw.
    assert abs(mean - ref_stats[0]) <= np.sqrt(2) * tol["mean_abs"]
    assert abs(std - ref_stats[1]) <= np.sqrt(2) * tol["std_rel"] * ref_stats[1]
    if "std" in theory:
        assert abs(mean - theory.get("mean", 0.0)) <= tol["mean_abs"]
        assert abs(std - theory["std"]) <= tol["std_rel"] * theory["std"]
    if theory.get("dist") == "uniform":
        bound = theory.get("scale", theory.get("high"))
        assert -bound <= lo and hi < bound
        # A uniform draw of this size gets close to both ends, as MXNet's did.
        assert lo < -0.99 * bound and hi > 0.99 * bound


@pytest.mark.parametrize("rand_type", ["uniform", "normal"])
@pytest.mark.parametrize("shape", [(16, 48), (48, 16), (6, 2, 3, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal_times_scale(rand_type, shape):
    arr = np.zeros(shape, dtype=np.float32)
    init.Orthogonal(scale=1.414, rand_type=rand_type)._init_weight("weight", arr)
    w = arr.reshape(shape[0], -1).astype(np.float64)
    nout, nin = w.shape
    gram = w @ w.T if nout <= nin else w.T @ w
    np.testing.assert_allclose(gram, 1.414**2 * np.eye(min(nout, nin)), atol=1e-5)


def test_random_initializers_fill_float16_and_float64_arrays_in_their_dtype():
    for dtype in (np.float16, np.float64):
        arr = np.zeros((40, 30), dtype=dtype)
        init.Xavier()(init.InitDesc("fc_weight"), arr)
        assert arr.dtype == dtype
        assert np.all(np.abs(arr) <= np.sqrt(3 / 35) + 1e-3)
        assert arr.std() > 0


def test_consecutive_draws_differ():
    a = np.zeros((5, 5), dtype=np.float32)
    b = np.zeros((5, 5), dtype=np.float32)
    init.Normal(1.0)._init_weight("w", a)
    init.Normal(1.0)._init_weight("w", b)
    assert not np.array_equal(a, b)


def test_initializer_fills_ndarray_in_place():
    import hybrid as mx

    arr = mx.nd.zeros((4, 3))
    init.Constant(0.5)(init.InitDesc("dense0_weight"), arr)
    np.testing.assert_array_equal(arr.asnumpy(), np.full((4, 3), 0.5, dtype=np.float32))
    init.Xavier()(init.InitDesc("dense0_weight"), arr)
    assert np.all(np.abs(arr.asnumpy()) <= np.sqrt(3 / 3.5))


# ------------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    "name, expected",
    [
        ("conv0_weight", 0.25),
        ("conv0_bias", 0.0),
        ("bn0_gamma", 1.0),
        ("bn0_beta", 0.0),
        ("quant_min", 0.0),
        ("quant_max", 1.0),
    ],
)
def test_initdesc_name_suffix_selects_the_fill(name, expected):
    arr = np.full((2, 3), 7.0, dtype=np.float32)
    init.Constant(0.25)(init.InitDesc(name), arr)
    np.testing.assert_array_equal(arr, np.full((2, 3), expected, dtype=np.float32))


@pytest.mark.parametrize("name", ["bn0_running_mean", "bn0_moving_var", "something"])
def test_initdesc_with_unknown_suffix_raises(name):
    with pytest.raises(ValueError, match="Unknown initialization pattern for " + name):
        init.Uniform()(init.InitDesc(name), np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("attr", ["ones", init.One(), '["constant", {"value": 1.0}]'])
def test_init_attr_overrides_name_and_uses_init_weight(attr):
    arr = np.zeros(4, dtype=np.float32)
    init.Uniform()(init.InitDesc("bn0_running_mean", attrs={"__init__": attr}), arr)
    np.testing.assert_array_equal(arr, np.ones(4, dtype=np.float32))


def test_empty_init_attr_falls_back_to_name_dispatch():
    arr = np.ones(3, dtype=np.float32)
    init.One()(init.InitDesc("fc_bias", attrs={"__init__": None}), arr)
    np.testing.assert_array_equal(arr, np.zeros(3, dtype=np.float32))


def test_initdesc_is_a_str_with_attrs_and_global_init():
    desc = init.InitDesc("fc_weight")
    assert isinstance(desc, str) and desc == "fc_weight"
    assert desc.attrs == {} and desc.global_init is None
    caller = init.Zero()
    caller(desc, np.zeros((2, 2), dtype=np.float32))
    assert desc.global_init is caller


@pytest.mark.parametrize(
    "name, expected",
    [
        ("fc_weight", 0.5),
        ("fc_bias", 0.0),
        ("bn_gamma", 1.0),
        ("bn_beta", 0.0),
        ("bn_moving_mean", 0.0),
        ("bn_moving_var", 1.0),
        ("bn_moving_inv_var", 0.0),
        ("bn_moving_avg", 0.0),
        ("q_min", 0.0),
        ("q_max", 1.0),
        ("stn_loc_weight", 0.0),
    ],
)
def test_legacy_string_names_use_mxnet_legacy_rules(name, expected):
    arr = np.full((6,), 3.0, dtype=np.float32)
    with pytest.warns(DeprecationWarning):
        init.Constant(0.5)(name, arr)
    np.testing.assert_array_equal(arr, np.full((6,), expected, dtype=np.float32))


def test_legacy_stn_loc_bias_is_identity_transform_and_upsampling_is_bilinear():
    loc = np.zeros(6, dtype=np.float32)
    with pytest.warns(DeprecationWarning):
        init.Uniform()("stn_loc_bias", loc)
    np.testing.assert_array_equal(loc, [1, 0, 0, 0, 1, 0])
    up = np.zeros((2, 1, 4, 4), dtype=np.float32)
    with pytest.warns(DeprecationWarning):
        init.Uniform()("upsampling0_weight", up)
    np.testing.assert_array_equal(up, arrays("bilinear")["weight"])


def test_legacy_unknown_name_and_bad_types_raise():
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError):
        init.Uniform()("running_mean", np.zeros(2, dtype=np.float32))
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        init.Uniform()(3, np.zeros(2, dtype=np.float32))
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        init.Uniform()("fc_weight", [0.0, 0.0])


def test_base_initializer_weight_is_abstract():
    with pytest.raises(NotImplementedError):
        init.Initializer()(init.InitDesc("fc_weight"), np.zeros((2, 2), dtype=np.float32))


# ------------------------------------------------------------------------------- xavier


@pytest.mark.parametrize(
    "factor_type, shape, factor",
    [
        ("avg", (64, 32, 3, 3), (288 + 576) / 2),
        ("in", (64, 32, 3, 3), 288),
        ("out", (64, 32, 3, 3), 576),
        ("avg", (10, 30), 20),
    ],
)
def test_xavier_uniform_bound_uses_mxnet_fans(factor_type, shape, factor):
    arr = np.zeros(shape, dtype=np.float32)
    init.Xavier(factor_type=factor_type, magnitude=3)._init_weight("w", arr)
    bound = np.sqrt(3 / factor)
    assert np.abs(arr).max() <= bound
    assert np.abs(arr).max() > 0.95 * bound


def test_xavier_rejects_vectors_with_the_name_in_the_message():
    with pytest.raises(ValueError, match="cannot be applied to vector fc_bias"):
        init.Xavier()._init_weight("fc_bias", np.zeros(5, dtype=np.float32))


def test_xavier_rejects_bad_factor_and_random_types():
    with pytest.raises(ValueError, match="Incorrect factor type"):
        init.Xavier(factor_type="sum")._init_weight("w", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="Unknown random type"):
        init.Xavier(rnd_type="beta")._init_weight("w", np.zeros((2, 2), dtype=np.float32))


def test_msraprelu_is_gaussian_xavier_with_slope_magnitude():
    m = init.MSRAPrelu(factor_type="in", slope=0.5)
    assert m.rnd_type == "gaussian"
    assert m.magnitude == pytest.approx(2 / 1.25)
    assert json.loads(m.dumps()) == ["msraprelu", {"factor_type": "in", "slope": 0.5}]


# --------------------------------------------------------------------- other initializers


def test_bilinear_uses_width_for_both_axes_on_non_square_kernels():
    arr = np.zeros((1, 1, 2, 4), dtype=np.float32)
    init.Bilinear()._init_weight("w", arr)
    f, c = 2.0, 0.75
    x = np.arange(4)
    y = np.arange(2)
    expected = np.outer(1 - np.abs(y / f - c), 1 - np.abs(x / f - c)).astype(np.float32)
    np.testing.assert_array_equal(arr[0, 0], expected)


def test_lstmbias_sets_only_the_forget_gate_block():
    arr = np.full(8, 9.0, dtype=np.float32)
    init.LSTMBias(forget_bias=2.5)._init_weight("l0_i2h_bias", arr)
    np.testing.assert_array_equal(arr, [0, 0, 2.5, 2.5, 0, 0, 0, 0])


def test_constant_accepts_arrays_and_dumps_them_as_lists():
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = init.Constant(value)
    arr = np.zeros((2, 3), dtype=np.float32)
    c._init_weight("w", arr)
    np.testing.assert_array_equal(arr, value)
    assert json.loads(c.dumps()) == ["constant", {"value": value.tolist()}]
    rebuilt = init.create(c.dumps())
    arr2 = np.zeros((2, 3), dtype=np.float32)
    rebuilt._init_weight("w", arr2)
    np.testing.assert_array_equal(arr2, value)


def test_mixed_uses_first_matching_pattern():
    mixed = init.Mixed(["bias", ".*"], [init.Zero(), init.Constant(3.0)])
    bias, weight = np.ones(2, dtype=np.float32), np.zeros(2, dtype=np.float32)
    mixed(init.InitDesc("bias"), bias)
    mixed(init.InitDesc("fc_weight"), weight)
    np.testing.assert_array_equal(bias, [0, 0])
    np.testing.assert_array_equal(weight, [3, 3])
    with pytest.raises(ValueError, match="did not match any pattern"):
        init.Mixed(["bias"], [init.Zero()])(init.InitDesc("fc_weight"), weight)


def test_load_strips_prefixes_checks_shapes_and_uses_default():
    loader = init.Load(
        {"arg:fc_weight": np.full((2, 2), 4.0, dtype=np.float32)}, default_init=init.One()
    )
    w = np.zeros((2, 2), dtype=np.float32)
    loader(init.InitDesc("fc_weight"), w)
    np.testing.assert_array_equal(w, np.full((2, 2), 4.0))
    other = np.zeros(3, dtype=np.float32)
    loader(init.InitDesc("fc_bias"), other)
    np.testing.assert_array_equal(other, np.zeros(3))  # One() fills biases with 0
    with pytest.raises(AssertionError, match="Shape mismatch"):
        loader(init.InitDesc("fc_weight"), np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(AssertionError, match="no default"):
        init.Load({})(init.InitDesc("x_weight"), w)


def test_set_verbosity_logs_each_initialized_array(caplog):
    i = init.Constant(2.0).set_verbosity(True)
    with caplog.at_level(logging.INFO):
        i(init.InitDesc("fc_weight"), np.zeros(4, dtype=np.float32))
    assert "Initialized fc_weight as weight: 2.0" in caplog.text


# ------------------------------------------------------------------------ registry / dumps


@pytest.mark.parametrize(
    "name, cls",
    [
        ("zeros", init.Zero),
        ("zero", init.Zero),
        ("ones", init.One),
        ("one", init.One),
        ("uniform", init.Uniform),
        ("normal", init.Normal),
        ("xavier", init.Xavier),
        ("Xavier", init.Xavier),
        ("orthogonal", init.Orthogonal),
        ("msraprelu", init.MSRAPrelu),
        ("bilinear", init.Bilinear),
        ("lstmbias", init.LSTMBias),
    ],
)
def test_create_resolves_registered_names_case_insensitively(name, cls):
    assert type(init.create(name)) is cls


def test_create_passes_arguments_and_returns_instances_unchanged():
    assert init.create("constant", 0.3).value == 0.3
    assert init.create("xavier", magnitude=2).magnitude == 2.0
    u = init.Uniform(0.2)
    assert init.create(u) is u
    with pytest.raises(AssertionError):
        init.create(u, 0.1)
    with pytest.raises(AssertionError, match="not registered"):
        init.create("nonexistent")


@pytest.mark.parametrize(
    "obj, text",
    [
        (init.Normal(0.5), '["normal", {"sigma": 0.5}]'),
        (
            init.Xavier(),
            '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]',
        ),
        (init.Zero(), '["zero", {}]'),
        (init.Uniform(), '["uniform", {"scale": 0.07}]'),
        (init.LSTMBias(), '["lstmbias", {"forget_bias": 1.0}]'),
    ],
)
def test_dumps_writes_mxnet_json_and_create_reads_it_back(obj, text):
    assert obj.dumps() == text
    rebuilt = init.create(text)
    assert type(rebuilt) is type(obj)
    assert rebuilt.dumps() == text


def test_create_accepts_json_object_and_dict_forms():
    assert init.create('["xavier", {"magnitude": 2}]').magnitude == 2.0
    assert init.create('{"initializer": "normal", "sigma": 0.2}').sigma == 0.2
    assert init.create({"initializer": "uniform", "scale": 0.3}).scale == 0.3


def test_register_and_alias_add_custom_initializers():
    @init.register
    @init.alias("my_tenths")
    class CustomTenths(init.Initializer):
        def _init_weight(self, _, arr):
            arr[...] = 0.1

    assert type(init.create("customtenths")) is CustomTenths
    arr = np.zeros(3, dtype=np.float32)
    init.Uniform()(init.InitDesc("w", attrs={"__init__": "my_tenths"}), arr)
    np.testing.assert_array_equal(arr, np.full(3, 0.1, dtype=np.float32))
