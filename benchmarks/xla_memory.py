"""W3's step memory as XLA plans it: the compiled-step executable against the hand-written one.

``memory_analysis()`` of each compiled executable: arguments, temporaries, outputs and
how much of the output aliases (reuses) donated arguments. The step's peak is about
``arguments + temporaries + outputs - aliased``. hybrid's arguments are larger by the
gradient buffers MXNet keeps (``.grad``); its outputs are written into donated buffers.

    python benchmarks/xla_memory.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HYBRID_CACHE_DIR", "off")
import suite  # noqa: E402
import workloads as w  # noqa: E402

from hybrid import random as _random  # noqa: E402
from hybrid.gluon import train_step  # noqa: E402
from lowering import x64  # noqa: E402


def _report(what: str, ma) -> float:
    mb = 2 ** 20
    peak = (ma.argument_size_in_bytes + ma.temp_size_in_bytes + ma.output_size_in_bytes
            - ma.alias_size_in_bytes) / mb
    print(f"{what:<10} arguments {ma.argument_size_in_bytes / mb:7.1f} MB  temporaries "
          f"{ma.temp_size_in_bytes / mb:7.1f} MB  outputs {ma.output_size_in_bytes / mb:7.1f} MB"
          f"  aliased {ma.alias_size_in_bytes / mb:7.1f} MB  peak {peak:7.1f} MB")
    return peak


def main() -> None:
    x, y = suite._data("resnet", np.random.RandomState(0))
    seen = {}
    real_jit = jax.jit

    def spy(*args, **kwargs):
        seen["step"] = real_jit(*args, **kwargs)
        return seen["step"]

    w.jax.jit = spy  # the hand-written step's jitted function
    try:
        jstep, jsync = w.jax_resnet18(x, y)
    finally:
        w.jax.jit = real_jit
    jsync(jstep())
    state = next(c.cell_contents for c in jstep.__closure__
                 if isinstance(c.cell_contents, dict))
    ref = _report("jax", seen["step"].lower(state["p"], state["m"], state["a"], jnp.asarray(x),
                                            jnp.asarray(y)).compile().memory_analysis())

    net_step, sync = w.hybrid_resnet18(x, y, "compiled")
    for _ in range(2):
        sync(net_step())
    cells = [c.cell_contents for c in net_step.__closure__]
    step = next(c for c in cells if isinstance(c, train_step.TrainStep))
    inputs = next(c for c in cells if isinstance(c, list))
    label = next(c for c in cells if hasattr(c, "_data") and not isinstance(c, list))
    plan = next(iter(step._plans.values()))
    states = step.trainer._states
    flat, tree = jax.tree_util.tree_flatten([states[i] for i in plan.indices])
    n = len(plan.indices)
    donated = [v._data for v in plan.donated_nds] + [g._data for g in plan.grad_nds] + [flat]
    kept = ([v._data for v in plan.kept_nds], [a._data for a in inputs] + [label._data], [],
            (np.zeros(n), np.zeros(n), np.float64(1.0), np.zeros(n, np.int64)),
            [(_random.next_key_parts()[0], 0)] * 2)
    with x64.scope():
        ma = plan.fns[tree].lower(donated, kept).compile().memory_analysis()
    ours = _report("compiled", ma)
    print(f"peak ratio to jax: {ours / ref:.2f}")


if __name__ == "__main__":
    main()
