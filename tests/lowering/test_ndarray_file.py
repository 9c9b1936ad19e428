"""MXNet NDArray list files (``mx.nd.save`` / ``.params``): golden files and edge cases."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from lowering.serialization import ndarray_file
from lowering.serialization.ndarray_file import (
    NDARRAY_V1_MAGIC,
    NDARRAY_V2_MAGIC,
    NDARRAY_V3_MAGIC,
    TYPE_FLAGS,
    NDArrayFileError,
    dtype_to_type_flag,
    dumps,
    load,
    loads,
    save,
)
from tests.golden_cases import arrays, case, cases, file_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SAVE_PARAMETER_CASES = [
    "save_parameters_lenet",
    "save_parameters_lstm_lm",
    "save_parameters_gru_bidir",
]
MODEL_CASES = [c["name"] for c in cases("model")]
GOLDEN_FILES = sorted(
    {
        f
        for c in cases("format") + cases("model")
        for f in c.get("files", [])
        if f.endswith((".params", ".nd"))
    }
)
# The mshadow type flags of include/mshadow/base.h, spelled out independently of the module.
EXPECTED_FLAGS = {
    "float32": 0,
    "float64": 1,
    "float16": 2,
    "uint8": 3,
    "int32": 4,
    "int8": 5,
    "int64": 6,
    "bool": 7,
    "int16": 8,
    "uint16": 9,
    "uint32": 10,
    "uint64": 11,
    "bfloat16": 12,
}
ALL_DTYPES = [np.dtype(ml_dtypes.bfloat16) if n == "bfloat16" else np.dtype(n) for n in
              EXPECTED_FLAGS]


def golden_bytes(rel: str) -> bytes:
    return file_path(rel).read_bytes()


def assert_same_array(actual: np.ndarray, expected: np.ndarray) -> None:
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()


# ----------------------------------------------------------- hand-built records (spec side)

HEADER = struct.Struct("<QQQ")


def file_of(records: list[bytes], names: list[bytes] | None = None) -> bytes:
    names = names or []
    out = HEADER.pack(0x112, 0, len(records)) + b"".join(records)
    out += struct.pack("<Q", len(names))
    for name in names:
        out += struct.pack("<Q", len(name)) + name
    return out


def v2_record(arr: np.ndarray, magic: int = NDARRAY_V2_MAGIC, stype: int = 0,
              dev: tuple[int, int] = (1, 0), flag: int | None = None) -> bytes:
    flag = EXPECTED_FLAGS[str(arr.dtype)] if flag is None else flag
    shape = struct.pack(f"<i{arr.ndim}q", arr.ndim, *arr.shape)
    return (struct.pack("<Ii", magic, stype) + shape + struct.pack("<iii", *dev, flag)
            + arr.astype(arr.dtype.newbyteorder("<")).tobytes())


def v1_record(arr: np.ndarray) -> bytes:
    shape = struct.pack(f"<i{arr.ndim}q", arr.ndim, *arr.shape)
    return (struct.pack("<I", NDARRAY_V1_MAGIC) + shape
            + struct.pack("<iii", 1, 0, EXPECTED_FLAGS[str(arr.dtype)]) + arr.tobytes())


def legacy_record(arr: np.ndarray) -> bytes:
    shape = struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape)
    return shape + struct.pack("<iii", 1, 0, EXPECTED_FLAGS[str(arr.dtype)]) + arr.tobytes()


def row_sparse_record() -> bytes:
    # 4x2 float32 row_sparse with rows 1 and 3 stored: storage shape (2, 2), aux idx int64.
    return (struct.pack("<Ii", NDARRAY_V2_MAGIC, 1)
            + struct.pack("<i2q", 2, 2, 2)          # storage shape
            + struct.pack("<i2q", 2, 4, 2)          # shape
            + struct.pack("<iii", 1, 0, 0)          # cpu(0), float32
            + struct.pack("<ii1q", 6, 1, 2)         # aux type int64, aux shape (2,)
            + np.arange(4, dtype="<f4").tobytes()
            + np.array([1, 3], dtype="<i8").tobytes())


# ------------------------------------------------------------------------- golden files


def test_ndsave_list_file_loads_as_list_with_exact_dtypes_shapes_and_values():
    entry = case("ndsave_list")
    expected = arrays("ndsave_list")
    loaded = loads(golden_bytes(entry["files"][0]))
    assert isinstance(loaded, list)
    assert len(loaded) == len(entry["outputs"])
    for item, key, dtype in zip(loaded, entry["outputs"], entry["extra"]["dtypes"]):
        assert str(item.dtype) == dtype
        assert_same_array(item, expected[key])


def test_ndsave_dict_file_loads_as_dict_in_file_order():
    entry = case("ndsave_dict")
    expected = arrays("ndsave_dict")
    loaded = loads(golden_bytes(entry["files"][0]))
    assert isinstance(loaded, dict)
    assert list(loaded) == entry["extra"]["order_in_file_as_loaded"]
    for i, name in enumerate(entry["extra"]["names"]):
        assert str(loaded[name].dtype) == entry["extra"]["dtypes"][i]
        assert_same_array(loaded[name], expected[f"key{i}"])


@pytest.mark.parametrize("name", SAVE_PARAMETER_CASES)
def test_save_parameters_file_loads_to_recorded_parameters(name):
    entry = case(name)
    expected = arrays(name)
    loaded = load(file_path(entry["files"][0]))
    assert isinstance(loaded, dict)
    assert set(loaded) == set(entry["extra"]["structural_names"])
    for structural, npz_key in entry["params"].items():
        assert_same_array(loaded[structural], expected[npz_key])


@pytest.mark.parametrize("name", MODEL_CASES)
def test_exported_model_params_have_keys_and_shapes_of_params_in_file(name):
    entry = case(name)
    loaded = load(file_path(entry["call"]["params_file"]))
    expected = entry["extra"]["params_in_file"]
    assert list(loaded) == list(expected)
    for key, shape in expected.items():
        assert loaded[key].shape == tuple(shape)
        assert loaded[key].dtype == np.float32
        assert np.isfinite(loaded[key]).all()


@pytest.mark.parametrize("rel", GOLDEN_FILES)
def test_redumping_golden_file_reproduces_its_bytes(rel):
    raw = golden_bytes(rel)
    assert dumps(loads(raw)) == raw


@pytest.mark.parametrize("rel", GOLDEN_FILES)
def test_golden_file_saved_again_is_byte_identical(rel, tmp_path):
    raw = golden_bytes(rel)
    target = tmp_path / "copy.params"
    save(target, load(file_path(rel)))
    assert target.read_bytes() == raw


def test_golden_files_cover_every_format_and_model_case():
    assert len(GOLDEN_FILES) == 8
    assert {"files/ndsave_list.nd", "files/ndsave_dict.nd"} <= set(GOLDEN_FILES)


# ------------------------------------------------------------------------ writing layout


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_dumps_writes_v2_dense_cpu_record_with_mshadow_type_flag(dtype):
    arr = np.zeros((2, 3), dtype=dtype)
    raw = dumps([arr])
    assert struct.unpack_from("<QQQ", raw, 0) == (0x112, 0, 1)
    magic, stype, ndim, d0, d1, dev_type, dev_id, flag = struct.unpack_from("<Iii2qiii", raw, 24)
    assert (magic, stype, ndim, d0, d1) == (0xF993FAC9, 0, 2, 2, 3)
    assert (dev_type, dev_id) == (1, 0)
    assert flag == EXPECTED_FLAGS[str(dtype)] == dtype_to_type_flag(dtype)
    data_end = 24 + 40 + 6 * dtype.itemsize
    assert raw[data_end:] == struct.pack("<Q", 0)  # empty names vector
    assert len(raw) == data_end + 8


def test_dict_names_are_written_as_length_prefixed_utf8_in_insertion_order():
    raw = dumps({"zé": np.ones(1, np.float32), "a": np.ones(1, np.float32)})
    tail = struct.pack("<Q", 2) + struct.pack("<Q", 3) + "zé".encode() + struct.pack("<Q", 1)
    assert raw.endswith(tail + b"a")
    assert list(loads(raw)) == ["zé", "a"]


def test_type_flag_table_matches_mshadow():
    assert {str(dt): flag for flag, dt in TYPE_FLAGS.items()} == EXPECTED_FLAGS


@pytest.mark.parametrize("dtype", ["complex64", "float128", "U3", "O", "datetime64[s]"])
def test_dtypes_without_type_flag_are_refused(dtype):
    if not hasattr(np, dtype) and dtype == "float128":
        pytest.skip("no float128 on this platform")
    with pytest.raises(TypeError, match="no MXNet type flag"):
        dumps([np.zeros(2, dtype=dtype)])


def test_float8_is_refused():
    with pytest.raises(TypeError, match="array 0: dtype float8_e4m3fn has no MXNet type flag"):
        dumps([np.zeros(2, dtype=ml_dtypes.float8_e4m3fn)])


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (5,), (2, 3, 4), (1,) * 10 + (2,)],
                         ids=str)
def test_every_dtype_round_trips_including_zero_size_and_high_rank(dtype, shape):
    rng = np.random.default_rng(0)
    size = int(np.prod(shape))
    arr = np.frombuffer(rng.bytes(size * dtype.itemsize), dtype=dtype).reshape(shape)
    if dtype == np.bool_:
        arr = arr.view(np.uint8).__and__(1).view(np.bool_)
    raw = dumps([arr])
    assert struct.unpack_from("<I", raw, 24)[0] == NDARRAY_V2_MAGIC
    (back,) = loads(raw)
    assert_same_array(back, arr)
    assert back.flags.writeable and back.flags.c_contiguous and back.base is None


def test_32_dimensional_array_round_trips():
    arr = np.arange(4, dtype=np.float32).reshape((1,) * 30 + (2, 2))
    assert_same_array(loads(dumps({"deep": arr}))["deep"], arr)


@st.composite
def array_lists(draw):
    n = draw(st.integers(0, 4))
    out = []
    for _ in range(n):
        dtype = draw(st.sampled_from(ALL_DTYPES))
        shape = draw(array_shapes(min_dims=1, max_dims=6, min_side=0, max_side=4))
        size = int(np.prod(shape))
        data = draw(st.binary(min_size=size * dtype.itemsize, max_size=size * dtype.itemsize))
        out.append(np.frombuffer(data, dtype=dtype).reshape(shape))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=array_lists(), as_dict=st.booleans(), names=st.lists(st.text(), unique=True,
                                                                   min_size=4, max_size=4))
def test_arbitrary_arrays_round_trip_bit_exactly(items, as_dict, names):
    data = dict(zip(names, items)) if as_dict else items
    raw = dumps(data)
    back = loads(raw)
    if as_dict and items:
        assert isinstance(back, dict) and list(back) == names[: len(items)]
        values = list(back.values())
    else:
        assert isinstance(back, list)  # an empty dict comes back as [] (as in MXNet)
        values = back
    assert len(values) == len(items)
    for got, want in zip(values, items):
        assert_same_array(got, want)
    assert dumps(back) == raw


def test_zero_d_arrays_switch_the_whole_file_to_v3_records():
    data = {"scalar": np.array(2.5, np.float64), "vec": np.arange(3, dtype=np.int32)}
    raw = dumps(data)
    back = loads(raw)
    assert back["scalar"].shape == () and back["scalar"][()] == 2.5
    assert_same_array(back["vec"], data["vec"])
    magics = [struct.unpack_from("<I", raw, 24)[0]]
    # record 0: magic, stype, ndim 0 (no dims), context, type flag, 8 bytes of float64
    magics.append(struct.unpack_from("<I", raw, 24 + 12 + 12 + 8)[0])
    assert magics == [NDARRAY_V3_MAGIC, NDARRAY_V3_MAGIC]


def test_np_shape_true_writes_v3_and_false_refuses_zero_d():
    raw = dumps([np.ones(2, np.float32)], np_shape=True)
    assert struct.unpack_from("<I", raw, 24)[0] == NDARRAY_V3_MAGIC
    assert_same_array(loads(raw)[0], np.ones(2, np.float32))
    with pytest.raises(ValueError, match="0-d arrays need np-shape semantics"):
        dumps([np.float32(1)], np_shape=False)


def test_none_round_trips_as_v2_ndim_zero_record():
    arr = np.arange(3, dtype=np.int64)
    raw = dumps([None, arr])
    assert raw[24:36] == struct.pack("<IiI", NDARRAY_V2_MAGIC, 0, 0)
    back = loads(raw)
    assert back[0] is None
    assert_same_array(back[1], arr)
    assert dumps(back) == raw
    with pytest.raises(ValueError, match="None entries"):
        dumps([None, np.float32(1)])


def test_v3_record_with_unknown_dimension_is_a_none_array():
    rec = struct.pack("<Iii2q", NDARRAY_V3_MAGIC, 0, 2, 3, -1)  # record ends after the shape
    assert loads(file_of([rec, v2_record(np.ones(2, np.float32))]))[0] is None


def test_v1_and_legacy_records_load():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(4, dtype=np.int32)
    legacy_none = struct.pack("<I", 0)
    back = loads(file_of([v1_record(a), legacy_record(b), legacy_none], [b"a", b"b", b"c"]))
    assert_same_array(back["a"], a)
    assert_same_array(back["b"], b)
    assert back["c"] is None


def test_cpu_pinned_and_gpu_contexts_load_as_host_arrays():
    a = np.arange(3, dtype=np.float16)
    back = loads(file_of([v2_record(a, dev=(2, 1)), v2_record(a, dev=(3, 0))]))
    assert_same_array(back[0], a)
    assert_same_array(back[1], a)


# --------------------------------------------------------------------------- input forms


class FakeNDArray:
    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    def asnumpy(self) -> np.ndarray:
        return self.value


class ArrayInterface:
    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    def __array__(self, dtype=None, copy=None):
        return self.value


def test_objects_with_asnumpy_or_array_protocol_are_accepted():
    a = np.arange(4, dtype=np.float32)
    b = np.arange(6, dtype=np.uint8).reshape(2, 3)
    back = loads(dumps({"nd": FakeNDArray(a), "proto": ArrayInterface(b)}))
    assert_same_array(back["nd"], a)
    assert_same_array(back["proto"], b)


def test_single_array_and_tuple_are_saved_as_lists():
    a = np.arange(4, dtype=np.float32)
    assert dumps(a) == dumps([a]) == dumps((a,))
    assert dumps(FakeNDArray(a)) == dumps([a])


def test_non_contiguous_and_big_endian_arrays_are_written_c_order_little_endian():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    strided = base[::2, 1::2]
    fortran = np.asfortranarray(base)
    big = base.astype(">f8")
    expected = dumps([np.ascontiguousarray(strided), base, base])
    assert dumps([strided, fortran, big]) == expected


def test_non_str_names_and_non_array_values_are_refused():
    with pytest.raises(TypeError, match="names must be str"):
        dumps({1: np.zeros(1)})
    with pytest.raises(TypeError, match="array 1: expected a numpy array"):
        dumps([np.zeros(1), [1.0, 2.0]])
    with pytest.raises(TypeError, match="array 'w': expected a numpy array"):
        dumps({"w": object()})
    with pytest.raises(TypeError, match="data must be"):
        dumps(3.0)


# ---------------------------------------------------------------------------- corruption


def small_dict_file() -> bytes:
    return dumps({"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "b": np.arange(2, dtype=np.int64)})


@pytest.mark.parametrize("rel", ["files/ndsave_list.nd", "files/ndsave_dict.nd"])
def test_every_truncation_of_a_golden_file_is_refused(rel):
    raw = golden_bytes(rel)
    for cut in range(len(raw)):
        with pytest.raises(NDArrayFileError):
            loads(raw[:cut])


def test_truncated_data_message_names_record_dtype_and_missing_bytes():
    raw = small_dict_file()
    # record 1 is int64 data of 16 bytes that ends right before the names list
    names_at = len(raw) - (8 + 9 + 9)
    with pytest.raises(NDArrayFileError, match=re.escape(
            f"file ends at byte {names_at - 5} but record 1 needs 5 more bytes of int64 data")):
        loads(raw[: names_at - 5])


def test_wrong_list_magic_is_refused():
    raw = bytearray(small_dict_file())
    raw[0] = 0x13
    with pytest.raises(NDArrayFileError, match="expected NDArray list magic 0x112 at byte 0, "
                                               "found 0x113"):
        loads(bytes(raw))


def test_wrong_record_magic_is_refused_with_record_index():
    records = [v2_record(np.ones(2, np.float32)) for _ in range(4)]
    records[3] = struct.pack("<I", 0xDEADBEEF) + records[3][4:]
    with pytest.raises(NDArrayFileError, match=r"record 3: expected NDArray magic 0xF993FAC9 .*"
                                               r"found 0xDEADBEEF"):
        loads(file_of(records))


def test_trailing_bytes_are_refused():
    with pytest.raises(NDArrayFileError, match="trailing 7 bytes after the names list"):
        loads(small_dict_file() + b"\0" * 7)


def test_names_count_not_matching_arrays_is_refused():
    records = [v2_record(np.ones(1, np.float32)) for _ in range(4)]
    with pytest.raises(NDArrayFileError, match="names count 3 does not match 4 arrays"):
        loads(file_of(records, [b"a", b"b", b"c"]))


def test_unknown_type_flag_is_refused():
    raw = file_of([v2_record(np.ones(1, np.float32)), v2_record(np.ones(1, np.float32), flag=13)])
    with pytest.raises(NDArrayFileError, match="record 1: expected a type flag 0-12 .*found 13"):
        loads(raw)


@pytest.mark.parametrize("stype, name", [(1, "row_sparse"), (2, "csr")])
def test_sparse_records_are_refused(stype, name):
    rec = row_sparse_record()
    rec = rec[:4] + struct.pack("<i", stype) + rec[8:]
    raw = file_of([v2_record(np.ones(1, np.float32)), rec])
    message = rf"record 1 .*sparse storage type {stype} \({name}\) is not supported"
    with pytest.raises(NDArrayFileError, match=message):
        loads(raw)


def test_unknown_storage_type_device_and_negative_dims_are_refused():
    one = np.ones(1, np.float32)
    with pytest.raises(NDArrayFileError, match="expected storage type 0 .* found 7"):
        loads(file_of([v2_record(one, stype=7)]))
    with pytest.raises(NDArrayFileError, match="context dev_type .* found 4"):
        loads(file_of([v2_record(one, dev=(4, 0))]))
    with pytest.raises(NDArrayFileError, match="dev_id >= 0 .* found -1"):
        loads(file_of([v2_record(one, dev=(1, -1))]))
    bad_dim = struct.pack("<Iii1q", NDARRAY_V2_MAGIC, 0, 1, -3) + struct.pack("<iii", 1, 0, 0)
    with pytest.raises(NDArrayFileError, match="dimension 0 = -3"):
        loads(file_of([bad_dim]))
    unknown_ndim = struct.pack("<Iii", NDARRAY_V3_MAGIC, 0, -1)
    with pytest.raises(NDArrayFileError, match="ndim >= 0 .* found -1"):
        loads(file_of([unknown_ndim]))


def test_invalid_and_duplicate_names_are_refused():
    one = v2_record(np.ones(1, np.float32))
    with pytest.raises(NDArrayFileError, match="name 1 at byte .* expected UTF-8"):
        loads(file_of([one, one], [b"ok", b"\xff\xfe"]))
    with pytest.raises(NDArrayFileError, match="name 1 'w' duplicates"):
        loads(file_of([one, one], [b"w", b"w"]))


def test_absurd_counts_and_shapes_are_refused_without_allocating():
    with pytest.raises(NDArrayFileError, match="array count"):
        loads(HEADER.pack(0x112, 0, 2**62) + b"\0" * 8)
    ctx_and_flag = struct.pack("<iii", 1, 0, 0)
    huge = struct.pack("<Iii2q", NDARRAY_V2_MAGIC, 0, 2, 2**40, 2**40) + ctx_and_flag
    with pytest.raises(NDArrayFileError, match="record 0 needs .* more bytes of float32 data"):
        loads(file_of([huge]))
    zero_huge = struct.pack("<Iii2q", NDARRAY_V2_MAGIC, 0, 2, 0, 2**62) + ctx_and_flag
    with pytest.raises(NDArrayFileError, match="numpy cannot represent shape"):
        loads(file_of([zero_huge]))
    with pytest.raises(NDArrayFileError, match="more than numpy's limit"):
        loads(file_of([struct.pack("<Iii", NDARRAY_V2_MAGIC, 0, 10_000)]))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_corrupted_golden_bytes_either_load_fully_or_raise_ndarray_file_error(data):
    raw = bytearray(golden_bytes(data.draw(st.sampled_from(
        ["files/ndsave_list.nd", "files/ndsave_dict.nd"]))))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set":
            raw[pos] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw.insert(pos, data.draw(st.integers(0, 255)))
        else:
            del raw[pos]
    try:
        result = loads(bytes(raw))
    except NDArrayFileError:
        return
    values = result.values() if isinstance(result, dict) else result
    for value in values:
        assert value is None or isinstance(value, np.ndarray)


# ---------------------------------------------------------------------------------- files


def test_save_then_load_round_trips_and_leaves_only_the_target(tmp_path):
    data = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    target = tmp_path / "net.params"
    save(target, data)
    assert os.listdir(tmp_path) == ["net.params"]
    assert_same_array(load(target)["w"], data["w"])
    save(str(target), [np.zeros(1, np.int8)])  # overwrite in place
    assert os.listdir(tmp_path) == ["net.params"]
    assert_same_array(load(str(target))[0], np.zeros(1, np.int8))


def test_failed_save_of_unserialisable_object_keeps_target_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "net.params"
    target.write_bytes(b"previous contents")
    with pytest.raises(TypeError):
        save(target, [np.zeros(2, np.float32), object()])
    assert os.listdir(tmp_path) == ["net.params"]
    assert target.read_bytes() == b"previous contents"


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_io_failure_during_save_removes_temporary_and_keeps_target(tmp_path, monkeypatch, failing):
    target = tmp_path / "net.params"
    target.write_bytes(b"previous contents")

    def boom(*args, **kwargs):
        raise OSError(f"simulated {failing} failure")

    monkeypatch.setattr(ndarray_file.os, failing, boom)
    with pytest.raises(OSError, match="simulated"):
        save(target, [np.zeros(2, np.float32)])
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["net.params"]
    assert target.read_bytes() == b"previous contents"


def test_save_into_missing_directory_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "missing" / "x.params", [np.zeros(1)])
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and symlinks")
def test_save_keeps_permissions_and_replaces_symlinks(tmp_path):
    kept = tmp_path / "kept.params"
    kept.write_bytes(b"x")
    os.chmod(kept, 0o640)
    save(kept, [np.zeros(1, np.float32)])
    assert os.stat(kept).st_mode & 0o777 == 0o640
    real = tmp_path / "real.params"
    real.write_bytes(b"x")
    link = tmp_path / "link.params"
    link.symlink_to(real)
    save(link, [np.ones(2, np.float32)])
    assert not link.is_symlink()  # the link is replaced, never written through
    assert real.read_bytes() == b"x"
    assert_same_array(load(link)[0], np.ones(2, np.float32))
    assert sorted(os.listdir(tmp_path)) == ["kept.params", "link.params", "real.params"]


def test_load_error_message_names_the_file(tmp_path):
    target = tmp_path / "bad.params"
    target.write_bytes(small_dict_file()[:-3])
    with pytest.raises(NDArrayFileError, match=re.escape(str(target))):
        load(target)


def test_lowering_serialization_does_not_import_hybrid():
    code = ("import sys, lowering.serialization; "
            "assert not [m for m in sys.modules if m == 'hybrid' or m.startswith('hybrid.')]")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": REPO})
