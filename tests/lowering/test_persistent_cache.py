"""hybrid's programs go to JAX's on-disk cache; a second process loads them; the
user's own JAX programs are not cached by hybrid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lowering import persistent_cache

_TRAIN = textwrap.dedent("""
    import json, sys, time
    import jax, jax.numpy as jnp
    hits = []
    jax.monitoring.register_event_listener(
        lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)
    import hybrid as mx
    from hybrid import autograd, gluon, nd
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(32, activation="relu", in_units=16), gluon.nn.Dense(4, in_units=32))
    net.initialize(mx.init.Xavier())
    if sys.argv[1] == "hybridized":
        net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x, y = nd.ones((8, 16)), nd.zeros((8,))
    start = time.perf_counter()
    for _ in range(3):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(8)
    loss.asnumpy()
    print(json.dumps({"hits": len(hits), "seconds": time.perf_counter() - start}))
""")

_USER = textwrap.dedent("""
    import jax, jax.numpy as jnp
    import hybrid
    jax.jit(lambda x: jnp.tanh(x) * 3)(jnp.ones((5, 7))).block_until_ready()
""")


def _run(script: str, cache: str, *args: str, **env_vars: str) -> dict:
    env = {**os.environ, persistent_cache.ENV: cache, **env_vars}
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def test_directory_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(persistent_cache.ENV, str(tmp_path / "c"))
    assert persistent_cache.directory() == str(tmp_path / "c")
    for off in ("off", "0", "false", "None"):
        monkeypatch.setenv(persistent_cache.ENV, off)
        assert persistent_cache.directory() is None
        assert not persistent_cache.enabled()
    monkeypatch.delenv(persistent_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert persistent_cache.directory() == str(tmp_path / "xdg" / "hybrid" / "xla")


@pytest.mark.parametrize("mode", ["hybridized", "eager"])
def test_second_process_loads_hybrids_programs_from_disk(tmp_path, mode) -> None:
    cache = str(tmp_path / "cache")
    first = _run(_TRAIN, cache, mode)
    stored = set(os.listdir(cache))
    assert first["hits"] == 0 and stored
    second = _run(_TRAIN, cache, mode)
    assert second["hits"] >= len(stored) // 2, (second, len(stored))
    assert set(os.listdir(cache)) == stored  # nothing compiled anew


def test_users_own_jax_programs_are_not_stored(tmp_path) -> None:
    cache = tmp_path / "cache"
    _run(_USER, str(cache))
    assert not cache.exists() or not os.listdir(cache)


def test_switched_off_nothing_is_written(tmp_path) -> None:
    _run(_TRAIN, "off", "hybridized", XDG_CACHE_HOME=str(tmp_path), HOME=str(tmp_path))
    assert not os.listdir(tmp_path)
