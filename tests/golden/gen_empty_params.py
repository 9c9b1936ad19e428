"""Generate the golden files of parameter-free models and empty NDArray lists.

Run with Apache MXNet 1.9.1 (never imported by the tests)::

    /work/mxref/bin/python tests/golden/gen_empty_params.py

Writes into ``tests/golden/files/``:

* ``ndsave_empty_dict.nd`` -- ``mx.nd.save(f, {})``
* ``ndsave_empty_list.nd`` -- ``mx.nd.save(f, [])``
* ``paramfree-symbol.json`` / ``paramfree-0000.params`` -- ``HybridBlock.export`` of a
  net without parameters (Activation + Flatten), input ``data``
* ``paramfree.save_parameters.params`` -- ``save_parameters`` of that net

All four binary files are the same 32 bytes: list magic 0x112, reserved 0, zero
arrays, zero names; MXNet loads them back as ``[]``.
"""

from __future__ import annotations

import os

import mxnet as mx

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    mx.nd.save(os.path.join(OUT, "ndsave_empty_dict.nd"), {})
    mx.nd.save(os.path.join(OUT, "ndsave_empty_list.nd"), [])
    net = mx.gluon.nn.HybridSequential(prefix="paramfree_")
    with net.name_scope():
        net.add(mx.gluon.nn.Activation("relu"), mx.gluon.nn.Flatten())
    net.initialize()
    net.hybridize()
    net(mx.nd.ones((2, 3, 2)))
    net.export(os.path.join(OUT, "paramfree"))
    net.save_parameters(os.path.join(OUT, "paramfree.save_parameters.params"))
    for name in ("ndsave_empty_dict.nd", "ndsave_empty_list.nd", "paramfree-0000.params",
                 "paramfree.save_parameters.params"):
        path = os.path.join(OUT, name)
        assert mx.nd.load(path) == [], name
        print(name, open(path, "rb").read().hex())
    block = mx.gluon.SymbolBlock.imports(os.path.join(OUT, "paramfree-symbol.json"), ["data"],
                                         os.path.join(OUT, "paramfree-0000.params"))
    x = mx.nd.array([[[-1.0, 2.0], [3.0, -4.0], [0.5, -0.5]]])
    print(block(x).asnumpy().tolist())


if __name__ == "__main__":
    main()
