"""The compile-cache service: bounded, counted, and it explains recompiles."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from hybrid import gluon, nd
from hybrid.ndarray import dispatch
from lowering import compile_cache
from lowering.compile_cache import CompileCache, avals, explain, key


def test_cache_is_an_lru_bounded_by_maxsize():
    cache = CompileCache("test", maxsize=3, warn_after=None)
    for i in range(5):
        cache.jit("f", key(i=i), lambda x: x + 1)(jnp.ones(2))
    assert len(cache) == 3
    assert cache.get("f", key(i=0)) is None and cache.get("f", key(i=4)) is not None
    assert cache.traces("f") == 5


def test_same_key_compiles_once():
    cache = CompileCache("test", warn_after=None)
    for _ in range(4):
        cache.jit("g", key(n=1), lambda x: x * 2)(jnp.ones(3))
    assert cache.traces("g") == 1


def test_explanation_names_the_batch_size_change():
    old = key(training=True, inputs=avals([np.ones((64, 784), np.float32)]))
    new = key(training=True, inputs=avals([np.ones((65, 784), np.float32)]))
    assert explain(old, new) == "inputs 0 batch size 64 -> 65"
    other = key(training=False, inputs=avals([np.ones((64, 784), np.float64)]))
    text = explain(old, other)
    assert "training True -> False" in text and "dtype float32 -> float64" in text


def test_retrace_warning_says_which_input_changed(monkeypatch):
    monkeypatch.setattr(compile_cache, "RETRACE_WARNING", 4)
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    net.hybridize()
    with pytest.warns(UserWarning, match=r"compiled 4 times; last change: inputs 0 batch "
                                         r"size 3 -> 4"):
        for batch in (1, 2, 3, 4):
            net(nd.ones((batch, 3)))


def test_a_repeated_call_does_not_warn(monkeypatch):
    monkeypatch.setattr(compile_cache, "RETRACE_WARNING", 2)
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    net.hybridize()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            net(nd.ones((2, 3)))
    assert net.num_compilations == 1


def test_eager_scalar_ops_compile_once_for_many_scalar_values():
    x = nd.ones((3, 4))
    x * 0.123  # warm up whatever the first call compiles
    before = dispatch.EAGER.traces("_mul_scalar")
    for i in range(50):
        np.testing.assert_allclose((x * (0.5 + i)).asnumpy(), np.full((3, 4), 0.5 + i),
                                   rtol=1e-6)
    assert dispatch.EAGER.traces("_mul_scalar") - before <= 1


def test_eager_integer_scalars_compile_once_and_stay_exact_on_int_arrays():
    x = nd.array(np.arange(6).reshape(2, 3), dtype="int32")
    before = dispatch.EAGER.traces("_plus_scalar")
    for i in range(20):
        got = (x + i).asnumpy()
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, np.arange(6).reshape(2, 3) + i)
    assert dispatch.EAGER.traces("_plus_scalar") - before <= 1


@pytest.mark.parametrize("make_key", [
    lambda i: (i, 2),
    lambda i: (slice(i, i + 3), 1),
    lambda i: (Ellipsis, i, None),
])
def test_eager_basic_index_positions_compile_once(make_key):
    data = np.random.RandomState(0).rand(40, 6, 5).astype(np.float32)
    x = nd.array(data)
    x[make_key(0)]  # warm up
    before = dispatch.EAGER.traces("_index")
    for i in range(1, 5 if make_key(0)[0] is Ellipsis else 30):
        want = data[make_key(i)]
        np.testing.assert_array_equal(x[make_key(i)].asnumpy(),
                                      want.reshape(1) if want.ndim == 0 else want)
    assert dispatch.EAGER.traces("_index") - before == 0


def test_an_op_that_needs_concrete_numbers_still_works():
    # arange's start/stop decide its shape: the numbers stay static for it
    for stop in (3.0, 5.0):
        np.testing.assert_array_equal(nd.arange(0, stop).asnumpy(), np.arange(0, stop))


def test_stats_lists_every_cache():
    nd.ones((2,)) + 1.5
    stats = compile_cache.stats()
    assert "eager op" in stats and "block" in stats
