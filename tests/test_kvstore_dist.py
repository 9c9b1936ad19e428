"""``mx.kv.create('dist_sync')`` with two real processes (CPU devices, jax.distributed):
both end with the same weights, those of one process training on the whole batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

_WORKER = r"""
import json, sys
import numpy as np
import hybrid as mx
from hybrid import autograd, gluon, nd

workers = int(sys.argv[1])
kv = mx.kv.create("dist_sync" if workers > 1 else "local")  # before any array exists
rank = kv.rank
rng = np.random.RandomState(0)
X = rng.rand(8, 5).astype(np.float32)
Y = rng.randint(0, 3, 8).astype(np.float32)
mx.random.seed(rank)                    # different initial weights on each worker
net = gluon.nn.Dense(3, in_units=5)
net.initialize(mx.init.Xavier())
params = list(net.collect_params().values())
for i, p in enumerate(params):          # rank 0's initial weights everywhere
    kv.init(i, p.data())
    kv.pull(i, out=p.data())
kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, rescale_grad=1 / 8))
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
x, y = nd.array(X[rank::workers]), nd.array(Y[rank::workers])
for _ in range(3):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    for i, p in enumerate(params):
        kv.push(i, p.grad())
        kv.pull(i, out=p.data())
kv._barrier()
print(json.dumps({"rank": rank, "workers": kv.num_workers,
                  "weights": [p.data().asnumpy().tolist() for p in params]}))
"""

_TRAINER = r"""
import json, sys
import numpy as np
import hybrid as mx
from hybrid import autograd, gluon, nd

optimizer, workers, hybridize = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
rng = np.random.RandomState(0)
X = rng.rand(8, 5).astype(np.float32)
Y = rng.randint(0, 3, 8).astype(np.float32)
kvstore = "dist_sync" if workers > 1 else "device"
if workers > 1:
    kv = mx.kv.create(kvstore)          # the Trainer's store joins the same group
    rank = kv.rank
else:
    rank = 0
# MXNet's Trainer broadcasts rank 0's weights at its first step, after the first
# backward: workers start from the same seed, as MXNet programs do.
mx.random.seed(0)
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(4, activation="relu", in_units=5), gluon.nn.Dense(3, in_units=4))
net.initialize(mx.init.Xavier())
if hybridize:
    net.hybridize()
params = {"learning_rate": 0.1, "momentum": 0.9} if optimizer == "sgd" else \
    {"learning_rate": 0.01}
trainer = gluon.Trainer(net.collect_params(), optimizer, params, kvstore=kvstore)
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
x, y = nd.array(X[rank::workers]), nd.array(Y[rank::workers])
for _ in range(3):
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(4)                     # the local batch when two workers split 8
print(json.dumps({"weights": [p.data().asnumpy().tolist()
                              for p in net.collect_params().values()]}))
"""


def _run_workers(code: str, args: list[str], n: int) -> list[dict]:
    port = _free_port()
    procs = []
    for rank in range(n):
        env = {**os.environ, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
               "JAX_NUM_PROCESSES": str(n), "JAX_PROCESS_ID": str(rank),
               "JAX_PLATFORMS": "cpu"}
        procs.append(subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                                      text=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr[-2000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


@pytest.mark.slow
@pytest.mark.parametrize("optimizer,hybridize", [("sgd", "0"), ("adam", "1")])
def test_trainer_with_dist_sync_trains_two_processes_to_the_same_weights(
        optimizer, hybridize) -> None:
    two = _run_workers(_TRAINER, [optimizer, "2", hybridize], 2)
    whole = _one_process(_TRAINER, [optimizer, "1", hybridize])["weights"]
    for a, b, c in zip(two[0]["weights"], two[1]["weights"], whole):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_process(code: str, args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, check=True, timeout=240)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_train_to_the_same_weights_as_one_on_the_whole_batch() -> None:
    outs = _run_workers(_WORKER, ["2"], 2)
    whole = _one_process(_WORKER, ["1"])["weights"]
    assert [o["rank"] for o in outs] == [0, 1] and outs[0]["workers"] == 2
    for a, b, c in zip(outs[0]["weights"], outs[1]["weights"], whole):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_dist_kvstore_without_a_process_group_says_what_to_set() -> None:
    code = ("import hybrid as mx\n"
            "try:\n    mx.kv.create('dist_sync')\n"
            "except mx.MXNetError as e:\n    print('refused:', e)\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROC", "JAX_PROCESS", "DMLC_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True, timeout=120)
    assert "refused:" in done.stdout and "JAX_COORDINATOR_ADDRESS" in done.stdout
