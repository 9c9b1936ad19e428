"""mx.recordio: dmlc RecordIO byte layout, .idx files, IRHeader packing, atomic writers."""

import os
import pickle
import struct

import numpy as np
import pytest

from hybrid import recordio

MAGIC = 0xCED7230A


def reference_record_bytes(payload: bytes) -> bytes:
    """One record encoded from the dmlc-core format description (independent of hybrid)."""
    out = b""
    start = 0
    chunks = []
    for i in range(0, len(payload) - len(payload) % 4, 4):
        if struct.unpack("<I", payload[i:i + 4])[0] == MAGIC:
            chunks.append(payload[start:i])
            start = i + 4
    chunks.append(payload[start:])
    for k, chunk in enumerate(chunks):
        if len(chunks) == 1:
            cflag = 0
        elif k == 0:
            cflag = 1
        elif k == len(chunks) - 1:
            cflag = 3
        else:
            cflag = 2
        out += struct.pack("<II", MAGIC, (cflag << 29) | len(chunk)) + chunk
    return out + b"\0" * (-len(payload) % 4)


PAYLOADS = [
    b"",
    b"a",
    b"abcd",
    b"hello world",
    struct.pack("<I", MAGIC) + b"xy",  # magic at offset 0
    b"abcd" + struct.pack("<I", MAGIC) + b"efgh" + struct.pack("<I", MAGIC) + b"z",
    b"ab" + struct.pack("<I", MAGIC) + b"cd",  # unaligned magic: not split
    bytes(range(256)) * 3,
]


def test_writer_output_matches_the_dmlc_layout_byte_for_byte(tmp_path):
    path = str(tmp_path / "a.rec")
    w = recordio.MXRecordIO(path, "w")
    for p in PAYLOADS:
        w.write(p)
    w.close()
    with open(path, "rb") as f:
        assert f.read() == b"".join(reference_record_bytes(p) for p in PAYLOADS)


def test_reader_reads_files_built_from_the_format_description(tmp_path):
    path = tmp_path / "b.rec"
    path.write_bytes(b"".join(reference_record_bytes(p) for p in PAYLOADS))
    r = recordio.MXRecordIO(str(path), "r")
    assert [r.read() for _ in PAYLOADS] == PAYLOADS
    assert r.read() is None
    r.reset()
    assert r.read() == PAYLOADS[0]
    r.close()


def test_reader_rejects_a_corrupt_file(tmp_path):
    path = tmp_path / "bad.rec"
    path.write_bytes(struct.pack("<II", 0x12345678, 4) + b"abcd")
    r = recordio.MXRecordIO(str(path), "r")
    with pytest.raises(ValueError, match="bad magic"):
        r.read()


def test_indexed_reader_uses_the_idx_offsets(tmp_path):
    rec, idx = tmp_path / "c.rec", tmp_path / "c.idx"
    blobs = [b"first", b"second record", b"3"]
    data, lines, pos = b"", "", 0
    for key, blob in zip((10, 20, 30), blobs):
        enc = reference_record_bytes(blob)
        lines += f"{key}\t{pos}\n"
        data += enc
        pos += len(enc)
    rec.write_bytes(data)
    idx.write_text(lines)
    r = recordio.MXIndexedRecordIO(str(idx), str(rec), "r")
    assert r.keys == [10, 20, 30]
    assert r.read_idx(30) == b"3"
    assert r.read_idx(10) == b"first"
    with pytest.raises(KeyError, match="not in index"):
        r.read_idx(99)


def test_indexed_writer_writes_key_tab_position_lines(tmp_path):
    rec, idx = str(tmp_path / "d.rec"), str(tmp_path / "d.idx")
    w = recordio.MXIndexedRecordIO(idx, rec, "w")
    for i in range(5):
        w.write_idx(i, f"record-{i}".encode() * (i + 1))
    w.close()
    positions = []
    with open(rec, "rb") as f:
        raw = f.read()
    off = 0
    for i in range(5):
        positions.append(off)
        off += len(reference_record_bytes(f"record-{i}".encode() * (i + 1)))
    with open(idx) as f:
        assert f.read() == "".join(f"{i}\t{p}\n" for i, p in enumerate(positions))
    assert off == len(raw)
    r = recordio.MXIndexedRecordIO(idx, rec, "r")
    assert r.read_idx(3) == b"record-3" * 4


def test_writer_publishes_files_only_on_close(tmp_path):
    rec, idx = str(tmp_path / "e.rec"), str(tmp_path / "e.idx")
    w = recordio.MXIndexedRecordIO(idx, rec, "w")
    w.write_idx(0, b"payload")
    assert not os.path.exists(rec) and not os.path.exists(idx)
    w.close()
    assert os.path.exists(rec) and os.path.exists(idx)
    with pytest.raises(RuntimeError):  # an exception inside `with` discards the output
        with recordio.MXIndexedRecordIO(str(tmp_path / "f.idx"), str(tmp_path / "f.rec"),
                                        "w") as w2:
            w2.write_idx(0, b"x")
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["e.idx", "e.rec"]


def test_reader_survives_pickling(tmp_path):
    rec, idx = str(tmp_path / "g.rec"), str(tmp_path / "g.idx")
    with recordio.MXIndexedRecordIO(idx, rec, "w") as w:
        w.write_idx(7, b"seven")
    r = recordio.MXIndexedRecordIO(idx, rec, "r")
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.read_idx(7) == b"seven"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(recordio.MXRecordIO(str(tmp_path / "h.rec"), "w"))


def test_invalid_flag_and_missing_file_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="Invalid flag"):
        recordio.MXRecordIO(str(tmp_path / "x.rec"), "a")
    with pytest.raises(OSError, match="cannot open"):
        recordio.MXRecordIO(str(tmp_path / "missing.rec"), "r")


def test_pack_unpack_scalar_label_uses_flag_zero():
    s = recordio.pack(recordio.IRHeader(0, 3.5, 42, 7), b"body")
    assert s[:24] == struct.pack("<IfQQ", 0, 3.5, 42, 7)
    header, body = recordio.unpack(s)
    assert header == (0, 3.5, 42, 7) and body == b"body"


def test_pack_unpack_array_label_stores_flag_floats_after_header():
    s = recordio.pack(recordio.IRHeader(0, [1.0, 2.0, 3.0], 1, 0), b"img")
    assert struct.unpack("<IfQQ", s[:24]) == (3, 0.0, 1, 0)
    assert np.frombuffer(s[24:36], np.float32).tolist() == [1.0, 2.0, 3.0]
    header, body = recordio.unpack(s)
    assert header.flag == 3 and header.label.tolist() == [1.0, 2.0, 3.0] and body == b"img"


def test_pack_img_unpack_img_round_trip_in_bgr_order():
    pytest.importorskip("PIL")
    img = np.zeros((6, 5, 3), dtype=np.uint8)
    img[..., 0] = 200  # blue in OpenCV's BGR order
    img[2:4, 1:3, 2] = 90
    s = recordio.pack_img(recordio.IRHeader(0, 1.0, 3, 0), img, img_fmt=".png")
    header, out = recordio.unpack_img(s)
    assert header.label == 1.0 and header.id == 3
    np.testing.assert_array_equal(out, img)
    _, gray = recordio.unpack_img(s, iscolor=0)
    assert gray.shape == (6, 5)
    jpg = recordio.pack_img((0, 2.0, 0, 0), img, quality=95, img_fmt=".jpg")
    _, dec = recordio.unpack_img(jpg, iscolor=1)
    assert dec.shape == (6, 5, 3) and abs(int(dec[0, 0, 0]) - 200) <= 8
