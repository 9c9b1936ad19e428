"""Every ``kind == "op"`` golden case: ``mx.nd.<api>(*inputs, **kwargs)`` against MXNet 1.9.1.

Each case is run exactly as the reference was produced (see ``tests/golden/README.md``):
the inputs listed in ``grads`` get ``attach_grad()``, the call runs under
``autograd.record()``, ``backward`` uses the recorded head gradients, and outputs,
gradients and output dtypes are compared with the case's own tolerances. Every case
also runs through a hybridized ``HybridBlock`` calling the same api on ``F``.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid as mx
from hybrid import autograd, gluon
from tests.compiled import compiled_somewhere
from tests.golden_cases import arrays, cases

OP_CASES = cases("op")



def _resolve(api: str):
    """``nd.linalg.gemm2`` -> ``mx.nd.linalg.gemm2`` (attribute path under ``mx``)."""
    target = mx
    for part in api.split("."):
        target = getattr(target, part)
    return target


def _positional(entry: dict, data: dict) -> tuple[list, list]:
    """The call's positional inputs; ``call.positional`` may hold ``None`` holes."""
    keys = (entry.get("call") or {}).get("positional") or entry["inputs"]
    return [None if k is None else mx.nd.array(data[k], dtype=data[k].dtype) for k in keys], keys


class _CaseBlock(gluon.HybridBlock):
    """``hybrid_forward(F, *xs)`` calling the case's api on ``F`` (``nd`` or ``sym``)."""

    def __init__(self, api: str, kwargs: dict, holes: list[bool]):
        super().__init__()
        self._path = api.split(".")[1:]  # drop the leading "nd"
        self._kwargs = kwargs
        self._holes = holes

    def hybrid_forward(self, F, *xs):
        fn = F
        for part in self._path:
            fn = getattr(fn, part)
        it = iter(xs)
        args = [None if hole else next(it) for hole in self._holes]
        return fn(*args, **self._kwargs)


def _hybrid_call(entry: dict, keys: list):
    block = _CaseBlock(entry["api"], entry["kwargs"], [k is None for k in keys])
    block.hybridize()

    def call(*inputs):
        out = block(*[x for x in inputs if x is not None])
        assert compiled_somewhere(block), f"{entry['name']}: the hybridized call did not compile"
        return out

    return call


def _run_case(entry: dict, hybridize: bool = False):
    data = arrays(entry["name"])
    inputs, keys = _positional(entry, data)
    by_key = {k: x for k, x in zip(keys, inputs) if k is not None}
    for name in entry.get("grads", {}):
        by_key[name].attach_grad()
    if hybridize:
        call = _hybrid_call(entry, keys)
    else:
        fn = _resolve(entry["api"])

        def call(*xs):
            return fn(*xs, **entry["kwargs"])

    head_grads = entry.get("head_grads") or {}
    with autograd.record():
        out = call(*inputs)
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


@pytest.mark.parametrize("hybridize", [False, True], ids=["eager", "hybridized"])
@pytest.mark.parametrize("entry", OP_CASES, ids=[c["name"] for c in OP_CASES])
def test_op_case(entry, hybridize):
    """The case as recorded (eager ``nd`` call), and the same call inside a hybridized block."""
    name = entry["name"]
    data, outs, inputs = _run_case(entry, hybridize)
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
    assert not failures, "\n".join(failures)


def test_every_op_case_is_collected():
    assert len(OP_CASES) == 155
