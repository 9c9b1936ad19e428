"""64-bit mode is scoped to hybrid's own JAX calls (lowering.x64).

Importing and using hybrid leaves the user's JAX as it was (float32/int32
defaults, ``jax_enable_x64`` off); hybrid's float64/int64 arrays stay 64-bit;
and a float32 train step compiles to programs without a single 64-bit value.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon, nd
from hybrid.gluon import nn, rnn
from lowering import x64

_WIDE = {"float64", "int64", "uint64", "complex128"}


# --------------------------------------------------------------- user's JAX untouched
_USER_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    before = jax.jit(lambda a: a + 1)
    assert before(jnp.arange(3)).dtype == jnp.int32
    import hybrid as mx
    from hybrid import autograd, gluon
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(4), gluon.nn.Dropout(0.5), gluon.nn.Dense(2))
    net.initialize()
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.1})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.array(np.random.rand(3, 5))
    y = mx.nd.array([0, 1, 1])
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(3)
    d = mx.nd.array([1.5, 2.5], dtype="float64")
    assert (d * 2).dtype == np.float64, (d * 2).dtype
    # the user's code, after hybrid ran
    assert jax.config.jax_enable_x64 is False
    assert jnp.zeros(3).dtype == jnp.float32
    assert jnp.arange(3).dtype == jnp.int32
    assert jnp.asarray(np.zeros(2)).dtype == jnp.float32
    assert before(jnp.arange(3)).dtype == jnp.int32
    assert before._cache_size() == 1, before._cache_size()
    assert jax.jit(lambda a: a * 2.0)(np.ones(2)).dtype == jnp.float32
    print("ok")
""")


@pytest.mark.slow
def test_user_jax_keeps_32_bit_defaults_after_hybrid_trains() -> None:
    done = subprocess.run([sys.executable, "-c", _USER_SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_importing_hybrid_leaves_x64_off_in_this_thread() -> None:
    assert jax.config.jax_enable_x64 is False
    assert not x64.enabled()
    nd.array([1, 2], dtype="int64") + 1
    assert not x64.enabled()
    assert jnp.zeros(3).dtype == jnp.float32
    assert jnp.arange(3).dtype == jnp.int32


def test_scope_nests_and_restores_after_errors() -> None:
    @x64.scoped
    def fail():
        assert x64.enabled()
        raise RuntimeError("boom")

    with x64.scope():
        assert jnp.zeros(1).dtype == jnp.float64
        with pytest.raises(RuntimeError):
            fail()
        assert x64.enabled()
    assert not x64.enabled()
    with pytest.raises(RuntimeError):
        fail()
    assert not x64.enabled()


def test_x64_jit_traces_in_scope_and_keeps_cache_size() -> None:
    f = x64.jit(lambda a: a + jnp.arange(a.shape[0]))
    out = f(np.zeros(3, np.int64))
    assert out.dtype == jnp.int64
    assert f._cache_size() == 1
    assert not x64.enabled()


# ------------------------------------------------------------- hybrid's 64-bit arrays
@pytest.mark.parametrize("dtype", ["float64", "int64"])
@pytest.mark.parametrize("shape", [(3,), (2, 4)])
def test_64_bit_arrays_stay_64_bit(dtype: str, shape: tuple) -> None:
    rng = np.random.RandomState(len(shape))
    src = (rng.rand(*shape) * 100).astype(dtype)
    a = nd.array(src, dtype=dtype)
    assert a.dtype == np.dtype(dtype)
    for out in (a * 2, a + a, a - 1, a.sum(), nd.zeros(shape, dtype=dtype) + a, a.copy(),
                a.astype("float32").astype(dtype), a[0], a.reshape((-1,))):
        assert out.dtype == np.dtype(dtype), out.dtype
    np.testing.assert_array_equal((a * 2).asnumpy(), src * 2)
    b = a.copy()
    b[:] = src + 1
    b += 1
    assert b.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(b.asnumpy(), src + 2)


def test_float64_keeps_precision_beyond_float32() -> None:
    a = nd.array([1.0 + 1e-12], dtype="float64")
    assert (a - 1).asscalar() == pytest.approx(1e-12, rel=1e-6)
    big = nd.array([2**40 + 1], dtype="int64")
    assert int((big + 1).asscalar()) == 2**40 + 2


def test_int64_indices_and_float64_gradients() -> None:
    x = nd.array(np.arange(12).reshape(3, 4), dtype="float64")
    idx = nd.array([2, 0], dtype="int64")
    assert nd.take(x, idx).dtype == np.float64
    np.testing.assert_array_equal(nd.take(x, idx).asnumpy(), x.asnumpy()[[2, 0]])
    x.attach_grad()
    assert x.grad.dtype == np.float64
    with autograd.record():
        y = (x * x).sum()
    y.backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.asnumpy(), 2 * x.asnumpy())


def test_float64_params_file_round_trips(tmp_path) -> None:
    net = nn.Dense(3, in_units=2, dtype="float64")
    net.initialize()
    net.weight.set_data(nd.array([[1 + 1e-12, 2], [3, 4], [5, 6]], dtype="float64"))
    path = str(tmp_path / "n.params")
    net.save_parameters(path)
    again = nn.Dense(3, in_units=2, dtype="float64")
    again.load_parameters(path)
    assert again.weight.data().dtype == np.float64
    assert again.weight.data().asnumpy()[0, 0] == 1 + 1e-12
    saved = {"i": nd.array([2**40, 3], dtype="int64")}
    nd.save(str(tmp_path / "a.nd"), saved)
    back = nd.load(str(tmp_path / "a.nd"))["i"]
    assert back.dtype == np.int64 and int(back.asnumpy()[0]) == 2**40


# ------------------------------------------------- float32 programs hold no 64-bit value
def _sub_jaxprs(value):
    if hasattr(value, "eqns") or hasattr(value, "consts"):  # Jaxpr, ClosedJaxpr
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _sub_jaxprs(v)


def _wide_values(jaxpr, where: str = "") -> list[tuple[str, object]]:
    """Every 64-bit value in ``jaxpr`` and its sub-jaxprs: ``("<where> <aval>", aval)``."""
    found = []
    if hasattr(jaxpr, "consts"):  # a ClosedJaxpr
        found += [(f"{where} const {c.dtype}{c.shape}", c) for c in jaxpr.consts
                  if str(getattr(c, "dtype", "")) in _WIDE]
        jaxpr = jaxpr.jaxpr
    for v in (*jaxpr.invars, *jaxpr.constvars, *jaxpr.outvars):
        if str(getattr(v.aval, "dtype", "")) in _WIDE:
            found.append((f"{where} boundary {v.aval}", v.aval))
    for eqn in jaxpr.eqns:
        name = f"{where}/{eqn.primitive.name}"
        for v in (*eqn.invars, *eqn.outvars):
            if str(getattr(v.aval, "dtype", "")) in _WIDE:
                found.append((f"{name} {v.aval}", v.aval))
        for param in eqn.params.values():
            for sub in _sub_jaxprs(param):
                found += _wide_values(sub, name)
    return found


class _Net(gluon.HybridBlock):
    def __init__(self) -> None:
        super().__init__()
        with self.name_scope():
            self.conv = nn.Conv2D(4, 3, padding=1)
            self.bn = nn.BatchNorm()
            self.drop = nn.Dropout(0.5)
            self.lstm = rnn.LSTM(6, num_layers=2, dropout=0.3, layout="NTC", input_size=25)
            self.out = nn.Dense(5)

    def hybrid_forward(self, F, x):
        h = self.drop(self.bn(self.conv(x)))  # (N, 4, H, W)
        h = self.lstm(h.reshape((0, 0, -1)))  # (N, T=4, 6)
        return self.out(h)


@pytest.fixture
def recorded_programs(monkeypatch):
    """The jaxpr of every program compiled (jax.jit) while the fixture is active."""
    programs: list[tuple[str, object]] = []
    real_jit = jax.jit

    def recording_jit(fn, **kwargs):
        compiled = real_jit(fn, **kwargs)

        def call(*args):
            programs.append((getattr(fn, "__name__", "?"), jax.make_jaxpr(fn)(*args)))
            return compiled(*args)

        call.lower = compiled.lower
        call._cache_size = compiled._cache_size
        return call

    monkeypatch.setattr(jax, "jit", recording_jit)
    autograd._FUSED.clear()  # the fused backward compiles again, in front of the recorder
    monkeypatch.setattr(autograd, "FUSE_AFTER", 1)
    return programs


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("label_dtype", ["float32", "int32"])
def test_float32_train_step_programs_hold_no_64_bit_value(recorded_programs, optimizer: str,
                                                           label_dtype: str) -> None:
    mx.random.seed(3)
    net = _Net()
    net.initialize(mx.init.Xavier())
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    net.hybridize()
    loss_fn.hybridize()
    opts = {"learning_rate": 0.05, "wd": 1e-4, "clip_gradient": 1.0}
    if optimizer == "sgd":
        opts["momentum"] = 0.9
    trainer = gluon.Trainer(net.collect_params(), optimizer, opts)
    rng = np.random.RandomState(0)
    x = nd.array(rng.rand(2, 3, 5, 5))
    y = nd.array(rng.randint(0, 5, 2), dtype=label_dtype)
    for _ in range(2):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(2)
    assert np.isfinite(loss.asnumpy()).all() and loss.dtype == np.float32
    assert len(recorded_programs) >= 3  # forward+vjp, fused backward, update (+ loss, commit)
    updates = 0
    for k, (_, jaxpr) in enumerate(recorded_programs):
        wide = _wide_values(jaxpr, f"program {k}")
        hyper = [v.aval.shape[0] for v in jaxpr.jaxpr.invars
                 if str(v.aval.dtype) in _WIDE and len(v.aval.shape) == 1]
        if hyper:
            n_params = max(hyper)
            # The Trainer's update: only its per-parameter hyper-parameters (lr, wd, the
            # update count, rescale_grad) are 64-bit, for the Python-side double math of
            # MXNet's optimizers (Adam's bias correction); weights, gradients and states not.
            updates += 1
            wide = [w for w in wide if len(w[1].shape) > 1
                    or np.prod(w[1].shape, dtype=int) > n_params]
        assert not wide, "\n".join(w[0] for w in wide[:20])
    assert updates == 2
