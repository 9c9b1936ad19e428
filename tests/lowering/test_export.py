"""StableHLO export: a self-contained artifact that runs without the model's Python code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hybrid as mx
from hybrid.gluon import nn
from lowering.export import ExportError, export_graph, load_stablehlo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mlp() -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation="relu"), nn.Dropout(0.5), nn.Dense(4),
            nn.Activation("tanh"))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


def _data(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randn(batch, 6).astype(np.float32)


def test_artifact_runs_in_a_fresh_process_for_two_batch_sizes(tmp_path):
    net = _mlp()
    net(mx.nd.array(_data(3)))
    path = str(tmp_path / "mlp.stablehlo")
    assert net.export_stablehlo(path) == path
    expected = {}
    for batch in (2, 7):
        x = _data(batch, seed=batch)
        np.save(tmp_path / f"x{batch}.npy", x)
        expected[batch] = net(mx.nd.array(x)).asnumpy()
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from lowering.export import load_stablehlo
        fn = load_stablehlo({path!r})
        for batch in (2, 7):
            out = np.asarray(fn(np.load({str(tmp_path)!r} + f"/x{{batch}}.npy")))
            np.save({str(tmp_path)!r} + f"/y{{batch}}.npy", out)
        assert not [m for m in sys.modules if m == "hybrid" or m.startswith("hybrid.")]
        assert "lowering.ops" not in sys.modules
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for batch in (2, 7):
        np.testing.assert_allclose(np.load(tmp_path / f"y{batch}.npy"), expected[batch],
                                   rtol=1e-5, atol=1e-6)


def test_example_inputs_export_a_block_never_called(tmp_path):
    net = _mlp()
    x = _data(5)
    path = tmp_path / "fresh.stablehlo"
    net.export_stablehlo(path, example_inputs=mx.nd.array(x))
    fn = load_stablehlo(path)
    assert str(fn.exported.in_avals[0].shape[0]) == "batch"
    np.testing.assert_allclose(np.asarray(fn(x)), net(mx.nd.array(x)).asnumpy(), rtol=1e-5,
                               atol=1e-6)


def test_fixed_batch_artifact_refuses_other_batch_sizes(tmp_path):
    net = _mlp()
    net(mx.nd.array(_data(3)))
    path = tmp_path / "fixed.stablehlo"
    net.export_stablehlo(path, batch_dim_symbolic=False)
    fn = load_stablehlo(path)
    assert fn(_data(3)).shape == (3, 4)
    with pytest.raises(Exception, match="shape"):
        fn(_data(4))


def test_export_before_any_call_without_example_inputs_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="example_inputs"):
        _mlp().export_stablehlo(tmp_path / "none.stablehlo")
    assert os.listdir(tmp_path) == []


def test_multiple_inputs_and_outputs_and_no_temporary_files_left(tmp_path):
    a, b = mx.sym.var("a"), mx.sym.var("b")
    heads = mx.sym.Group([mx.sym.broadcast_add(a, b), mx.sym.relu(a) * 2.0])._heads
    exported = export_graph(heads, ["a", "b"], {}, {},
                            [((2, 3), np.float32), ((2, 3), np.float32)])
    from lowering.export import save_stablehlo

    save_stablehlo(tmp_path / "two.stablehlo", exported)
    assert os.listdir(tmp_path) == ["two.stablehlo"]
    x, y = _data(4)[:, :3], _data(4, seed=1)[:, :3]
    s, r = load_stablehlo(tmp_path / "two.stablehlo")(x, y)
    np.testing.assert_allclose(np.asarray(s), x + y, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(r), np.maximum(x, 0) * 2, rtol=1e-6)


def test_scalar_input_cannot_have_a_symbolic_batch():
    heads = mx.sym.relu(mx.sym.var("a"))._heads
    with pytest.raises(ExportError, match="scalar"):
        export_graph(heads, ["a"], {}, {}, [((), np.float32)])


def test_imported_mxnet_cnn_exports_with_batchnorm_statistics_baked_in(tmp_path):
    from tests import golden_cases

    case = golden_cases.case("lenet_bn_dropout")
    arrays = golden_cases.arrays("lenet_bn_dropout")
    block = mx.gluon.SymbolBlock.imports(
        str(golden_cases.file_path(case["call"]["symbol_file"])), ["data"],
        str(golden_cases.file_path(case["call"]["params_file"])))
    path = tmp_path / "lenet.stablehlo"
    block.export_stablehlo(path, example_inputs=mx.nd.array(arrays["data"]))
    fn = load_stablehlo(path)
    np.testing.assert_allclose(np.asarray(fn(arrays["data"])), arrays["out"], rtol=1e-4,
                               atol=1e-4)
    assert fn(np.concatenate([arrays["data"]] * 3)).shape == (6, 10)
