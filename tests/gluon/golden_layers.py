"""One runner for the golden ``layer`` and ``loss`` cases of MXNet 1.9.1.

``run_case(name, hybridize)`` builds the block the case names, loads its parameters,
records one forward in the case's mode (positional ``None`` holes kept), runs backward
with the case's head gradient and returns ``(spec, data, out, grads, aux_after)``.
``check_case`` compares with MXNet's data; ``check_agreement`` compares eager with
hybridized (1e-5 relative).
"""

from __future__ import annotations

import functools

import numpy as np

import hybrid as mx
from hybrid import autograd
from tests.compiled import compiled_somewhere
from tests.golden_cases import arrays, case


def resolve(api: str):
    """``gluon.nn.Dense`` -> ``mx.gluon.nn.Dense``."""
    obj = mx
    for part in api.split("."):
        obj = getattr(obj, part)
    return obj


def build(spec: dict):
    """The block of a case; ``{"children": [...]}`` kwargs build a container."""
    cls = resolve(spec["api"])
    kwargs = dict(spec["kwargs"])
    if "children" in kwargs:
        block = cls()
        with block.name_scope():
            for child in kwargs["children"]:
                block.add(resolve(child["api"])(**child["kwargs"]))
        return block
    return cls(**kwargs)


@functools.cache
def run_case(name: str, hybridize: bool):
    """``(spec, data, out, {grad key: grad}, {aux key: value})`` (computed once per mode)."""
    spec, data = case(name), arrays(name)
    block = build(spec)
    block.initialize()
    structural = block._collect_params_with_prefix()
    for pname, key in spec["params"].items():
        structural[pname].set_data(data[key])
    if hybridize:
        block.hybridize()
    inputs = {}
    for key in spec["inputs"]:
        x = mx.nd.array(data[key], dtype=data[key].dtype)
        if key in spec["grads"]:
            x.attach_grad()
        inputs[key] = x
    positional = (spec.get("call") or {}).get("positional") or spec["inputs"]
    with autograd.record(train_mode=spec["mode"] == "train"):
        out = block(*[None if key is None else inputs[key] for key in positional])
    if hybridize:
        assert compiled_somewhere(block), f"{name}: the hybridized call did not compile"
    grads = {}
    head = spec["head_grads"].get("out")
    if head is not None:
        out.backward(mx.nd.array(data[head], dtype=data[head].dtype))
        for key, gkey in spec["grads"].items():
            grad = inputs[key].grad if key in inputs else structural[key].grad()
            grads[gkey] = grad.asnumpy()
    aux = {akey: structural[pname].data().asnumpy()
           for pname, akey in spec.get("aux_after", {}).items()}
    return spec, data, out.asnumpy(), grads, aux


def check_case(name: str, hybridize: bool) -> list[str]:
    """Output (dtype, shape, values), every recorded gradient and aux state vs MXNet;
    returns the names of the golden arrays compared."""
    spec, data, out, grads, aux = run_case(name, hybridize)
    tol = {"atol": spec["atol"], "rtol": spec["rtol"]}
    expected = data[spec["outputs"][0]]
    assert out.dtype == expected.dtype
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **tol)
    assert set(grads) == (set(spec["grads"].values()) if spec["head_grads"] else set())
    for gkey, value in grads.items():
        np.testing.assert_allclose(value, data[gkey], err_msg=gkey, **tol)
    for akey, value in aux.items():
        np.testing.assert_allclose(value, data[akey], err_msg=akey, **tol)
    return [spec["outputs"][0], *grads, *aux]


def check_agreement(name: str) -> list[str]:
    """Eager and hybridized outputs, gradients and aux states agree to 1e-5 relative;
    returns what was compared ("output" and the gradient and aux names)."""
    _, _, out_e, grads_e, aux_e = run_case(name, False)
    _, _, out_h, grads_h, aux_h = run_case(name, True)
    np.testing.assert_allclose(out_h, out_e, rtol=1e-5, atol=1e-6)
    for key in grads_e:
        np.testing.assert_allclose(grads_h[key], grads_e[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    for key in aux_e:
        np.testing.assert_allclose(aux_h[key], aux_e[key], rtol=1e-5, atol=1e-6, err_msg=key)
    return ["output", *grads_e, *aux_e]
