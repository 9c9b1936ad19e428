"""Worker pools behind ``DataLoader(num_workers > 0)``.

Process workers
---------------
JAX does not survive ``fork``, so workers are fresh interpreters started with
``subprocess`` (no ``fork`` of the JAX-holding parent, no re-import of the user's
``__main__`` unless the pickled dataset refers to it).  A worker runs
``_worker_boot.py``, which registers light stand-ins for the ``hybrid`` and
``hybrid.gluon`` packages (their real ``__init__`` would import JAX; it is run
only if user code actually touches an attribute of them), so a worker imports
numpy and the data modules only.

* The dataset and ``batchify_fn`` are pickled once per pool.  NDArrays and
  ``jax.Array`` values inside them are pickled as numpy arrays; numpy arrays of
  1 MiB or more are written once to a file in ``/dev/shm`` that every worker maps
  copy-on-write (the file is unlinked as soon as all workers have mapped it).
* Each worker has a task pipe and a result pipe.  Batch ``i`` of an epoch goes to
  worker ``i % num_workers``.  Results are pickled with protocol 5; their numpy
  buffers travel out of band (no extra copy).  A reader thread in the main process
  drains the result pipes as soon as data arrives, so workers never wait for the
  training loop.
* A worker's exception is sent back with its traceback text and re-raised in the
  main process (same exception type when it can be pickled).  A worker that dies
  closes its result pipe; the main process notices at once and raises a
  ``RuntimeError`` naming the worker, its pid and exit status.  A worker that hangs
  raises ``multiprocessing.TimeoutError`` after ``timeout`` seconds.
* Workers exit when their task pipe closes: on ``shutdown()``, when the pool is
  garbage collected (``weakref.finalize``), at interpreter exit, and when the main
  process dies.  Workers ignore SIGINT, so Ctrl-C interrupts only the main process,
  which then shuts the pool down.

Thread workers (``thread_pool=True``) run the same tasks on daemon threads (as
MXNet's ``multiprocessing.pool.ThreadPool`` does), so an item that hangs raises
``multiprocessing.TimeoutError`` after ``timeout`` seconds and never keeps the
interpreter from exiting.
"""

from __future__ import annotations

import mmap
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time
import weakref
import zlib
from concurrent.futures import Future
from concurrent.futures import TimeoutError as _FutureTimeout
from multiprocessing import TimeoutError as MPTimeoutError
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as _mp_wait
from typing import Any

import numpy as np

from ...image._array import is_jax_array, is_ndarray, new_ndarray, to_numpy
from ._batching import fetch_batch, np_batchify  # noqa: F401 - re-exported for workers

_BOOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker_boot.py")
SHM_THRESHOLD = 1 << 20
_START_TIMEOUT = 120.0


# ---------------------------------------------------------------------------------------
# pickling helpers (also imported by the worker side)


def _identity(x: Any) -> Any:
    return x


def _attach_shared_array(path: str, dtype: str, shape: tuple) -> np.ndarray:
    """Map a numpy array written by :class:`DatasetPickler` (copy-on-write, writable)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return np.empty(shape, dtype=np.dtype(dtype))
        mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    return np.frombuffer(mm, dtype=np.dtype(dtype)).reshape(shape)


def _shm_dir() -> str | None:
    d = "/dev/shm"
    return d if os.path.isdir(d) and os.access(d, os.W_OK) else None


class DatasetPickler(pickle.Pickler):
    """Pickler for what is sent to workers: NDArrays become numpy, big arrays go to shm."""

    def __init__(self, file, shm_files: list[str]):
        super().__init__(file, protocol=5)
        self._shm_files = shm_files
        self._shm_dir = _shm_dir()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if (
                self._shm_dir is None
                or obj.nbytes < SHM_THRESHOLD
                or obj.dtype.hasobject
                or obj.dtype.fields is not None
                or type(obj) is not np.ndarray
            ):
                return NotImplemented
            try:
                st = os.statvfs(self._shm_dir)
                if st.f_bavail * st.f_frsize < obj.nbytes + (64 << 20):
                    return NotImplemented  # small /dev/shm (e.g. a container): send in-band
                fd, path = tempfile.mkstemp(prefix="hybrid-data-", dir=self._shm_dir)
            except OSError:
                return NotImplemented
            self._shm_files.append(path)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(memoryview(np.ascontiguousarray(obj)).cast("B"))
            except OSError:
                return NotImplemented  # the file is removed with the others on shutdown
            return _attach_shared_array, (path, obj.dtype.str, obj.shape)
        if is_ndarray(obj) or is_jax_array(obj):
            return _identity, (to_numpy(obj),)
        return NotImplemented


def _rebuild_ndarray(arr: np.ndarray) -> Any:
    """Main-process side of an NDArray produced by a user ``batchify_fn`` in a worker."""
    return new_ndarray(arr)


class ResultPickler(pickle.Pickler):
    """Pickler for worker results: NDArrays (if a worker made any) come back as NDArrays."""

    def reducer_override(self, obj: Any) -> Any:
        if is_ndarray(obj) or is_jax_array(obj):
            return _rebuild_ndarray, (to_numpy(obj),)
        return NotImplemented


def write_raw(fd: int, buf: Any) -> None:
    """Write all of ``buf`` to ``fd`` (payload buffers bypass Connection framing)."""
    mv = memoryview(buf).cast("B")
    while mv:
        n = os.write(fd, mv)
        mv = mv[n:]


def read_raw(fd: int, n: int) -> bytearray:
    """Read exactly ``n`` bytes from ``fd`` straight into a new writable buffer."""
    buf = bytearray(n)
    mv = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [mv[got:]])
        if k == 0:
            raise EOFError("worker result pipe closed in the middle of a batch")
        got += k
    return buf


class WorkerStartupError(RuntimeError):
    """A worker process could not unpickle the dataset or import what it needs."""


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in a worker."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def raise_worker_error(info: tuple, where: str) -> None:
    """Re-raise a worker's exception in the main process, with the worker traceback."""
    name, msg, tb, blob = info
    exc: BaseException | None = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:  # noqa: BLE001 - fall back to a RuntimeError below
            exc = None
    if not isinstance(exc, BaseException):
        exc = RuntimeError(f"{name}: {msg}")
    note = f"Caught {name} in {where}.\nOriginal traceback in the worker:\n{tb}"
    try:
        exc.add_note(note)
    except AttributeError:  # pragma: no cover - Python < 3.11
        pass
    raise exc from RemoteTraceback(tb)


_POOLS_STARTED = 0


def _seed_from_numpy_state(worker_id: int, pool_number: int) -> int:
    """A per-worker seed derived from (not drawn from) numpy's global RNG state.

    Deterministic after ``np.random.seed(s)`` (given the order in which pools start)
    without consuming numbers from the user's random stream; different for every
    worker and every pool.
    """
    state = np.random.get_state()
    key = np.asarray(state[1]).tobytes() + str(state[2]).encode() + str(pool_number).encode()
    return (zlib.crc32(key) + 7919 * (worker_id + 1)) % (2**31 - 1)


# ---------------------------------------------------------------------------------------
# process pool


class _PoolState:
    """Everything the reader thread and the finalizer need (no reference to the pool)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.results: dict[tuple, tuple] = {}
        self.epoch = 0
        self.live: set[int] = set()
        self.dead: dict[int, str] = {}
        self.closing = False
        self.procs: list[subprocess.Popen] = []
        self.task_conns: list[Connection] = []
        self.res_conns: list[Connection] = []
        self.shm_files: list[str] = []
        self.reader: threading.Thread | None = None


def _describe_exit(proc: subprocess.Popen) -> str:
    try:
        code = proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return "closed its result pipe but is still running"
    if code is None:
        return "exited"
    if code < 0:
        import signal  # noqa: PLC0415

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"was killed by signal {name}"
    return f"exited unexpectedly with exit code {code}"


def _reader_loop(state: _PoolState) -> None:
    conns = {c: i for i, c in enumerate(state.res_conns)}
    while conns and not state.closing:
        try:
            ready = _mp_wait(list(conns), timeout=0.2)
        except OSError:
            break
        for conn in ready:
            wid = conns[conn]
            try:
                header = conn.recv_bytes()
                tag, status, sizes = pickle.loads(header)
                data = conn.recv_bytes()
                bufs = [read_raw(conn.fileno(), n) for n in sizes]
            except (EOFError, OSError):
                del conns[conn]
                if state.closing:
                    continue
                why = _describe_exit(state.procs[wid])
                with state.cond:
                    state.dead[wid] = (
                        f"DataLoader worker {wid} (pid {state.procs[wid].pid}) {why}. "
                        "If the worker was killed by the OS (e.g. out of memory), reduce "
                        "num_workers or the batch size."
                    )
                    state.cond.notify_all()
                continue
            if tag[0] not in state.live:
                continue  # a result of an abandoned epoch
            try:
                payload = pickle.loads(data, buffers=bufs)
            except Exception as err:  # noqa: BLE001 - reported to the consumer
                import traceback  # noqa: PLC0415

                status = "err"
                payload = (type(err).__name__, str(err), traceback.format_exc(), None)
            with state.cond:
                if tag[0] in state.live:
                    state.results[tag] = (status, payload, wid)
                    state.cond.notify_all()


def _shutdown_state(state: _PoolState) -> None:
    state.closing = True
    for c in state.task_conns:
        try:
            c.close()
        except OSError:
            pass
    if state.reader is not None and state.reader is not threading.current_thread():
        state.reader.join(timeout=2.0)
    for c in state.res_conns:
        try:
            c.close()
        except OSError:
            pass
    deadline = time.monotonic() + 1.0
    for p in state.procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    for p in state.procs:
        try:
            p.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass
    for path in state.shm_files:
        try:
            os.unlink(path)
        except OSError:
            pass
    state.shm_files.clear()
    with state.cond:
        state.results.clear()


def _stub_packages() -> list[tuple[str, str]]:
    """(name, directory) of the packages whose heavy __init__ workers must skip."""
    out = []
    for name in ("hybrid", "hybrid.gluon"):
        mod = sys.modules.get(name)
        path = list(getattr(mod, "__path__", []) or [])
        if path:
            out.append((name, path[0]))
    if not out:
        here = os.path.dirname(os.path.abspath(__file__))
        out = [("hybrid", os.path.dirname(os.path.dirname(here))),
               ("hybrid.gluon", os.path.dirname(here))]
    return out


def _preparation_data(needs_main: bool) -> dict:
    import multiprocessing.spawn as spawn  # noqa: PLC0415

    data = spawn.get_preparation_data("hybrid-dataloader-worker")
    keep = {"sys_path", "sys_argv", "dir", "orig_dir"}
    if needs_main:
        keep |= {"init_main_from_name", "init_main_from_path"}
    return {k: v for k, v in data.items() if k in keep}


def _grow_pipe(fd: int) -> None:
    """Enlarge a pipe's kernel buffer (Linux) so a batch crosses in few system calls."""
    try:
        import fcntl  # noqa: PLC0415

        setsz = getattr(fcntl, "F_SETPIPE_SZ", 1031)
        try:
            with open("/proc/sys/fs/pipe-max-size") as f:
                size = min(int(f.read()), 16 << 20)
        except (OSError, ValueError):
            size = 1 << 20
        fcntl.fcntl(fd, setsz, size)
    except (ImportError, OSError):
        pass


class ProcessPool:
    """``num_workers`` worker processes serving ``submit(tag, indices)`` / ``get(tag)``."""

    kind = "process"

    def __init__(self, num_workers: int, dataset: Any, batchify_fn: Any):
        import multiprocessing.process  # noqa: PLC0415

        from ...image._array import in_worker  # noqa: PLC0415

        if getattr(multiprocessing.process.current_process(), "_inheriting", False) or in_worker():
            raise RuntimeError(
                "A DataLoader tried to start worker processes while a worker was importing "
                "the main module. The main module of a program that uses "
                "DataLoader(num_workers > 0) with functions or classes defined in it must "
                "protect its entry point with  if __name__ == '__main__':"
            )
        self.num_workers = num_workers
        self.needs_main = False
        state = self._state = _PoolState()
        self._finalizer = weakref.finalize(self, _shutdown_state, state)
        blob_io = _BytesSink()
        pickler = DatasetPickler(blob_io, state.shm_files)
        try:
            pickler.dump((dataset, batchify_fn))
        except BaseException:
            self._finalizer()
            raise
        blob = blob_io.getvalue()
        needs_main = self.needs_main = b"__main__" in blob
        init = {
            "prep": _preparation_data(needs_main),
            "stubs": _stub_packages(),
        }
        self._next = 0
        self._owner_of: dict[tuple, int] = {}
        global _POOLS_STARTED
        _POOLS_STARTED += 1
        init["pool_number"] = _POOLS_STARTED
        try:
            for wid in range(num_workers):  # all interpreters boot in parallel...
                self._start_worker(wid, init)
            for task in state.task_conns:  # ...while the dataset is handed to each in turn
                try:
                    task.send_bytes(blob)
                except OSError:
                    pass  # that worker died while booting; _wait_ready reports why
            self._wait_ready()
        except BaseException:
            self._finalizer()
            raise
        for path in state.shm_files:  # every worker has mapped them
            try:
                os.unlink(path)
            except OSError:
                pass
        state.shm_files.clear()
        state.reader = threading.Thread(target=_reader_loop, args=(state,), daemon=True,
                                         name="hybrid-dataloader-reader")
        state.reader.start()

    def _start_worker(self, wid: int, init: dict) -> None:
        state = self._state
        task_r, task_w = os.pipe()
        res_r, res_w = os.pipe()
        _grow_pipe(res_w)
        _grow_pipe(task_w)
        try:
            proc = subprocess.Popen(
                [sys.executable, _BOOT, str(task_r), str(res_w)],
                pass_fds=(task_r, res_w),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            os.close(task_r)
            os.close(res_w)
        state.procs.append(proc)
        task = Connection(task_w, readable=False)
        res = Connection(res_r, writable=False)
        state.task_conns.append(task)
        state.res_conns.append(res)
        msg = dict(init, wid=wid, seed=_seed_from_numpy_state(wid, init["pool_number"]))
        task.send_bytes(pickle.dumps(msg, protocol=5))

    def _wait_ready(self) -> None:
        state = self._state
        pending = {c: i for i, c in enumerate(state.res_conns)}
        deadline = time.monotonic() + _START_TIMEOUT
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"DataLoader workers {sorted(pending.values())} did not start within "
                    f"{_START_TIMEOUT:.0f} s"
                )
            for conn in _mp_wait(list(pending), timeout=remaining):
                wid = pending.pop(conn)
                try:
                    status, payload = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    why = _describe_exit(state.procs[wid])
                    raise RuntimeError(
                        f"DataLoader worker {wid} (pid {state.procs[wid].pid}) {why} while "
                        "starting up (see its stderr above)."
                    ) from None
                if status == "err":
                    try:
                        raise_worker_error(
                            payload, f"DataLoader worker {wid} (pid {state.procs[wid].pid}) "
                            "while starting up"
                        )
                    except Exception as err:
                        raise WorkerStartupError(
                            f"DataLoader worker {wid} failed to start: "
                            f"{type(err).__name__}: {err}"
                        ) from err

    # -- used by the iterator --------------------------------------------------------
    @property
    def broken(self) -> bool:
        """True once a worker died or the pool was shut down (the loader makes a new one)."""
        return bool(self._state.dead) or self._state.closing

    def new_epoch(self) -> int:
        """Open a new epoch (an iterator); several may be live at once."""
        state = self._state
        with state.cond:
            state.epoch += 1
            state.live.add(state.epoch)
            return state.epoch

    def end_epoch(self, epoch: int) -> None:
        """Close an epoch: its results still in flight are dropped when they arrive."""
        state = self._state
        with state.cond:
            state.live.discard(epoch)
            for tag in [t for t in state.results if t[0] == epoch]:
                del state.results[tag]
        for tag in [t for t in self._owner_of if t[0] == epoch]:
            self._owner_of.pop(tag, None)

    def submit(self, tag: tuple, indices: Any) -> None:
        """Send the batch ``indices`` (identified by ``tag``) to the next worker in turn."""
        state = self._state
        wid = self._next % self.num_workers
        self._next += 1
        try:
            indices = [int(i) for i in indices]
        except (TypeError, ValueError):
            indices = list(indices)
        try:
            state.task_conns[wid].send_bytes(pickle.dumps((tag, indices), protocol=5))
        except (OSError, ValueError):
            with state.cond:
                if wid not in state.dead:
                    state.dead[wid] = (
                        f"DataLoader worker {wid} (pid {state.procs[wid].pid}) "
                        f"{_describe_exit(state.procs[wid])}."
                    )
                state.results[tag] = ("dead", wid, wid)
                state.cond.notify_all()
            return
        self._owner_of[tag] = wid

    def ready(self, tag: tuple) -> bool:
        """Whether the result for ``tag`` has arrived."""
        return tag in self._state.results

    def get(self, tag: tuple, timeout: float) -> Any:
        """The batch for ``tag``; re-raises worker errors, reports dead or hung workers."""
        state = self._state
        wid = self._owner_of.pop(tag, None)
        deadline = time.monotonic() + timeout
        with state.cond:
            while tag not in state.results:
                if wid is not None and wid in state.dead:
                    raise RuntimeError(state.dead[wid])
                if state.closing:
                    raise RuntimeError("the DataLoader's worker pool was shut down")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MPTimeoutError(
                        f"Worker timed out after {timeout} seconds. This might be caused by "
                        "a slow transform or dataset: increase `timeout` to allow slower "
                        "data loading in each worker."
                    )
                state.cond.wait(min(remaining, 0.5))
            status, payload, owner = state.results.pop(tag)
        if status == "ok":
            return payload
        if status == "dead":
            raise RuntimeError(state.dead.get(payload, f"DataLoader worker {payload} died"))
        raise_worker_error(
            payload, f"DataLoader worker process {owner} (pid {state.procs[owner].pid})"
        )
        return None  # pragma: no cover

    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [p.pid for p in self._state.procs]

    def shutdown(self) -> None:
        """Stop the workers (idempotent; also run on garbage collection and at exit)."""
        self._finalizer()


class _BytesSink:
    """Minimal binary file for the pickler (avoids io.BytesIO's extra copy on getvalue)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, b) -> int:
        mv = memoryview(b)
        self._parts.append(mv.tobytes())
        return mv.nbytes

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


# ---------------------------------------------------------------------------------------
# thread pool


def _thread_worker(tasks: queue.SimpleQueue) -> None:
    while True:
        item = tasks.get()
        if item is None:
            return
        fut, fn, args = item
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            fut.set_exception(exc)
        else:
            fut.set_result(result)
        del item, fut, fn, args  # drop references to the batch while idle


class ThreadPool:
    """Same interface as :class:`ProcessPool`, on daemon threads (``thread_pool=True``).

    Daemon threads, unlike ``concurrent.futures``' workers, are not joined at
    interpreter exit, so a dataset item that never returns cannot hang the exit.
    """

    kind = "thread"

    def __init__(self, num_workers: int, dataset: Any, batchify_fn: Any):
        self.num_workers = num_workers
        self._dataset = dataset
        self._batchify = batchify_fn
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=_thread_worker, args=(self._tasks,), daemon=True,
                             name=f"hybrid-dataloader-{i}")
            for i in range(num_workers)
        ]
        for t in self._threads:
            t.start()
        self._futures: dict[tuple, Future] = {}
        self._epoch = 0
        self._closed = False

    @property
    def broken(self) -> bool:
        return self._closed

    def _work(self, indices: Any) -> Any:
        if self._batchify is None:
            return fetch_batch(self._dataset, indices)
        return self._batchify([self._dataset[i] for i in indices])

    def new_epoch(self) -> int:
        """Open a new epoch (an iterator); several may be live at once."""
        self._epoch += 1
        return self._epoch

    def end_epoch(self, epoch: int) -> None:
        """Cancel the work still queued for ``epoch``."""
        for tag in [t for t in self._futures if t[0] == epoch]:
            self._futures.pop(tag).cancel()

    def submit(self, tag: tuple, indices: Any) -> None:
        fut: Future = Future()
        self._futures[tag] = fut
        self._tasks.put((fut, self._work, (list(indices),)))

    def ready(self, tag: tuple) -> bool:
        f = self._futures.get(tag)
        return f is not None and f.done()

    def get(self, tag: tuple, timeout: float) -> Any:
        fut = self._futures.pop(tag)
        try:
            return fut.result(timeout)
        except _FutureTimeout:
            fut.cancel()
            raise MPTimeoutError(
                f"Worker timed out after {timeout} seconds. This might be caused by a slow "
                "transform or dataset: increase `timeout` to allow slower data loading."
            ) from None

    def pids(self) -> list[int]:
        return []

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            for fut in self._futures.values():
                fut.cancel()
            self._futures.clear()
            for _ in self._threads:
                self._tasks.put(None)

    def __del__(self):
        self.shutdown()
