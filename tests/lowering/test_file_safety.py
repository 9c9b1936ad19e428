"""Saved files: no temporary file survives a killed writer, symlinks are replaced (never
written through), damaged StableHLO artifacts and ``.params`` files are refused whole, and
parameter-free models (MXNet's empty ``.params``) load."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import hybrid as mx
from hybrid import gluon, nd
from hybrid.gluon import nn
from lowering import serialization
from lowering.export import ArtifactError, export_graph, load_stablehlo, save_stablehlo
from lowering.serialization import NDArrayFileError, write_atomic
from lowering.serialization.atomic import TEMP_SUFFIX, temp_name_pattern

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "files"
EMPTY_FILES = ["ndsave_empty_dict.nd", "ndsave_empty_list.nd", "paramfree-0000.params",
               "paramfree.save_parameters.params"]

# The writer processes load atomic.py alone (stdlib only), so they start in milliseconds.
_IMPORT_WRITER = textwrap.dedent(f"""
    import importlib.util
    _spec = importlib.util.spec_from_file_location(
        "atomic", {str(ROOT / "lowering" / "serialization" / "atomic.py")!r})
    _atomic = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_atomic)
    write_atomic = _atomic.write_atomic
""")
_LEAVE_LEFTOVERS = _IMPORT_WRITER + textwrap.dedent("""
    import os, sys
    os.replace = lambda *a: (_ for _ in ()).throw(RuntimeError("killed"))
    os.unlink = lambda *a: None  # as if the process died before it could clean up
    for path in sys.argv[1:]:
        try:
            write_atomic(path, b"partial " * 100)
        except RuntimeError:
            pass
""")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _leave_leftovers(*targets: Path) -> None:
    """Leave one temporary file per target, written by a process that is gone."""
    result = _run(_LEAVE_LEFTOVERS, *map(str, targets))
    assert result.returncode == 0, result.stderr
    for target in targets:
        assert _leftovers(target), target


def _leftovers(target: Path) -> list[str]:
    pattern = temp_name_pattern(target.name)
    return [n for n in os.listdir(target.parent) if pattern.fullmatch(n)]


def _temp_files(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.endswith(TEMP_SUFFIX)]


# --------------------------------------------------------------------------- killed writers


@pytest.mark.parametrize("kills", [1, 3])
def test_writer_killed_mid_write_leaves_nothing_after_the_next_save(tmp_path, kills):
    target = tmp_path / "model.params"
    target.write_bytes(b"old")
    script = _IMPORT_WRITER + textwrap.dedent("""
        import os, sys
        os.fsync = lambda fd: os._exit(3)  # killed after the bytes were written
        write_atomic(sys.argv[1], b"new bytes" * 1000)
    """)
    for _ in range(kills):
        assert _run(script, str(target)).returncode == 3
    assert len(_leftovers(target)) == 1  # each writer first removed its predecessor's
    assert target.read_bytes() == b"old"
    write_atomic(target, b"fresh")
    assert sorted(os.listdir(tmp_path)) == ["model.params"]
    assert target.read_bytes() == b"fresh"


def _net() -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Dense(3, in_units=4), nn.BatchNorm(in_channels=3))
    net.initialize()
    net.hybridize()
    net(nd.ones((2, 4)))
    return net


def test_every_saver_removes_leftovers_of_killed_writers(tmp_path):
    net = _net()
    trainer = gluon.Trainer(net.collect_params(), "adam")
    symbol = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    savers = {
        "net.params": lambda p: net.save_parameters(str(p)),
        "nd.nd": lambda p: nd.save(str(p), {"a": nd.ones(2)}),
        "trainer.states": lambda p: trainer.save_states(str(p)),
        "sym.json": lambda p: symbol.save(str(p)),
    }
    targets = [tmp_path / n for n in savers] + [tmp_path / "m-symbol.json",
                                                tmp_path / "m-0000.params"]
    _leave_leftovers(*targets)
    for name, save in savers.items():
        save(tmp_path / name)
    net.export(str(tmp_path / "m"))
    assert _temp_files(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == sorted(t.name for t in targets)


def test_leftovers_of_other_targets_and_lookalikes_are_untouched(tmp_path):
    target = tmp_path / "a.params"
    other = tmp_path / "b.params"
    _leave_leftovers(other)
    lookalikes = [".a.params.tmp", ".a.params.123.zz.hybrid-tmp", "a.params.1.abcdefabcdef"
                  ".hybrid-tmp", ".a.params.x.abcdefabcdef.hybrid-tmp"]
    for name in lookalikes:
        (tmp_path / name).write_bytes(b"keep")
    write_atomic(target, b"1")
    assert len(_leftovers(other)) == 1
    assert all((tmp_path / n).read_bytes() == b"keep" for n in lookalikes)


def test_a_live_writers_temporary_file_is_never_removed(tmp_path):
    target = tmp_path / "w.params"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".w.params.{sleeper.pid}.0123456789ab{TEMP_SUFFIX}"
        live.write_bytes(b"being written")
        write_atomic(target, b"1")
        assert live.exists()  # its writer process is alive
    finally:
        sleeper.kill()
        sleeper.wait()
    write_atomic(target, b"2")
    assert not live.exists()  # its writer is gone and holds no lock


def test_a_locked_temporary_file_is_kept_even_if_its_pid_is_unknown(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    target = tmp_path / "w.params"
    _leave_leftovers(target)
    (name,) = _leftovers(target)
    with open(tmp_path / name, "rb") as held:  # e.g. a writer on another host
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        write_atomic(target, b"1")
        assert (tmp_path / name).exists()
    write_atomic(target, b"2")
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("length", [1, 200, 250])
def test_long_target_names_get_cleanable_temporary_names(tmp_path, length):
    target = tmp_path / ("n" * (length - len(".params")) + ".params"
                         if length > 10 else "n")
    _leave_leftovers(target)
    write_atomic(target, b"ok")
    assert os.listdir(tmp_path) == [target.name] and target.read_bytes() == b"ok"


# --------------------------------------------------------------------------- symlinks


def _symlinked(tmp_path: Path, name: str, dangling: bool = False) -> tuple[Path, Path]:
    pointee = tmp_path / "elsewhere" / name
    pointee.parent.mkdir(exist_ok=True)
    if not dangling:
        pointee.write_bytes(b"pointee contents")
    link = tmp_path / name
    link.symlink_to(pointee)
    return link, pointee


@pytest.mark.parametrize("dangling", [False, True])
def test_export_replaces_symlinks_at_its_targets_and_leaves_pointees(tmp_path, dangling):
    net = _net()
    links = [_symlinked(tmp_path, n, dangling) for n in ("m-symbol.json", "m-0000.params")]
    net.export(str(tmp_path / "m"))
    for link, pointee in links:
        assert not link.is_symlink() and link.is_file()
        assert pointee.exists() != dangling
        if not dangling:
            assert pointee.read_bytes() == b"pointee contents"
    block = gluon.SymbolBlock.imports(str(links[0][0]), ["data"], str(links[1][0]))
    np.testing.assert_allclose(block(nd.ones((2, 4))).asnumpy(), net(nd.ones((2, 4))).asnumpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("saver", ["save_parameters", "nd.save", "Symbol.save", "stablehlo"])
def test_other_savers_replace_symlinks_too(tmp_path, saver):
    link, pointee = _symlinked(tmp_path, "target")
    if saver == "save_parameters":
        _net().save_parameters(str(link))
    elif saver == "nd.save":
        nd.save(str(link), [nd.ones(3)])
    elif saver == "Symbol.save":
        mx.sym.var("x").save(str(link))
    else:
        _net().export_stablehlo(str(link))
    assert not link.is_symlink() and link.stat().st_size > 0
    assert pointee.read_bytes() == b"pointee contents"


# --------------------------------------------------------------------------- StableHLO


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    net = nn.HybridSequential()
    net.add(nn.Dense(5, activation="tanh", in_units=3))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = np.random.RandomState(1).randn(4, 3).astype(np.float32)
    expected = net(nd.array(x)).asnumpy()
    path = tmp_path_factory.mktemp("hlo") / "net.stablehlo"
    net.export_stablehlo(str(path))
    return path, x, expected


def test_stablehlo_artifact_round_trips_with_its_checksum(artifact):
    path, x, expected = artifact
    assert path.read_bytes()[:8] == b"HYBRIDHL"
    np.testing.assert_allclose(np.asarray(load_stablehlo(path)(x)), expected, rtol=1e-5)


def _damaged(tmp_path: Path, blob: bytes) -> Path:
    bad = tmp_path / "bad.stablehlo"
    bad.write_bytes(blob)
    return bad


@pytest.mark.parametrize("keep", [0, 7, 30, 52, 60, -1])
def test_truncated_stablehlo_artifact_is_refused_naming_the_file(tmp_path, artifact, keep):
    blob = artifact[0].read_bytes()
    bad = _damaged(tmp_path, blob[:keep] if keep >= 0 else blob[:len(blob) // 2])
    with pytest.raises(ArtifactError, match=str(bad)):
        load_stablehlo(bad)


@pytest.mark.parametrize("seed", range(6))
def test_flipped_byte_in_stablehlo_artifact_is_refused(tmp_path, artifact, seed):
    blob = bytearray(artifact[0].read_bytes())
    rng = np.random.RandomState(seed)
    where = int(rng.randint(len(blob))) if seed else 20  # seed 0 hits the length field
    blob[where] ^= 1 << int(rng.randint(8))
    bad = _damaged(tmp_path, bytes(blob))
    with pytest.raises(ArtifactError, match=str(bad)):
        load_stablehlo(bad)


def test_extended_or_headerless_stablehlo_file_is_refused(tmp_path, artifact):
    blob = artifact[0].read_bytes()
    with pytest.raises(ArtifactError, match="payload bytes"):
        load_stablehlo(_damaged(tmp_path, blob + b"\0"))
    with pytest.raises(ArtifactError, match="not a StableHLO artifact"):
        load_stablehlo(_damaged(tmp_path, blob[52:]))  # raw jax serialization
    bumped = struct.pack("<I", 99)
    with pytest.raises(ArtifactError, match="version 99"):
        load_stablehlo(_damaged(tmp_path, blob[:8] + bumped + blob[12:]))


def test_save_stablehlo_writes_header_for_export_graph(tmp_path):
    heads = mx.sym.relu(mx.sym.var("x"))._heads
    exported = export_graph(heads, ["x"], {}, {}, [((2, 3), np.float32)])
    save_stablehlo(tmp_path / "relu.hlo", exported)
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(np.asarray(load_stablehlo(tmp_path / "relu.hlo")(x)),
                                  np.maximum(x, 0))


# --------------------------------------------------------------------------- .params


@pytest.mark.parametrize("name", EMPTY_FILES)
def test_mxnet_empty_params_files_load_as_empty_lists(name):
    assert nd.load(str(GOLDEN / name)) == []
    assert serialization.loads((GOLDEN / name).read_bytes()) == []


@pytest.mark.parametrize("data", [{}, []])
def test_saving_nothing_writes_mxnets_bytes(tmp_path, data):
    nd.save(str(tmp_path / "e.nd"), data)
    assert (tmp_path / "e.nd").read_bytes() == (GOLDEN / "ndsave_empty_dict.nd").read_bytes()


def _paramfree() -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Activation("relu"), nn.Flatten())
    return net


@pytest.mark.parametrize("hybridize", [False, True])
def test_parameter_free_mxnet_model_imports_and_runs(hybridize):
    block = gluon.SymbolBlock.imports(str(GOLDEN / "paramfree-symbol.json"), ["data"],
                                      str(GOLDEN / "paramfree-0000.params"))
    if hybridize:
        block.hybridize()
    for shape in [(1, 3, 2), (4, 2, 5)]:
        x = np.random.RandomState(sum(shape)).randn(*shape).astype(np.float32)
        out = block(nd.array(x)).asnumpy()
        np.testing.assert_array_equal(out, np.maximum(x, 0).reshape(shape[0], -1))


def test_parameter_free_block_loads_mxnets_and_its_own_params(tmp_path):
    net = _paramfree()
    net.load_parameters(str(GOLDEN / "paramfree.save_parameters.params"))
    net.save_parameters(str(tmp_path / "own.params"))
    assert (tmp_path / "own.params").read_bytes() == \
        (GOLDEN / "paramfree.save_parameters.params").read_bytes()
    net.load_parameters(str(tmp_path / "own.params"))
    net.collect_params().load(str(tmp_path / "own.params"))


def test_empty_params_file_is_refused_for_a_block_with_parameters():
    net = nn.Dense(2, in_units=3)
    net.initialize()
    with pytest.raises(mx.MXNetError, match="missing"):
        net.load_parameters(str(GOLDEN / "paramfree.save_parameters.params"))


def _golden_params() -> bytes:
    return (GOLDEN / "lenet_bn_dropout.save_parameters.params").read_bytes()


def test_params_truncated_anywhere_is_refused_and_block_unchanged(tmp_path):
    blob = _golden_params()
    cuts = sorted({0, 8, 23, 24, 27, 40, len(blob) // 3, len(blob) - 1,
                   *np.random.RandomState(0).randint(1, len(blob), 24).tolist()})
    for cut in cuts:
        with pytest.raises(NDArrayFileError):
            serialization.loads(blob[:cut])
    net = nn.Dense(2, in_units=3)
    net.initialize()
    before = net.weight.data().asnumpy()
    (tmp_path / "cut.params").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(mx.MXNetError, match="cut.params"):
        net.load_parameters(str(tmp_path / "cut.params"))
    np.testing.assert_array_equal(net.weight.data().asnumpy(), before)


@pytest.mark.parametrize("seed", range(8))
def test_params_with_flipped_bytes_load_or_raise_ndarray_file_error(seed):
    blob = bytearray(_golden_params())
    rng = np.random.RandomState(seed)
    for where in rng.randint(0, 200, 3):  # the header and the first record's layout
        blob[where] ^= 1 << int(rng.randint(8))
    try:
        serialization.loads(bytes(blob))
    except NDArrayFileError:
        pass


def _header(n_arrays: int) -> bytes:
    return struct.pack("<QQQ", 0x112, 0, n_arrays)


BOGUS = {
    "huge array count": _header(2**62),
    "huge ndim": _header(1) + struct.pack("<Iii", 0xF993FAC9, 0, 2**31 - 1),
    "negative ndim": _header(1) + struct.pack("<Iii", 0xF993FAC9, 0, -5),
    "huge shape": _header(1) + struct.pack("<Iii2qiii", 0xF993FAC9, 0, 2, 2**40, 2**40,
                                           1, 0, 0),
    "huge zero-size shape": _header(1) + struct.pack("<Iii3qiii", 0xF993FAC9, 0, 3, 0,
                                                     2**62, 2**62, 1, 0, 0)
                            + struct.pack("<Q", 0),
    "huge name length": _header(0) + struct.pack("<QQ", 1, 2**60),
    "names count mismatch": _header(0) + struct.pack("<Q", 3),
}


@pytest.mark.parametrize("case", sorted(BOGUS))
def test_bogus_counts_and_shapes_fail_fast_without_allocating(case):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(NDArrayFileError):
            serialization.loads(BOGUS[case])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20 and time.perf_counter() - start < 1.0
