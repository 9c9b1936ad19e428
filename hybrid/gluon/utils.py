"""``gluon.utils``: data-parallel splitting, downloads, hashes, gradient clipping."""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
import warnings
from typing import Any

import numpy as np

__all__ = [
    "split_data",
    "split_and_load",
    "clip_global_norm",
    "check_sha1",
    "download",
    "replace_file",
    "shape_is_known",
]


def _nd():
    import hybrid.ndarray as nd  # noqa: PLC0415 - JAX is imported lazily

    return nd


def split_data(data: Any, num_slice: int, batch_axis: int = 0, even_split: bool = True) -> list:
    """Split an NDArray into ``num_slice`` slices along ``batch_axis`` (MXNet 1.9.1).

    With ``even_split=True`` the size along ``batch_axis`` must be a multiple of
    ``num_slice`` (else ValueError).  Otherwise the first ``size % num_slice`` slices
    get one element more than the others (``10 -> 4, 3, 3``); with fewer elements
    than slices the last slices are empty.
    """
    size = data.shape[batch_axis]
    if even_split and size % num_slice != 0:
        raise ValueError(
            f"data with shape {data.shape} cannot be evenly split into {num_slice} slices "
            f"along axis {batch_axis}. Use a batch size that's multiple of {num_slice} or set "
            "even_split=False to allow uneven partitioning of data."
        )
    each, extras = divmod(size, num_slice)
    points = np.cumsum([0] + [each + 1] * extras + [each] * (num_slice - extras)).tolist()
    bounds = list(zip(points[:-1], points[1:]))
    if batch_axis == 0:
        return [data[b:e] for b, e in bounds]
    if isinstance(data, np.ndarray):
        return [np.take(data, np.arange(b, e), axis=batch_axis) for b, e in bounds]
    nd = _nd()
    return [nd.slice_axis(data, axis=batch_axis, begin=b, end=e) for b, e in bounds]


def split_and_load(data: Any, ctx_list: list, batch_axis: int = 0,
                   even_split: bool = True) -> list:
    """Split ``data`` with :func:`split_data` and load slice ``i`` onto ``ctx_list[i]``.

    Anything but an NDArray (a numpy array, nested lists) is first converted with
    ``nd.array`` on ``ctx_list[0]`` (float32 as ``nd.array`` does).  With one context
    the whole array is returned in a list.
    """
    nd = _nd()
    if not isinstance(data, nd.NDArray):
        data = nd.array(data, ctx=ctx_list[0])
    if len(ctx_list) == 1:
        return [data.as_in_context(ctx_list[0])]
    slices = split_data(data, len(ctx_list), batch_axis, even_split)
    return [s.as_in_context(ctx) for s, ctx in zip(slices, ctx_list)]


def clip_global_norm(arrays: list, max_norm: float, check_isfinite: bool = True) -> Any:
    """Rescale NDArrays in place so that their joint L2 norm is at most ``max_norm``.

    Returns the total norm before clipping: a Python float if ``check_isfinite``
    (and warns when it is nan or inf), else a shape-(1,) NDArray (no host sync).
    """
    if len(arrays) == 0:
        raise ValueError("clip_global_norm: `arrays` must not be empty")
    import jax.numpy as jnp  # noqa: PLC0415

    nd = _nd()
    ctx = arrays[0].context
    total = jnp.sqrt(sum(jnp.sum(jnp.square(a._data.astype(jnp.float32))) for a in arrays))
    if check_isfinite:
        total_f = float(total)
        if not np.isfinite(total_f):
            warnings.warn(
                UserWarning("nan or inf is detected. Clipping results will be undefined."),
                stacklevel=2,
            )
    scale = jnp.minimum(max_norm / (total + 1e-8), 1.0)
    for arr in arrays:
        arr[:] = nd.NDArray(arr._data * scale.astype(arr._data.dtype), ctx=arr.context)
    if check_isfinite:
        return total_f
    return nd.NDArray(jnp.reshape(total, (1,)), ctx=ctx)


def check_sha1(filename: str, sha1_hash: str) -> bool:
    """Whether the SHA-1 of the file's content equals ``sha1_hash`` (hex string)."""
    sha1 = hashlib.sha1()
    with open(filename, "rb") as f:
        while True:
            data = f.read(1048576)
            if not data:
                break
            sha1.update(data)
    return sha1.hexdigest() == sha1_hash


def replace_file(src: str, dst: str) -> None:
    """Atomically move ``src`` over ``dst`` (same file system)."""
    os.replace(src, dst)


def shape_is_known(shape: Any) -> bool:
    """Whether every dimension of ``shape`` is known (MXNet 1.x: unknown is 0 or -1)."""
    if shape is None:
        return False
    for dim in shape:
        if dim is None or dim <= 0:
            return False
    return True


def _get_repo_url() -> str:
    default_repo = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
    repo_url = os.environ.get("MXNET_GLUON_REPO", default_repo)
    if not repo_url.endswith("/"):
        repo_url += "/"
    return repo_url


def _get_repo_file_url(namespace: str, filename: str) -> str:
    return f"{_get_repo_url()}{namespace}/{filename}"


def _http_get(url: str, verify_ssl: bool):
    """Yield the response body of ``url`` in chunks (``requests`` if installed, else urllib)."""
    try:
        import requests  # noqa: PLC0415
    except ImportError:
        requests = None
    if requests is not None:
        r = requests.get(url, stream=True, verify=verify_ssl, timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"Failed downloading url {url} (HTTP {r.status_code})")
        yield from (c for c in r.iter_content(chunk_size=1 << 16) if c)
        return
    import ssl  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    ctx = None if verify_ssl else ssl._create_unverified_context()  # noqa: S323
    with urllib.request.urlopen(url, timeout=60, context=ctx) as resp:  # noqa: S310
        status = getattr(resp, "status", 200)
        if status != 200:
            raise RuntimeError(f"Failed downloading url {url} (HTTP {status})")
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                break
            yield chunk


def download(url: str, path: str | None = None, overwrite: bool = False,
             sha1_hash: str | None = None, retries: int = 5, verify_ssl: bool = True) -> str:
    """Download ``url`` to ``path`` (a file, or a directory to put it in); return the file name.

    Skipped when the file exists (and matches ``sha1_hash`` if given) unless
    ``overwrite``.  The data is written to a temporary file that is renamed into
    place, so an interrupted download never leaves a partial file under the final
    name.  Retries ``retries`` times; the last error is raised with a message that
    names the URL and the destination (to fetch it by hand when offline).  Uses
    ``requests`` when installed, else ``urllib``.
    """
    if path is None:
        fname = url.split("/")[-1]
        if not fname:
            raise ValueError(
                "Can't construct file-name from this URL. Please set the `path` option manually."
            )
    else:
        path = os.path.expanduser(path)
        if os.path.isdir(path):
            fname = os.path.join(path, url.split("/")[-1])
        else:
            fname = path
    if retries < 0:
        raise ValueError(f"Number of retries should be at least 0, currently it's {retries}")
    if not verify_ssl:
        warnings.warn(
            "Unverified HTTPS request is being made (verify_ssl=False). "
            "Adding certificate verification is strongly advised.",
            stacklevel=2,
        )
    if not (overwrite or not os.path.exists(fname)
            or (sha1_hash and not check_sha1(fname, sha1_hash))):
        return fname

    dirname = os.path.dirname(os.path.abspath(os.path.expanduser(fname)))
    os.makedirs(dirname, exist_ok=True)
    attempts = retries + 1
    while attempts > 0:
        tmp = f"{fname}.{uuid.uuid4()}"
        try:
            print(f"Downloading {fname} from {url}...", file=sys.stderr)
            with open(tmp, "wb") as f:
                for chunk in _http_get(url, verify_ssl):
                    f.write(chunk)
            if sha1_hash and not check_sha1(tmp, sha1_hash):
                raise UserWarning(
                    f"File {fname} is downloaded but the content hash does not match. The repo "
                    "may be outdated or download may be incomplete. If the MXNET_GLUON_REPO is "
                    "overridden, consider switching to the default repo."
                )
            replace_file(tmp, fname)
            return fname
        except Exception as err:  # noqa: BLE001 - retried, then re-raised with context
            try:
                os.remove(tmp)
            except OSError:
                pass
            attempts -= 1
            if attempts <= 0 or isinstance(err, UserWarning):
                raise RuntimeError(
                    f"Failed to download {url} to {fname}: {type(err).__name__}: {err}. "
                    f"If this machine is offline, download the file elsewhere and put it at "
                    f"{fname}" + (f" (sha1 {sha1_hash})" if sha1_hash else "") + "."
                ) from err
            print(
                f"download failed due to {err!r}, retrying, {attempts} "
                f"attempt{'s' if attempts != 1 else ''} left",
                file=sys.stderr,
            )
    return fname  # pragma: no cover
