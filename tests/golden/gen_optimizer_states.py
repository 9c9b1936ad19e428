"""Generate MXNet 1.9.1 ``Trainer.save_states`` files for tests/golden/files/.

Run with the reference interpreter (never from the test suite)::

    /work/mxref/bin/python tests/golden/gen_optimizer_states.py

For each case two parameters (shapes (3, 4) and (3,)) are trained 2 steps with fixed
gradients, ``trainer.save_states('files/trainer_<case>.states')`` writes MXNet's pickle,
then a third step runs. ``optimizer_states/<case>.npz`` keeps ``w{p}_0``, ``g{p}_{s}``
(s = 1..3), ``w{p}_2`` (weights when the states were saved), ``w{p}_3`` (after the
third step) and ``state{p}_{k}`` (the k-th state array of parameter p when saved).
"""

from __future__ import annotations

import json
import pathlib

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

HERE = pathlib.Path(__file__).parent
CASES = {
    "sgd_momentum": ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01}),
    "adam": ("adam", {"learning_rate": 0.01, "beta1": 0.8, "wd": 0.001,
                      "lr_scheduler": mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)}),
}


def _flat(state) -> list:
    if state is None:
        return []
    if isinstance(state, (tuple, list)):
        return [a for s in state for a in _flat(s)]
    return [state.asnumpy()]


def main() -> None:
    (HERE / "optimizer_states").mkdir(exist_ok=True)
    rng = np.random.default_rng(5)
    meta = {}
    for case, (name, kwargs) in CASES.items():
        arrays = {}
        params = []
        for i, shape in enumerate([(3, 4), (3,)]):
            p = gluon.Parameter(f"p{i}", shape=shape)
            p.initialize()
            w0 = rng.standard_normal(shape).astype(np.float32)
            p.set_data(mx.nd.array(w0))
            arrays[f"w{i}_0"] = w0
            params.append(p)
        trainer = gluon.Trainer(params, name, dict(kwargs))
        for s in (1, 2, 3):
            grads = []
            for i, p in enumerate(params):
                g = rng.standard_normal(p.shape).astype(np.float32)
                arrays[f"g{i}_{s}"] = g
                grads.append(mx.nd.array(g))
            with autograd.record():
                loss = sum((p.data() * g).sum() for p, g in zip(params, grads))
            loss.backward()
            trainer.step(2)
            if s == 2:
                trainer.save_states(str(HERE / "files" / f"trainer_{case}.states"))
                for i, p in enumerate(params):
                    arrays[f"w{i}_2"] = p.data().asnumpy()
                    for k, a in enumerate(_flat(trainer._updaters[0].states[i])):
                        arrays[f"state{i}_{k}"] = a
        for i, p in enumerate(params):
            arrays[f"w{i}_3"] = p.data().asnumpy()
        np.savez_compressed(HERE / "optimizer_states" / f"{case}.npz", **arrays)
        meta[case] = {"optimizer": name, "step_batch_size": 2,
                      "kwargs": {k: v for k, v in kwargs.items() if k != "lr_scheduler"},
                      "lr_scheduler": {"FactorScheduler": {"step": 2, "factor": 0.5}}
                      if "lr_scheduler" in kwargs else None,
                      "num_update_when_saved": trainer._optimizer.num_update - 1}
    (HERE / "optimizer_states" / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
