"""Generate tests/golden/kvstore.json with real MXNet 1.9.1 (run in the mxref venv).

    /path/to/mxref/bin/python tests/golden/gen_kvstore.py

Each scenario drives ``mx.kv`` (init, push of several devices' values, pull, pushpull,
broadcast, an optimizer or a custom updater, optimizer states saved and loaded) and
records the pulled values; errors record MXNet's message. tests/test_kvstore.py replays
the same scenarios on hybrid.
"""

import base64
import json
import os
import tempfile

import mxnet as mx
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kvstore.json")
RNG = np.random.RandomState(0)
A = RNG.rand(2, 3).astype(np.float32)
B = RNG.rand(2, 3).astype(np.float32)
C = RNG.rand(2, 3).astype(np.float32)


def nd(x):
    return mx.nd.array(x)


def pull(kv, key, shape=(2, 3)):
    out = mx.nd.zeros(shape)
    kv.pull(key, out=out)
    return out.asnumpy().tolist()


def error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return str(e).strip().splitlines()[-1]
    return None


def scenarios():
    res = {}
    kv = mx.kv.create("local")
    kv.init(3, nd(A))
    res["init_pull"] = pull(kv, 3)
    kv.push(3, [nd(A), nd(B), nd(C)])
    res["push_sum"] = pull(kv, 3)
    kv.push(3, nd(B))
    res["push_one"] = pull(kv, 3)
    res["duplicate_init"] = error(lambda: kv.init(3, nd(A)))
    res["pull_uninit"] = error(lambda: kv.pull(99, out=mx.nd.zeros((2, 3))))
    res["mixed_keys"] = error(lambda: kv.init("w", nd(A)))
    res["compression"] = error(lambda: kv.set_gradient_compression({"type": "2bit"}))

    for name, opt in (("sgd", lambda: mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=0.01)),
                      ("adam", lambda: mx.optimizer.Adam(learning_rate=0.01))):
        kv = mx.kv.create("device")
        kv.set_optimizer(opt())
        kv.init([0, 1], [nd(A), nd(B)])
        seq = []
        for step in range(3):
            kv.push([0, 1], [[nd(C * (step + 1)), nd(B)], [nd(A)]])
            seq.append([pull(kv, 0), pull(kv, 1)])
        outs = [mx.nd.zeros((2, 3)), mx.nd.zeros((2, 3))]
        kv.pushpull(0, [nd(A), nd(B)], out=outs)
        seq.append([o.asnumpy().tolist() for o in outs])
        res[f"optimizer_{name}"] = seq

    kv = mx.kv.create("local")
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    kv.init("w", nd(A))
    kv.push("w", nd(B))
    res["states_weight_saved"] = pull(kv, "w")
    fname = os.path.join(tempfile.mkdtemp(), "states")
    kv.save_optimizer_states(fname)
    with open(fname, "rb") as f:
        res["states_file_b64"] = base64.b64encode(f.read()).decode()
    kv.push("w", nd(C))
    res["states_continued"] = pull(kv, "w")

    kv = mx.kv.create("local")
    out = mx.nd.zeros((2, 3))
    kv.broadcast("b", nd(A), out=out)
    res["broadcast"] = out.asnumpy().tolist()
    res["broadcast_twice"] = error(lambda: kv.broadcast("b", nd(B), out=out))

    kv = mx.kv.create("local")
    kv.init(0, nd(A))

    def update(key, value, stored):
        stored[:] = stored * 0.5 + value

    kv._set_updater(update)
    kv.push(0, [nd(B), nd(C)])
    res["custom_updater"] = pull(kv, 0)
    outs = [mx.nd.zeros((2, 3)), mx.nd.zeros((2, 3))]
    kv.pull(0, out=outs)
    res["pull_many"] = [o.asnumpy().tolist() for o in outs]
    x = nd(A)
    kv.pushpull(0, x)
    res["pushpull_in_place"] = x.asnumpy().tolist()
    res["type_rank_workers"] = [mx.kv.create("device").type, kv.rank, kv.num_workers]
    return res


if __name__ == "__main__":
    data = {"mxnet": mx.__version__, "inputs": {"A": A.tolist(), "B": B.tolist(),
                                                "C": C.tolist()},
            "results": scenarios()}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
    print("wrote", OUT)
