"""Train a small MLP on the UCI digits shipped with the package, eagerly and hybridized.

    python -m hybrid.examples.train_digits [--epochs N] [--out DIR]

An MXNet 1.x training loop, unchanged but for ``import hybrid as mx``: it
trains eagerly, then hybridized, then through ``trainer.compile_step`` (hybrid's
explicit one-program step), printing accuracy and samples/second of each mode;
then saves the parameters, reloads them into a fresh network that must
predict the same, and exports the model (``-symbol.json`` + ``.params``).
"""

from __future__ import annotations

import argparse
import gzip
import os
import tempfile
import time
from importlib import resources

import numpy as np

import hybrid as mx
from hybrid import autograd, gluon, nd


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as ``(images (N, 64) float32 in [0, 1], labels (N,) int)``."""
    raw = resources.files("hybrid.examples").joinpath("data/digits.csv.gz").read_bytes()
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), delimiter=",")
    return (table[:, :64] / 16.0).astype(np.float32), table[:, 64].astype(np.int64)


def build_net() -> gluon.nn.HybridSequential:
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(128, activation="relu"), gluon.nn.Dense(64, activation="relu"),
                gluon.nn.Dense(10))
    return net


def evaluate(net, data: np.ndarray, labels: np.ndarray) -> float:
    metric = mx.metric.Accuracy()
    loader = gluon.data.DataLoader(gluon.data.ArrayDataset(data, labels), batch_size=256)
    for x, y in loader:
        metric.update([y], [net(x)])
    return metric.get()[1]


def train_epoch(net, trainer, loss_fn, loader, step=None) -> float:
    """One epoch (through ``step``, a ``trainer.compile_step``, if given); returns
    samples per second."""
    seen = 0
    start = time.perf_counter()
    for x, y in loader:
        if step is not None:
            step(x, y)
        else:
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(x.shape[0])
        seen += x.shape[0]
    nd.waitall()
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per mode")
    parser.add_argument("--out", default=None, help="where to write the saved model")
    args = parser.parse_args(argv)

    mx.random.seed(42)
    images, labels = load_digits()
    order = np.random.RandomState(0).permutation(len(images))
    train, test = order[:1500], order[1500:]
    loader = gluon.data.DataLoader(gluon.data.ArrayDataset(images[train], labels[train]),
                                   batch_size=64, shuffle=True)

    net = build_net()
    net.initialize(mx.init.Xavier())
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd",
                            {"learning_rate": 0.1, "momentum": 0.9})
    print(f"digits: {len(train)} training and {len(test)} test images of 8x8 pixels")
    step = None
    for mode in ("eager", "hybridized", "compiled"):
        if mode == "hybridized":
            net.hybridize()
        if mode == "compiled":
            step = trainer.compile_step(net, loss_fn)
        for epoch in range(args.epochs):
            speed = train_epoch(net, trainer, loss_fn, loader, step)
            acc = evaluate(net, images[test], labels[test])
            note = " (includes compiling)" if epoch == 0 else ""
            print(f"{mode:>10} epoch {epoch}: test accuracy {acc:.4f}, "
                  f"{speed:,.0f} samples/s{note}")

    out = args.out or tempfile.mkdtemp(prefix="hybrid-digits-")
    os.makedirs(out, exist_ok=True)
    params_file = os.path.join(out, "digits-mlp.params")
    net.save_parameters(params_file)
    fresh = build_net()
    fresh.load_parameters(params_file)
    x = nd.array(images[test])
    same = np.array_equal(net(x).asnumpy().argmax(1), fresh(x).asnumpy().argmax(1))
    close = np.allclose(net(x).asnumpy(), fresh(x).asnumpy(), rtol=1e-5, atol=1e-6)
    print(f"reloaded from {params_file}: same predictions {same}, same outputs {close}")
    sym_file, exported = net.export(os.path.join(out, "digits-mlp"))
    print(f"exported {sym_file} and {exported}")
    if not (same and close):
        raise SystemExit("the reloaded network does not predict the same")


if __name__ == "__main__":
    main()
