"""``mx.kv``: MXNet's key-value store, for one process (``local``, ``device``).

A store keeps one value per key (an int or a string; one kind per store).
``push`` sums the values given for a key (one per device, in order) and, with an
optimizer (``set_optimizer``) or a custom updater, updates the stored value from the
sum; without one the sum replaces it. ``pull`` copies the stored value into every
output (each on its own context). ``pushpull`` is a push then a pull; ``broadcast``
an ``init`` then a pull.

``local`` keeps its values on the CPU, ``device`` on the context of the first value
given (MXNet reduces on a GPU there); the numbers are the same. Any other name without
``dist`` is a local store of that name, as in MXNet. ``dist_sync`` and
``dist_device_sync`` span several processes (:class:`DistKVStore`) through
``jax.distributed``. ``dist_async``, ``horovod``, ``p3``, gradient compression and
``row_sparse_pull`` are refused with an error: they are not implemented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from lowering import x64

from .base import MXNetError
from .context import Context, cpu
from .ndarray import NDArray

__all__ = ["DistKVStore", "KVStore", "KVStoreBase", "create"]


class KVStoreBase:
    """The capabilities a store can be asked for (MXNet's ``KVStoreBase``)."""

    OPTIMIZER = "optimizer"


def _pairs(key: Any, value: Any, what: str) -> list[tuple[Any, list]]:
    """``[(key, [values...])]`` from one key and a value (or a list of per-device values),
    or from a list of keys and a list of such values."""
    if isinstance(key, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(key):
            raise ValueError(f"kvstore.{what}: {len(key)} keys need a list of as many values")
        return [pair for k, v in zip(key, value) for pair in _pairs(k, v, what)]
    if not isinstance(key, (int, str)) or isinstance(key, bool):
        raise TypeError(f"kvstore.{what}: a key is an int or a str, got {type(key).__name__}")
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if not isinstance(v, NDArray):
            raise TypeError(f"kvstore.{what}: key {key!r} needs NDArray values, got "
                            f"{type(v).__name__}")
    if not values:
        raise ValueError(f"kvstore.{what}: key {key!r} has no value")
    return [(key, values)]


def _copy(value: jax.Array, ctx: Context) -> jax.Array:
    return jax.device_put(value, ctx.jax_device, may_alias=False)


class KVStore(KVStoreBase):
    """A single-process store (made by :func:`create`)."""

    def __init__(self, kind: str) -> None:
        self._type = kind
        self._store: dict[Any, NDArray] = {}
        self._key_type: type | None = None
        self._updater: Callable | None = None

    # ------------------------------------------------------------ properties
    @property
    def type(self) -> str:
        """The name it was created with (lower case)."""
        return self._type

    @property
    def rank(self) -> int:
        """This worker's rank: 0 (one process)."""
        return 0

    @property
    def num_workers(self) -> int:
        """The number of workers: 1 (one process)."""
        return 1

    def is_capable(self, capability: str) -> bool:
        """Whether the store supports ``capability`` (only ``'optimizer'`` is known)."""
        if capability.lower() == KVStoreBase.OPTIMIZER:
            return True
        raise ValueError(f"Unknown capability: {capability}")

    # -------------------------------------------------------------- values
    def _check_key_type(self, key: Any) -> None:
        kind = str if isinstance(key, str) else int
        if self._key_type is None:
            self._key_type = kind
        elif kind is not self._key_type:
            raise MXNetError(f"kvstore: key {key!r} is a {kind.__name__} but this store's keys "
                             f"are {self._key_type.__name__}s: mixed key types are not allowed")

    def _stored(self, key: Any, arrays: list, what: str) -> NDArray:
        """The stored value of ``key``, checked against the shapes of ``arrays``."""
        found = self._store.get(key)
        if found is None:
            raise MXNetError(f"kvstore: key {key!r} has not been inited (call init or "
                             "broadcast first)")
        for a in arrays:
            if a.shape != found.shape:
                raise MXNetError(f"kvstore.{what}: key {key!r} holds shape {found.shape}, "
                                 f"got an array of shape {a.shape}")
        return found

    @x64.scoped
    def init(self, key: Any, value: Any) -> None:
        """Store a copy of ``value`` under ``key`` (or of each value under each key).

        Raises:
            MXNetError: a key was inited before, or its type differs from the store's.
        """
        for k, values in _pairs(key, value, "init"):
            self._check_key_type(k)
            if k in self._store:
                raise MXNetError(f"kvstore: duplicate init of key {k!r}. Please double check "
                                 "if you called kv.init or kv.broadcast with this key "
                                 "multiple times")
            ctx = values[0].context if "device" in self._type or self._type == "nccl" \
                else cpu()
            self._store[k] = NDArray(_copy(values[0]._data, ctx), ctx=ctx)

    @x64.scoped
    def push(self, key: Any, value: Any, priority: int = 0) -> None:
        """Sum the values of each key (one per device) and update the stored value.

        With an updater (``set_optimizer`` or ``_set_updater``) it is called as
        ``updater(key, summed, stored)``; without one the sum replaces the value.
        ``priority`` orders MXNet's asynchronous engine and changes nothing here.
        """
        for k, values in _pairs(key, value, "push"):
            stored = self._stored(k, values, "push")
            total = _copy(values[0]._data, stored.context)
            for v in values[1:]:
                total = total + _copy(v._data, stored.context)
            total = self._merge(total)
            merged = NDArray(total.astype(stored._data.dtype), ctx=stored.context)
            if self._updater is not None:
                self._updater(k, merged, stored)
            else:
                stored._set_data(merged._data)

    @x64.scoped
    def pull(self, key: Any, out: Any = None, priority: int = 0,
             ignore_sparse: bool = True) -> None:
        """Copy the stored value of each key into ``out`` (an NDArray or a list of them,
        each keeping its context); ``ignore_sparse`` concerns sparse arrays only."""
        if out is None:
            raise ValueError("kvstore.pull needs out= (the NDArrays to copy into)")
        for k, outs in _pairs(key, out, "pull"):
            stored = self._stored(k, outs, "pull")
            for o in outs:
                o._set_data(_copy(stored._data.astype(o._data.dtype), o.context))

    def _merge(self, total: jax.Array) -> jax.Array:
        """The sum over workers of each worker's sum (one worker here)."""
        return total

    def pushpull(self, key: Any, value: Any, out: Any = None, priority: int = 0) -> None:
        """``push(key, value)`` then ``pull(key, out)``; ``out`` defaults to ``value``."""
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def broadcast(self, key: Any, value: Any, out: Any, priority: int = 0) -> None:
        """``init(key, value)`` then ``pull(key, out)``."""
        self.init(key, value)
        self.pull(key, out, priority)

    def row_sparse_pull(self, key: Any, out: Any = None, priority: int = 0,
                        row_ids: Any = None) -> None:
        raise NotImplementedError("kvstore.row_sparse_pull: hybrid has no row_sparse arrays; "
                                  "use pull")

    def set_gradient_compression(self, compression_params: dict) -> None:
        raise MXNetError("Gradient compression is not supported for this type of kvstore")

    # ------------------------------------------------------------- updates
    def set_optimizer(self, optimizer: Any) -> None:
        """Update pushed keys with ``optimizer`` (through an ``optimizer.Updater``)."""
        from .optimizer import get_updater

        self._set_updater(get_updater(optimizer))

    def _set_updater(self, updater: Callable[[Any, NDArray, NDArray], None]) -> None:
        """Call ``updater(key, summed_value, stored)`` on every push (it updates
        ``stored`` in place)."""
        self._updater = updater

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Write the updater's states (and the optimizer with ``dump_optimizer``) to
        ``fname`` atomically, in the format ``Updater.get_states`` writes."""
        from lowering.serialization import write_atomic

        if self._updater is None or not hasattr(self._updater, "get_states"):
            raise AssertionError("kvstore.save_optimizer_states: no optimizer is set "
                                 "(call set_optimizer first)")
        write_atomic(fname, self._updater.get_states(dump_optimizer))

    def load_optimizer_states(self, fname: str) -> None:
        """Load states written by ``save_optimizer_states`` (hybrid's or MXNet 1.9's)."""
        if self._updater is None or not hasattr(self._updater, "set_states"):
            raise AssertionError("kvstore.load_optimizer_states: no optimizer is set "
                                 "(call set_optimizer first)")
        with open(fname, "rb") as f:
            self._updater.set_states(f.read())

    def _barrier(self) -> None:
        """Wait for every worker: nothing to wait for in one process."""

    def __repr__(self) -> str:
        return f"<KVStore {self._type}: {len(self._store)} keys>"


class DistKVStore(KVStore):
    """``dist_sync`` / ``dist_device_sync``: one store per process, kept equal.

    The processes form a ``jax.distributed`` group (see :func:`create`). ``init`` takes
    rank 0's value on every worker; ``push`` sums the values of every worker (in rank
    order, after each worker's own devices) and every worker applies the same update,
    which is what MXNet's servers compute; ``pull`` reads the local copy.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        from jax.experimental import multihost_utils

        self._hosts = multihost_utils

    @property
    def rank(self) -> int:
        return jax.process_index()

    @property
    def num_workers(self) -> int:
        return jax.process_count()

    @x64.scoped
    def init(self, key: Any, value: Any) -> None:
        for k, values in _pairs(key, value, "init"):
            first = self._hosts.broadcast_one_to_all(values[0]._data)
            super().init(k, NDArray(first, ctx=values[0].context))

    def _merge(self, total: Any) -> Any:
        """The sum over workers (in rank order) of ``total``, an array or a list of
        arrays, exchanged at once; each sum on its array's device."""
        gathered = self._hosts.process_allgather(total)

        def add(g, like):
            out = g[0]
            for i in range(1, g.shape[0]):
                out = out + g[i]
            return jax.device_put(out.astype(like.dtype), next(iter(like.devices())))

        return jax.tree_util.tree_map(add, gathered, total)

    def _barrier(self) -> None:
        self._hosts.sync_global_devices("hybrid kvstore barrier")


_REFUSED = ("dist_async", "horovod", "p3")


def _join_processes() -> None:
    """Join this process to its ``jax.distributed`` group, from the environment.

    ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of rank 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``, or MXNet's ``DMLC_PS_ROOT_URI``/``DMLC_PS_ROOT_PORT``,
    ``DMLC_NUM_WORKER`` and ``DMLC_WORKER_ID``. Nothing to do if the group exists.
    """
    import os

    if jax.distributed.is_initialized():
        return
    env = os.environ
    address = env.get("JAX_COORDINATOR_ADDRESS")
    if address is None and "DMLC_PS_ROOT_URI" in env:
        address = f"{env['DMLC_PS_ROOT_URI']}:{env.get('DMLC_PS_ROOT_PORT', '9091')}"
    count = env.get("JAX_NUM_PROCESSES", env.get("DMLC_NUM_WORKER"))
    index = env.get("JAX_PROCESS_ID", env.get("DMLC_WORKER_ID"))
    if address is None or count is None or index is None:
        raise MXNetError(
            "a dist kvstore needs the process group: set JAX_COORDINATOR_ADDRESS (host:port "
            "of rank 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID (or MXNet's DMLC_PS_ROOT_URI, "
            "DMLC_PS_ROOT_PORT, DMLC_NUM_WORKER and DMLC_WORKER_ID), or call "
            "jax.distributed.initialize() first")
    # CPU devices of several processes reduce through gloo (GPUs and TPUs have their own
    # collectives); this must be chosen before JAX starts its backends.
    if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=address, num_processes=int(count),
                                   process_id=int(index))
    except RuntimeError as err:
        raise MXNetError(f"cannot join the process group at {address}: {err}. Create the "
                         "dist kvstore before any array exists") from None


def create(name: str = "local") -> KVStore:
    """A store of type ``name`` (``'local'``, ``'device'``, ``'dist_sync'``, ...; see the
    module docstring and :class:`DistKVStore`).

    Raises:
        TypeError: ``name`` is not a string.
        NotImplementedError: ``dist_async``, ``horovod`` or ``p3``.
        MXNetError: a dist store without its process group (see ``_join_processes``).
    """
    if not isinstance(name, str):
        raise TypeError("name must be a string")
    name = name.lower()
    if any(word in name for word in _REFUSED):
        raise NotImplementedError(
            f"kvstore {name!r} is not implemented in hybrid: use 'dist_sync' (several "
            "hosts), 'device' or 'local'")
    if "dist" in name:
        _join_processes()
        return DistKVStore(name)
    return KVStore(name)
