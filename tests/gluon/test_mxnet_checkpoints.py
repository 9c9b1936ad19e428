"""Checkpoints written by real MXNet 1.9.1 load into the equivalent Gluon network here."""

from __future__ import annotations

import numpy as np

import hybrid as mx
from hybrid import gluon, nd
from tests.golden_cases import arrays, case, file_path


def _lenet() -> gluon.nn.HybridSequential:
    net = gluon.nn.HybridSequential(prefix="lenet_")
    with net.name_scope():
        net.add(gluon.nn.Conv2D(6, 5, padding=2), gluon.nn.BatchNorm(),
                gluon.nn.Activation("relu"), gluon.nn.MaxPool2D(2, 2),
                gluon.nn.Conv2D(16, 5), gluon.nn.BatchNorm(), gluon.nn.Activation("relu"),
                gluon.nn.MaxPool2D(2, 2), gluon.nn.Flatten(),
                gluon.nn.Dense(120, activation="relu"), gluon.nn.Dropout(0.5),
                gluon.nn.Dense(84, activation="relu"), gluon.nn.Dense(10))
    return net


def test_mxnet_save_parameters_file_loads_by_structural_name_and_predicts_like_mxnet() -> None:
    saved = case("save_parameters_lenet")
    model = case("lenet_bn_dropout")
    net = _lenet()
    net.load_parameters(str(file_path(saved["files"][0])))
    structural = net._collect_params_with_prefix()
    assert sorted(structural) == sorted(saved["extra"]["structural_names"])
    exported = nd.load(str(file_path(model["call"]["params_file"])))
    for name, key in model["extra"]["structural_to_file_key"].items():
        np.testing.assert_array_equal(structural[name].data().asnumpy(),
                                      exported[key].asnumpy())
    data = arrays("lenet_bn_dropout")
    for hybridize in (False, True):
        net.hybridize(hybridize)
        out = net(nd.array(data["data"]))
        np.testing.assert_allclose(out.asnumpy(), data["out"], rtol=model["rtol"],
                                   atol=model["atol"])


def test_gluon_lenet_exports_byte_for_byte_the_symbol_json_mxnet_wrote(tmp_path) -> None:
    net = _lenet()
    net.initialize()
    net.hybridize()
    net(nd.ones((1, 1, 28, 28)))
    sym_file, _ = net.export(str(tmp_path / "lenet"))
    ours = mx.sym.load(sym_file)
    theirs = mx.sym.load(str(file_path(case("lenet_bn_dropout")["call"]["symbol_file"])))
    assert ours.list_arguments() == theirs.list_arguments()
    assert ours.list_auxiliary_states() == theirs.list_auxiliary_states()
    with open(sym_file, encoding="utf-8") as mine, \
            open(file_path(case("lenet_bn_dropout")["call"]["symbol_file"]),
                 encoding="utf-8") as reference:
        assert mine.read() == reference.read()
