"""Optimizer states on disk, without running code from the file.

``gluon.Trainer.save_states``/``load_states`` and ``Updater.get_states``/``set_states``
use this module. MXNet pickles its states (and the optimizer object); unpickling runs
whatever the file names, so hybrid never calls ``pickle.loads`` on a states file.

**The format hybrid writes** is MXNet's binary NDArray dict format (``.params``, see
:mod:`lowering.serialization`): every state array is one entry (``s0``, ``s1``...; 0-d
arrays are stored with shape ``(1,)``), and the entry ``__optimizer_states__`` is a
``uint8`` array holding a UTF-8 JSON header::

    {"format": "hybrid-optimizer-states", "version": 1,
     "states": <value>,            # index -> state structure
     "optimizer": null | {"class": "<registered name>", "attrs": <value>}}

where a ``<value>`` is JSON (``null``, bools, numbers, strings, lists) or one of
``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys of any JSON type),
``{"array": "s3", "shape": [...]}``, ``{"shared_schedule": <value>}`` (Nadam's schedule
box) and ``{"lr_scheduler": "<class name>", "attrs": <value>}``. The only objects a
load creates are the optimizer (a class registered with ``mx.optimizer.register``) and
learning-rate schedulers (classes of :mod:`hybrid.lr_scheduler`), built with
``__new__`` and their attributes set from the header: no constructor, ``__setstate__``
of a foreign class or other code named by the file runs.

**MXNet 1.9's own ``.states`` files** (pickles) are read with a restricted unpickler that
admits only what MXNet writes there: ``mxnet.ndarray.ndarray.NDArray`` (decoded from its
serialized bytes, never constructed), ``builtins.bytearray``, the optimizer classes of
``mxnet.optimizer`` and the schedulers of ``mxnet.lr_scheduler`` (both mapped to inert
records, then to hybrid's classes of the same name). Any other global -- ``os.system``,
``builtins.eval``, any other class -- is refused with ``pickle.UnpicklingError`` before
anything is called.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from typing import Any

import numpy as np

from lowering.serialization import LIST_MAGIC, dumps, loads

from .adam import SharedSchedule
from .optimizer import Optimizer

__all__ = ["FORMAT", "HEADER_KEY", "dumps_states", "loads_states"]

FORMAT = "hybrid-optimizer-states"
VERSION = 1
HEADER_KEY = "__optimizer_states__"


def _scheduler_classes() -> dict[str, type]:
    from .. import lr_scheduler

    return {name: obj for name, obj in vars(lr_scheduler).items()
            if isinstance(obj, type) and issubclass(obj, lr_scheduler.LRScheduler)}


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or hasattr(value, "asnumpy") or (
        hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "__array__"))


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def value(self, v: Any, where: str) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, SharedSchedule):
            return {"shared_schedule": self.value(v.value, where)}
        if isinstance(v, tuple):
            return {"tuple": [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            return {"dict": [[self.value(k, f"{where} key"), self.value(x, f"{where}[{k!r}]")]
                             for k, x in v.items()]}
        if type(v) in _scheduler_classes().values():
            return {"lr_scheduler": type(v).__name__,
                    "attrs": self.value(dict(vars(v)), f"{where}.__dict__")}
        if _is_array(v):
            arr = _numpy(v)
            key = f"s{len(self.arrays)}"
            self.arrays[key] = arr.reshape(1) if arr.ndim == 0 else arr
            return {"array": key, "shape": list(arr.shape)}
        raise TypeError(
            f"cannot save optimizer states: {where} is a {type(v).__module__}."
            f"{type(v).__qualname__}; only numbers, strings, None, lists, tuples, dicts, "
            "arrays and hybrid.lr_scheduler schedulers can be stored")


def dumps_states(states: dict, optimizer: Optimizer | None = None) -> bytes:
    """Serialize ``states`` (index -> pytree of arrays) and optionally the optimizer.

    The result is an MXNet ``.params`` dict file (see the module docstring). Raises
    ``TypeError`` naming the attribute when something cannot be stored safely.
    """
    enc = _Encoder()
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                              "states": enc.value(dict(states), "states")}
    if optimizer is None:
        header["optimizer"] = None
    else:
        name = type(optimizer).__name__.lower()
        if Optimizer.opt_registry.get(name) is not type(optimizer):
            raise TypeError(f"cannot save optimizer {type(optimizer).__qualname__}: it is not "
                            "registered (mx.optimizer.register), so it could not be loaded back")
        attrs = optimizer.__getstate__()
        header["optimizer"] = {"class": name,
                               "attrs": enc.value(attrs, f"{type(optimizer).__name__}")}
    text = json.dumps(header, allow_nan=True).encode("utf-8")
    payload = {HEADER_KEY: np.frombuffer(text, dtype=np.uint8)}
    payload.update(enc.arrays)
    return dumps(payload, np_shape=False)


class _Decoder:
    def __init__(self, arrays: dict[str, Any], plain_schedule: bool) -> None:
        self.arrays = arrays
        self.plain_schedule = plain_schedule

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict) or len(v) not in (1, 2):
            raise ValueError(f"corrupt optimizer states header: unexpected value {v!r:.80}")
        if "tuple" in v:
            return tuple(self.value(x) for x in v["tuple"])
        if "dict" in v:
            return {_hashable(self.value(k)): self.value(x) for k, x in v["dict"]}
        if "array" in v:
            arr = self.arrays.get(v["array"])
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"corrupt optimizer states file: no array {v['array']!r}")
            return arr.reshape(tuple(v["shape"]))
        if "shared_schedule" in v:
            inner = self.value(v["shared_schedule"])
            return inner if self.plain_schedule else SharedSchedule(inner)
        if "lr_scheduler" in v:
            klass = _scheduler_classes().get(v["lr_scheduler"])
            if klass is None:
                raise ValueError(f"optimizer states name an unknown learning-rate scheduler "
                                 f"{v['lr_scheduler']!r}")
            sched = klass.__new__(klass)
            sched.__dict__.update(self.value(v["attrs"]))
            return sched
        raise ValueError(f"corrupt optimizer states header: unexpected value {v!r:.80}")


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _make_optimizer(name: str, attrs: dict) -> Optimizer:
    klass = Optimizer.opt_registry.get(str(name).lower())
    if klass is None:
        raise ValueError(f"optimizer states name the optimizer {name!r}, which is not "
                         "registered (mx.optimizer.register it before loading)")
    opt = klass.__new__(klass)
    Optimizer.__setstate__(opt, dict(attrs))
    # The current per-device counters are one of _all_index_update_counts (one dict in
    # MXNet's pickle too): restore that sharing.
    counts = getattr(opt, "_all_index_update_counts", None)
    if isinstance(counts, dict):
        current = getattr(opt, "_index_update_count", None)
        for device in sorted(counts, key=lambda d: d != 0):
            if counts[device] == current:
                opt._index_update_count = counts[device]
                break
    return opt


def _loads_hybrid(buf: bytes, plain_schedule: bool) -> tuple[dict, Optimizer | None]:
    arrays = loads(buf)
    if not isinstance(arrays, dict) or HEADER_KEY not in arrays:
        raise ValueError("not an optimizer states file: an NDArray file without the "
                         f"{HEADER_KEY!r} header entry")
    header = json.loads(bytes(np.asarray(arrays.pop(HEADER_KEY), np.uint8)).decode("utf-8"))
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"unsupported optimizer states format {header.get('format')!r} "
                         f"version {header.get('version')!r}")
    dec = _Decoder(arrays, plain_schedule)
    states = dec.value(header["states"])
    opt = None
    if header.get("optimizer") is not None:
        spec = header["optimizer"]
        opt = _make_optimizer(spec["class"], dec.value(spec["attrs"]))
    return states, opt


# ---------------------------------------------------------------------------
# MXNet 1.9 pickles


class _PickledNDArray:
    """Stands in for ``mxnet.ndarray.ndarray.NDArray``; its state is MXNet's raw bytes."""

    def __init__(self, handle: Any = None) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        raw = state.get("handle") if isinstance(state, dict) else None
        if not isinstance(raw, (bytes, bytearray)):
            raise pickle.UnpicklingError("MXNet NDArray in a states file without its bytes")
        # A single serialized NDArray is one record of the NDArray list format.
        listed = struct.pack("<QQQ", LIST_MAGIC, 0, 1) + bytes(raw) + struct.pack("<Q", 0)
        (self.array,) = loads(listed)


class _PickledObject:
    """An inert record of an MXNet optimizer or scheduler: its class name and attributes."""

    kind = ""
    name = ""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"MXNet {self.name} pickled without an attribute dict")
        self.attrs = state


def _record_class(kind: str, name: str) -> type:
    return type(f"MXNet{name}", (_PickledObject,), {"kind": kind, "name": name})


_MXNET_OPTIMIZERS = {
    "SGD", "ccSGD", "NAG", "Signum", "LARS", "LBSGD", "Adam", "Adamax", "Nadam", "LAMB",
    "FTML", "RMSProp", "AdaGrad", "AdaDelta", "Ftrl", "DCASGD", "SGLD", "Test",
}
_MXNET_SCHEDULERS = {"LRScheduler", "FactorScheduler", "MultiFactorScheduler", "PolyScheduler",
                     "CosineScheduler"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("mxnet.ndarray.ndarray", "NDArray"):
            return _PickledNDArray
        if (module, name) == ("builtins", "bytearray"):
            return bytearray
        if module == "mxnet.optimizer.optimizer" and name in _MXNET_OPTIMIZERS or (
                module == "mxnet.optimizer.contrib" and name == "GroupAdaGrad"):
            return _record_class("optimizer", name)
        if module == "mxnet.lr_scheduler" and name in _MXNET_SCHEDULERS:
            return _record_class("lr_scheduler", name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from an optimizer states file: an MXNet "
            "states pickle may only contain NDArrays, MXNet optimizers and learning-rate "
            "schedulers (loading anything else could run code from the file)")


def _from_pickled(v: Any) -> Any:
    if isinstance(v, _PickledNDArray):
        return v.array
    if isinstance(v, tuple):
        return tuple(_from_pickled(x) for x in v)
    if isinstance(v, list):
        return [_from_pickled(x) for x in v]
    if isinstance(v, dict):
        return {k: _from_pickled(x) for k, x in v.items()}
    if isinstance(v, _PickledObject):
        attrs = _from_pickled(getattr(v, "attrs", {}))
        if v.kind == "lr_scheduler":
            klass = _scheduler_classes()[v.name]
            sched = klass.__new__(klass)
            sched.__dict__.update(attrs)
            return sched
        return _make_optimizer(v.name, attrs)
    if v is None or isinstance(v, (bool, int, float, str, bytes, bytearray)):
        return v
    raise pickle.UnpicklingError(f"unexpected {type(v).__name__} in an MXNet states file")


def _mxnet_state(opt: Optimizer | None, state: Any) -> Any:
    """MXNet's state of one parameter in the layout hybrid's optimizer keeps.

    Hybrid keeps in the state a few values MXNet keeps on the optimizer object (Nadam's
    schedule, LARS's previous learning rate, SGLD's random key); they are filled in here.
    A multi-precision state is ``(weight32, inner)`` (``(inner, weight32)`` for LARS).
    """
    from .adam import Nadam
    from .others import SGLD, _new_key
    from .sgd import LARS, LBSGD

    if isinstance(opt, Nadam):
        sched = np.asarray(float(getattr(opt, "m_schedule", 1.0)))
        if len(state) == 2 and isinstance(state[1], tuple):
            return (state[0], (*state[1], sched))
        return (*state, sched)
    if isinstance(opt, LARS):
        last = np.asarray(float(getattr(opt, "cur_lr", None) or 0.0))
        if isinstance(state, tuple):
            return ((state[0], last), state[1])
        return (state, last)
    if isinstance(opt, SGLD):
        key = np.asarray(_new_key())
        return (state[0], key) if isinstance(state, tuple) else key
    if isinstance(opt, LBSGD):
        raise ValueError("loading MXNet LBSGD states is not supported: MXNet keeps the "
                         "accumulated gradients outside the states")
    return state


def _loads_mxnet(buf: bytes) -> tuple[dict, Optimizer | None]:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(buf)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as err:  # noqa: BLE001  (a damaged pickle can fail in many ways)
        raise pickle.UnpicklingError(f"corrupt MXNet optimizer states pickle: {err}") from err
    obj = _from_pickled(obj)
    opt = None
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], Optimizer):
        obj, opt = obj
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(
            f"an MXNet states pickle holds a dict of states, not a {type(obj).__name__}")
    return {k: _mxnet_state(opt, v) for k, v in obj.items()}, opt


def loads_states(buf: bytes, plain_schedule: bool = True) -> tuple[dict, Optimizer | None]:
    """Read states written by :func:`dumps_states` or an MXNet 1.9 ``.states`` pickle.

    Returns ``(states, optimizer or None)`` with the states as pytrees of numpy arrays in
    the layout hybrid's optimizer uses (MXNet states are converted where hybrid keeps
    more, e.g. Nadam's schedule). ``plain_schedule=False`` keeps Nadam's
    :class:`SharedSchedule` boxes (the fused layout). See the module docstring for what a
    load may create; nothing named by the file is called.
    """
    buf = bytes(buf)
    if buf[:8] == struct.pack("<Q", LIST_MAGIC):
        return _loads_hybrid(buf, plain_schedule)
    if buf[:1] == b"\x80":
        return _loads_mxnet(buf)
    raise ValueError("not an optimizer states file: neither hybrid's NDArray-format states "
                     "nor an MXNet pickle")
