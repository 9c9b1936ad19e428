"""``mx.kv`` against MXNet 1.9.1 (tests/golden/kvstore.json, from gen_kvstore.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

import hybrid as mx

GOLDEN = json.loads((Path(__file__).parent / "golden" / "kvstore.json").read_text())
R = GOLDEN["results"]
A, B, C = (np.asarray(GOLDEN["inputs"][k], np.float32) for k in "ABC")


def nd(x):
    return mx.nd.array(x)


def pull(kv, key, shape=(2, 3)):
    out = mx.nd.zeros(shape)
    kv.pull(key, out=out)
    return out.asnumpy()


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               rtol=1e-6, atol=1e-7)


def test_init_push_sums_devices_and_pull_copies() -> None:
    kv = mx.kv.create("local")
    kv.init(3, nd(A))
    close(pull(kv, 3), R["init_pull"])
    kv.push(3, [nd(A), nd(B), nd(C)])
    close(pull(kv, 3), R["push_sum"])
    kv.push(3, nd(B))
    close(pull(kv, 3), R["push_one"])


@pytest.mark.parametrize("name,make", [
    ("sgd", lambda: mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=0.01)),
    ("adam", lambda: mx.optimizer.Adam(learning_rate=0.01))])
def test_set_optimizer_updates_pushed_keys_as_mxnet(name, make) -> None:
    kv = mx.kv.create("device")
    kv.set_optimizer(make())
    kv.init([0, 1], [nd(A), nd(B)])
    for step, want in enumerate(R[f"optimizer_{name}"][:3]):
        kv.push([0, 1], [[nd(C * (step + 1)), nd(B)], [nd(A)]])
        close(pull(kv, 0), want[0])
        close(pull(kv, 1), want[1])
    outs = [mx.nd.zeros((2, 3)), mx.nd.zeros((2, 3))]
    kv.pushpull(0, [nd(A), nd(B)], out=outs)
    for o, want in zip(outs, R[f"optimizer_{name}"][3]):
        close(o.asnumpy(), want)


def test_optimizer_states_save_load_and_read_mxnets_file(tmp_path) -> None:
    def fresh():
        kv = mx.kv.create("local")
        kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9))
        return kv

    kv = fresh()
    kv.init("w", nd(A))
    kv.push("w", nd(B))
    close(pull(kv, "w"), R["states_weight_saved"])
    kv.save_optimizer_states(str(tmp_path / "ours"))
    kv.push("w", nd(C))
    close(pull(kv, "w"), R["states_continued"])
    mxnet_file = tmp_path / "mxnet"
    mxnet_file.write_bytes(base64.b64decode(R["states_file_b64"]))
    for fname in (tmp_path / "ours", mxnet_file):
        kv2 = fresh()
        kv2.init("w", nd(np.asarray(R["states_weight_saved"], np.float32)))
        kv2.load_optimizer_states(str(fname))
        kv2.push("w", nd(C))
        close(pull(kv2, "w"), R["states_continued"])


def test_broadcast_custom_updater_and_pushpull_in_place() -> None:
    kv = mx.kv.create("local")
    out = mx.nd.zeros((2, 3))
    kv.broadcast("b", nd(A), out=out)
    close(out.asnumpy(), R["broadcast"])
    with pytest.raises(mx.MXNetError, match="duplicate init of key 'b'"):
        kv.broadcast("b", nd(B), out=out)
    kv = mx.kv.create("local")
    kv.init(0, nd(A))

    def update(key, value, stored):
        stored[:] = stored * 0.5 + value

    kv._set_updater(update)
    kv.push(0, [nd(B), nd(C)])
    close(pull(kv, 0), R["custom_updater"])
    outs = [mx.nd.zeros((2, 3)), mx.nd.zeros((2, 3))]
    kv.pull(0, out=outs)
    for o, want in zip(outs, R["pull_many"]):
        close(o.asnumpy(), want)
    x = nd(A)
    kv.pushpull(0, x)
    close(x.asnumpy(), R["pushpull_in_place"])
    assert [mx.kv.create("device").type, kv.rank, kv.num_workers] == R["type_rank_workers"]


def test_bad_use_raises_as_mxnet_does() -> None:
    kv = mx.kv.create("local")
    kv.init(3, nd(A))
    assert "duplicate init of key 3" in R["duplicate_init"]
    with pytest.raises(mx.MXNetError, match="duplicate init of key 3"):
        kv.init(3, nd(A))
    assert "has not been inited" in R["pull_uninit"]
    with pytest.raises(mx.MXNetError, match="key 99 has not been inited"):
        kv.pull(99, out=mx.nd.zeros((2, 3)))
    assert "Mixed key types" in R["mixed_keys"]
    with pytest.raises(mx.MXNetError, match="mixed key types"):
        kv.init("w", nd(A))
    with pytest.raises(mx.MXNetError, match=R["compression"]):
        kv.set_gradient_compression({"type": "2bit"})
    with pytest.raises(mx.MXNetError, match=r"shape \(2, 3\).*\(3,\)"):
        kv.push(3, mx.nd.ones((3,)))
    with pytest.raises(ValueError, match="out="):
        kv.pull(3)
    with pytest.raises(TypeError, match="name must be a string"):
        mx.kv.create(3)
    with pytest.raises(NotImplementedError, match="dist_async"):
        mx.kv.create("dist_async")
    with pytest.raises(ValueError, match="Unknown capability"):
        kv.is_capable("sparse")
    assert kv.is_capable("optimizer")


def test_values_stay_on_their_contexts() -> None:
    kv = mx.kv.create("device")
    kv.init(0, nd(A))
    out = mx.nd.zeros((2, 3), ctx=mx.cpu(0))
    kv.pull(0, out=out)
    assert out.context == mx.cpu(0)
    a = nd(A)
    kv.pull(0, out=a)
    a[:] = 0  # the store holds its own copy
    close(pull(kv, 0), A)
