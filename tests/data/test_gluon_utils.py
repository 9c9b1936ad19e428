"""gluon.utils: split_data/split_and_load, download (local server), sha1, clip_global_norm."""

import hashlib
import http.server
import os
import threading
import warnings

import numpy as np
import pytest

import hybrid as mx
from hybrid.gluon import utils


def test_split_data_even_and_uneven():
    x = mx.nd.array(np.arange(20).reshape(10, 2))
    parts = utils.split_data(x, 5)
    assert [p.shape for p in parts] == [(2, 2)] * 5
    with pytest.raises(ValueError, match="cannot be evenly split into 3 slices along axis 0"):
        utils.split_data(x, 3)
    uneven = utils.split_data(x, 3, even_split=False)
    assert [p.shape[0] for p in uneven] == [4, 3, 3]  # MXNet 1.9.1: the first ones get more
    np.testing.assert_array_equal(uneven[0].asnumpy(), np.arange(0, 8).reshape(4, 2))
    few = utils.split_data(mx.nd.array(np.arange(2)), 4, even_split=False)
    assert [p.shape for p in few] == [(1,), (1,), (0,), (0,)]


def test_split_data_along_another_axis():
    x = mx.nd.array(np.arange(24).reshape(2, 12))
    parts = utils.split_data(x, 4, batch_axis=1)
    assert [p.shape for p in parts] == [(2, 3)] * 4
    np.testing.assert_array_equal(parts[1].asnumpy(), np.arange(24).reshape(2, 12)[:, 3:6])


def test_split_and_load_places_slices_on_contexts():
    ctxs = [mx.cpu(0), mx.cpu(1)]
    out = utils.split_and_load(np.arange(8).reshape(4, 2), ctxs)
    assert [o.context for o in out] == ctxs
    assert out[0].dtype == np.float32 and out[1].shape == (2, 2)
    single = utils.split_and_load(mx.nd.array([1, 2, 3]), [mx.cpu(1)])
    assert len(single) == 1 and single[0].context == mx.cpu(1)


def test_clip_global_norm_scales_in_place_and_returns_the_norm():
    a = mx.nd.array([3.0, 0.0])
    b = mx.nd.array([[0.0, 4.0]])
    norm = utils.clip_global_norm([a, b], 1.0)
    assert isinstance(norm, float) and abs(norm - 5.0) < 1e-5
    np.testing.assert_allclose(a.asnumpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.asnumpy(), [[0.0, 0.8]], rtol=1e-5)
    c = mx.nd.array([0.3, 0.4])
    out = utils.clip_global_norm([c], 10.0, check_isfinite=False)
    assert isinstance(out, mx.nd.NDArray) and out.shape == (1,)
    np.testing.assert_allclose(c.asnumpy(), [0.3, 0.4], rtol=1e-6)  # below max: unchanged
    with pytest.warns(UserWarning, match="nan or inf"):
        utils.clip_global_norm([mx.nd.array([np.inf, 1.0])], 1.0)


@pytest.fixture
def file_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "data.bin").write_bytes(b"hybrid test payload" * 100)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


def test_download_from_a_local_server_checks_sha1(file_server, tmp_path):
    base, served = file_server
    payload = (served / "data.bin").read_bytes()
    sha1 = hashlib.sha1(payload).hexdigest()
    dest = tmp_path / "dl"
    dest.mkdir()
    fname = utils.download(f"{base}/data.bin", path=str(dest), sha1_hash=sha1)
    assert fname == str(dest / "data.bin") and (dest / "data.bin").read_bytes() == payload
    assert utils.check_sha1(fname, sha1) and not utils.check_sha1(fname, "0" * 40)
    (served / "data.bin").write_bytes(b"changed")
    assert utils.download(f"{base}/data.bin", path=str(dest), sha1_hash=sha1) == fname
    assert (dest / "data.bin").read_bytes() == payload  # existing valid file is kept
    with pytest.raises(RuntimeError, match="hash does not match"):
        utils.download(f"{base}/data.bin", path=str(dest / "other.bin"), sha1_hash=sha1)
    assert sorted(os.listdir(dest)) == ["data.bin"]  # no temporary files left behind


def test_download_failure_names_url_and_destination(file_server, tmp_path):
    base, _ = file_server
    with pytest.raises(RuntimeError) as info:
        utils.download(f"{base}/missing.bin", path=str(tmp_path / "x.bin"), retries=1)
    msg = str(info.value)
    assert f"{base}/missing.bin" in msg and str(tmp_path / "x.bin") in msg
    assert not (tmp_path / "x.bin").exists()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="retries should be at least 0"):
            utils.download(f"{base}/data.bin", path=str(tmp_path), retries=-1)


def test_shape_is_known():
    assert utils.shape_is_known((2, 3)) and not utils.shape_is_known((0, 3))
    assert not utils.shape_is_known(None)
