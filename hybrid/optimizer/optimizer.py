"""The optimizer base class, the optimizer registry and the kvstore-style ``Updater``.

Every optimizer has two faces:

* **The fused interface** used by ``gluon.Trainer``'s compiled step::

      state = opt.create_state_arrays(index, weight)          # pytree of jax arrays (or None)
      lr, wd, t = opt.prepare_update(index)                   # Python numbers, MXNet's order
      new_weight, new_state = opt.fused_step(index, weight, grad, state, lr, wd, rescale_grad, t)

  ``fused_step`` is pure JAX: it may be traced inside one ``jax.jit`` over all
  parameters with ``lr``, ``wd``, ``rescale_grad`` and ``t`` as traced scalars
  (``lr``/``wd`` already multiplied by the parameter's ``lr_mult``/``wd_mult``;
  ``t`` is the parameter's update count after the increment, 1-based). The
  hyper-parameters (``momentum``, ``beta1``...) and ``clip_gradient`` are static
  Python values read from ``self``. ``prepare_update`` advances the update
  counters and evaluates the learning-rate scheduler exactly as MXNet's
  ``update`` does, so a caller gets MXNet's ``lr``/``wd``/``t`` from it.

* **MXNet's eager API** on NDArrays: ``create_state``,
  ``create_state_multi_precision``, ``update`` and ``update_multi_precision``,
  built on the fused interface. Eager states are the same pytrees with every
  array wrapped in an ``NDArray`` (``None`` entries stay ``None``); ``update``
  writes the new weight and the new state arrays back in place with
  ``NDArray._set_data``.

Multi-precision: with ``multi_precision=True`` and a float16 weight the state
also holds a float32 master copy of the weight. Its place follows MXNet:
``(weight32, inner_state)`` for most optimizers, ``(inner_state, weight32)``
for ``SGD``, ``NAG``, ``LARS`` (``_mp_state_first``). The update is then done on
the master copy with the gradient cast to float32 and the result cast back.

Some optimizers keep, inside their state, values MXNet keeps in Python
attributes (Nadam's momentum schedule, LARS's previous learning rate, LBSGD's
accumulated gradient, SGLD's random key); each class documents its state.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lowering import registry as _registry
from lowering.x64 import scoped as _x64

from ..base import MXNetError

__all__ = ["Optimizer", "Updater", "create", "get_updater", "register"]

Pytree = Any


def _op(name: str) -> Callable[..., Any]:
    """The pure implementation of registered update operator ``name``."""
    return _registry.get(name).impl


def _hi(value: Any) -> jax.Array:
    """A scalar in the widest float type enabled (float64 under x64), for Python-side math."""
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _as(value: Any, dtype: Any) -> jax.Array:
    """A scalar (Python number or traced value) cast to ``dtype``."""
    return jnp.asarray(value, dtype=dtype)


def _py_clip(grad: jax.Array, clip_gradient: float | None) -> jax.Array:
    """``mx.nd.clip(grad, -c, c)`` as MXNet's Python-side optimizers apply it (c may be 0)."""
    if clip_gradient is None:
        return grad
    c = _as(clip_gradient, grad.dtype)
    return jnp.minimum(jnp.maximum(grad, -c), c)


def _check_finite_tuple_params(op: str, lr: float, wd: float) -> None:
    """MXNet's aggregated kernels take ``lrs``/``wds`` as tuple attributes, whose parser
    refuses ``nan``/``inf``: raise the same ``MXNetError``."""
    for field, value in (("lrs", lr), ("wds", wd)):
        bad = np.asarray(value, np.float64).reshape(-1)
        bad = bad[~np.isfinite(bad)]
        if bad.size:
            raise MXNetError(
                f"Invalid Parameter format for {field} expect tuple of <float> but "
                f"value='[{float(bad[0])}]', in operator {op}: the learning rate and weight "
                "decay must be finite")


def _is_float16(dtype: Any) -> bool:
    return np.dtype(dtype) == np.float16


# ---------------------------------------------------------------------------
# pytree <-> NDArray helpers for the eager API


def _ndarray_class() -> type:
    from ..ndarray import NDArray

    return NDArray


def _wrap(state: Pytree, ctx: Any = None) -> Pytree:
    """Wrap every jax array of ``state`` in an NDArray (tuples, lists and None kept)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_wrap(s, ctx) for s in state)
    if isinstance(state, list):
        return [_wrap(s, ctx) for s in state]
    return _ndarray_class()(state, ctx)


def _data(x: Any) -> Any:
    return x._data if hasattr(x, "_data") else x


def _unwrap(state: Pytree) -> Pytree:
    """The jax arrays inside an eager state (NDArrays unwrapped)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_unwrap(s) for s in state)
    if isinstance(state, list):
        return [_unwrap(s) for s in state]
    return jnp.asarray(_data(state))


def _write_back(state: Pytree, new: Pytree) -> None:
    """Store the arrays of ``new`` into the NDArrays of ``state`` (same structure)."""
    if state is None:
        return
    if isinstance(state, (tuple, list)):
        for s, n in zip(state, new, strict=True):
            _write_back(s, n)
        return
    state._set_data(jnp.asarray(new).astype(jnp.asarray(state._data).dtype))


def _to_numpy(state: Pytree) -> Pytree:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_to_numpy(s) for s in state)
    if isinstance(state, list):
        return [_to_numpy(s) for s in state]
    return np.asarray(_data(state))


def _from_numpy(state: Pytree) -> Pytree:
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        items = [_from_numpy(s) for s in state]
        return tuple(items) if isinstance(state, tuple) else items
    if isinstance(state, np.ndarray):
        return _ndarray_class()(jnp.asarray(state))
    return state


# ---------------------------------------------------------------------------


class Optimizer:
    """The base class of all optimizers (``mx.optimizer.Optimizer``).

    Parameters
    ----------
    rescale_grad : float
        Multiply the gradient by this before updating (``gluon.Trainer`` sets it to
        ``scale / batch_size`` at every step).
    param_idx2name : dict of int to str, optional
        Index -> parameter name. Names not ending in ``_weight``/``_gamma`` get a weight
        decay multiplier of 0.
    wd : float
        Weight decay (L2) coefficient.
    clip_gradient : float, optional
        Clip the (rescaled) gradient to ``[-clip_gradient, clip_gradient]``. ``None`` (and,
        for the operator-based optimizers, any falsy value such as 0) disables clipping.
    learning_rate : float, optional
        The learning rate. ``None`` means 0.01, or the scheduler's ``base_lr`` when
        ``lr_scheduler`` is given; a value given together with a scheduler overwrites
        the scheduler's ``base_lr``.
    lr_scheduler : LRScheduler, optional
        Called as ``lr_scheduler(num_update)`` to get the learning rate.
    sym : Symbol, optional
        Symbol whose ``__lr_mult__``/``__wd_mult__`` attributes seed ``lr_mult``/``wd_mult``.
    begin_num_update : int
        Initial value of the update counters.
    multi_precision : bool
        Keep a float32 master copy of float16 weights and update it in float32.
    param_dict : dict of int to Parameter, optional
        Index -> gluon ``Parameter``; its ``lr_mult``/``wd_mult`` take precedence.
    """

    opt_registry: dict[str, type] = {}
    _mp_state_first = False
    _native_mp = False

    def __init__(
        self,
        rescale_grad: float = 1.0,
        param_idx2name: dict[int, str] | None = None,
        wd: float = 0.0,
        clip_gradient: float | None = None,
        learning_rate: float | None = None,
        lr_scheduler: Any = None,
        sym: Any = None,
        begin_num_update: int = 0,
        multi_precision: bool = False,
        param_dict: dict | None = None,
    ) -> None:
        self.rescale_grad = rescale_grad
        self.lr_scheduler = lr_scheduler
        if self.lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = learning_rate
        if self.lr_scheduler is not None and learning_rate is not None:
            if self.lr_scheduler.base_lr != learning_rate:
                warnings.warn(
                    "learning rate from ``lr_scheduler`` has been overwritten by "
                    "``learning_rate`` in optimizer.",
                    UserWarning,
                    stacklevel=2,
                )
                self.lr_scheduler.base_lr = learning_rate

        self.wd = wd
        self.lr_mult: dict = {}
        self.wd_mult: dict = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._all_index_update_counts: dict = {0: {}}
        self._index_update_count: dict = self._all_index_update_counts[0]
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision
        self.aggregate_num = 0

        if param_idx2name is None:
            param_idx2name = {}
        assert isinstance(param_idx2name, dict), (
            "param_idx2name should be a dict of param indexes to names."
        )
        self.idx2name = param_idx2name.copy()
        self.sym_info = (sym.attr_dict(), sym.list_arguments()) if sym is not None else ()
        self.param_dict = param_dict if param_dict else {}
        self.allow_np_array = False

        self.set_lr_mult({})
        self.set_wd_mult({})

    # -- registry -----------------------------------------------------------

    @staticmethod
    def register(klass: type) -> type:
        """Register an optimizer class under its lower-cased class name (a decorator)."""
        assert isinstance(klass, type)
        name = klass.__name__.lower()
        if name in Optimizer.opt_registry:
            old = Optimizer.opt_registry[name]
            warnings.warn(
                f"WARNING: New optimizer {klass.__module__}.{klass.__name__} is overriding "
                f"existing optimizer {old.__module__}.{old.__name__}",
                stacklevel=2,
            )
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name: str, **kwargs: Any) -> Optimizer:
        """Instantiate the optimizer registered as ``name`` (case-insensitive) with ``kwargs``."""
        if name.lower() in Optimizer.opt_registry:
            return Optimizer.opt_registry[name.lower()](**kwargs)
        raise ValueError(f"Cannot find optimizer {name}")

    # -- learning rate / weight decay ---------------------------------------

    @property
    def learning_rate(self) -> float:
        """The current learning rate: ``lr_scheduler(num_update)`` if a scheduler is set."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr: float) -> None:
        """Set the learning rate; refused (``UserWarning`` raised) when a scheduler is set."""
        if self.lr_scheduler is not None:
            raise UserWarning(
                "LRScheduler of the optimizer has already been defined. Note that "
                "set_learning_rate can mutate the value of the learning rate of the "
                "optimizer only when the LRScheduler of the optimizer is undefined."
            )
        self.lr = lr

    def set_lr_scale(self, args_lrscale: dict) -> None:
        """[DEPRECATED] Use ``set_lr_mult``; always raises ``DeprecationWarning``."""
        raise DeprecationWarning

    def set_lr_mult(self, args_lr_mult: dict) -> None:
        """Set per-parameter learning-rate multipliers (keys: parameter index or name).

        ``__lr_mult__`` attributes of ``sym`` (if given) come first; ``args_lr_mult``
        overrides them.
        """
        self.lr_mult = {}
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__lr_mult__" in attr[name]:
                    self.lr_mult[name] = float(attr[name]["__lr_mult__"])
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult: dict) -> None:
        """Set per-parameter weight-decay multipliers (keys: parameter index or name).

        Names in ``idx2name`` not ending in ``_weight`` or ``_gamma`` get 0; then the
        ``__wd_mult__`` attributes of ``sym``; then ``args_wd_mult``.
        """
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not (n.endswith("_weight") or n.endswith("_gamma")):
                self.wd_mult[n] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and "__wd_mult__" in attr[name]:
                    self.wd_mult[name] = float(attr[name]["__wd_mult__"])
        self.wd_mult.update(args_wd_mult)

    def _set_current_context(self, device_id: int) -> None:
        """Switch the per-index update counters to those of device ``device_id``."""
        if device_id not in self._all_index_update_counts:
            self._all_index_update_counts[device_id] = {}
        self._index_update_count = self._all_index_update_counts[device_id]

    def _update_count(self, index: int | list | tuple) -> None:
        """Increment the update count of ``index`` (or each index of a list) and ``num_update``."""
        if not isinstance(index, (list, tuple)):
            index = [index]
        for idx in index:
            if idx not in self._index_update_count:
                self._index_update_count[idx] = self.begin_num_update
            self._index_update_count[idx] += 1
            self.num_update = max(self._index_update_count[idx], self.num_update)

    def _get_lrs(self, indices: list) -> list[float]:
        """Learning rates of ``indices``: scheduler (or ``lr``) times each ``lr_mult``."""
        if self.lr_scheduler is not None:
            lr = self.lr_scheduler(self.num_update)
        else:
            lr = self.lr
        lrs = [lr for _ in indices]
        for i, index in enumerate(indices):
            if index in self.param_dict:
                lrs[i] *= self.param_dict[index].lr_mult
            elif index in self.lr_mult:
                lrs[i] *= self.lr_mult[index]
            elif index in self.idx2name:
                lrs[i] *= self.lr_mult.get(self.idx2name[index], 1.0)
        return lrs

    def _get_lr(self, index: int) -> float:
        """Learning rate of parameter ``index``."""
        return self._get_lrs([index])[0]

    def _get_wds(self, indices: list) -> list[float]:
        """Weight decays of ``indices``: ``wd`` times each ``wd_mult``."""
        wds = [self.wd for _ in indices]
        for i, index in enumerate(indices):
            if index in self.param_dict:
                wds[i] *= self.param_dict[index].wd_mult
            elif index in self.wd_mult:
                wds[i] *= self.wd_mult[index]
            elif index in self.idx2name:
                wds[i] *= self.wd_mult.get(self.idx2name[index], 1.0)
        return wds

    def _get_wd(self, index: int) -> float:
        """Weight decay of parameter ``index``."""
        return self._get_wds([index])[0]

    def __getstate__(self) -> dict:
        ret = self.__dict__.copy()
        # param_dict holds gluon Parameters; the trainer sets it again after loading.
        del ret["param_dict"]
        return ret

    def __setstate__(self, state: dict) -> None:
        self.__dict__ = state
        self.param_dict = {}

    # -- the fused interface ------------------------------------------------

    @property
    def supports_fused_step(self) -> bool:
        """Whether ``fused_step`` implements this optimizer's update.

        False for optimizers written the MXNet way (a subclass overriding ``update``,
        ``update_multi_precision``, ``create_state`` or ``create_state_multi_precision``
        with NDArray code, below the class that defines the pure step): those must be
        driven through the eager API (``Updater``).
        """
        return _fused(type(self))

    def prepare_update(self, index: int) -> tuple[float, float, int]:
        """Advance ``index``'s update count and return ``(lr, wd, t)`` as MXNet's ``update`` does.

        ``lr``/``wd`` include the parameter's multipliers and the scheduler evaluated at
        the new ``num_update``; ``t`` is the parameter's update count after the increment.
        """
        self._update_count(index)
        return self._get_lr(index), self._get_wd(index), self._index_update_count[index]

    def prepare_updates(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``prepare_update`` of each index in order, as ``(lrs, wds, ts)`` arrays.

        For the optimizers whose ``prepare_update`` is the base one (plus a check of the
        results, ``_check_prepared``) this is computed in one pass: the counts advance in
        order, the scheduler is called once per distinct ``num_update`` the pass goes
        through, and the multipliers are read per index; other optimizers run their own
        ``prepare_update`` per index.
        """
        if type(self).prepare_update not in _BATCHED_PREPARE:
            lrs, wds, ts = zip(*(self.prepare_update(i) for i in indices))
            return (np.asarray(lrs, np.float64), np.asarray(wds, np.float64),
                    np.asarray(ts, np.int64))
        counts, begin = self._index_update_count, self.begin_num_update
        num = self.num_update
        ts, nums = [], []
        for idx in indices:
            c = counts.get(idx, begin) + 1
            counts[idx] = c
            if c > num:
                num = c
            ts.append(c)
            nums.append(num)
        self.num_update = num
        if self.lr_scheduler is None:
            lrs = np.full(len(indices), self.lr, np.float64)
        elif nums[0] == num:
            lrs = np.full(len(indices), self.lr_scheduler(num), np.float64)
        else:
            by_num = {n: self.lr_scheduler(n) for n in dict.fromkeys(nums)}
            lrs = np.asarray([by_num[n] for n in nums], np.float64)
        lrs *= self._multipliers(indices, "lr_mult", self.lr_mult)
        wds = self.wd * self._multipliers(indices, "wd_mult", self.wd_mult)
        ts = np.asarray(ts, np.int64)
        self._check_prepared(lrs, wds, ts)
        return lrs, wds, ts

    def _multipliers(self, indices: list[int], attr: str, table: dict) -> np.ndarray:
        """Per index: the parameter's ``attr``, else ``table`` by index or by name, else 1."""
        pd = self.param_dict
        if all(i in pd for i in indices):
            return np.asarray([getattr(pd[i], attr) for i in indices], np.float64)
        names = self.idx2name
        return np.asarray([getattr(pd[i], attr) if i in pd else table[i] if i in table
                           else table.get(names[i], 1.0) if i in names else 1.0
                           for i in indices], np.float64)

    def _check_prepared(self, lrs: np.ndarray, wds: np.ndarray, ts: np.ndarray) -> None:
        """What ``prepare_update`` checks, over a whole batch (default nothing)."""

    def _uses_master_copy(self, weight: Any) -> bool:
        return bool(self.multi_precision) and _is_float16(weight.dtype)

    def _state_arrays(self, index: int, weight: jax.Array) -> Pytree:
        """The state of one parameter with ``weight``'s precision (MXNet's ``create_state``)."""
        return None

    @_x64
    def create_state_arrays(self, index: int, weight: jax.Array) -> Pytree:
        """The optimizer state of parameter ``index`` as a pytree of jax arrays (or None).

        With ``multi_precision`` and a float16 ``weight`` the state includes the float32
        master copy of the weight (see the module docstring for its place).
        """
        if self._uses_master_copy(weight):
            w32 = jnp.asarray(weight).astype(jnp.float32)
            inner = self._state_arrays(index, w32)
            return (inner, w32) if self._mp_state_first else (w32, inner)
        if _is_float16(weight.dtype):
            warnings.warn(
                "Accumulating with float16 in optimizer can lead to poor accuracy or slow "
                "convergence. Consider using multi_precision=True option of the optimizer",
                stacklevel=2,
            )
        return self._state_arrays(index, jnp.asarray(weight))

    def _step(
        self, index: int, weight: jax.Array, grad: jax.Array, state: Pytree,
        lr: Any, wd: Any, rescale_grad: Any, t: Any,
    ) -> tuple[jax.Array, Pytree]:
        """One pure update of a weight with its own-precision state (MXNet's ``update``)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no pure update step; use its eager update() "
            "(supports_fused_step is False)"
        )

    def _mp_step(
        self, index: int, weight: jax.Array, grad: jax.Array, state: Pytree,
        lr: Any, wd: Any, rescale_grad: Any, t: Any,
    ) -> tuple[jax.Array, Pytree]:
        """Update through the float32 master copy (MXNet's ``update_multi_precision``)."""
        if self._mp_state_first:
            inner, w32 = state
        else:
            w32, inner = state
        new_w32, new_inner = self._step(
            index, w32, grad.astype(jnp.float32), inner, lr, wd, rescale_grad, t
        )
        new_state = (new_inner, new_w32) if self._mp_state_first else (new_w32, new_inner)
        return new_w32.astype(weight.dtype), new_state

    @_x64
    def fused_step(
        self, index: int, weight: jax.Array, grad: jax.Array, state: Pytree,
        lr: Any, wd: Any, rescale_grad: Any, t: Any,
    ) -> tuple[jax.Array, Pytree]:
        """Pure update of parameter ``index``: returns ``(new_weight, new_state)``.

        ``state`` comes from ``create_state_arrays``; ``lr``, ``wd`` (multipliers applied),
        ``rescale_grad`` and ``t`` (update count, 1-based) may be traced scalars; the
        hyper-parameters and ``clip_gradient`` are read from ``self`` as static values.
        """
        if self._uses_master_copy(weight):
            return self._mp_step(index, weight, grad, state, lr, wd, rescale_grad, t)
        return self._step(index, weight, grad, state, lr, wd, rescale_grad, t)

    def _clip_attr(self) -> float:
        """``clip_gradient`` as an operator attribute: MXNet passes it only when truthy."""
        return float(self.clip_gradient) if self.clip_gradient else -1.0

    # -- MXNet's eager API on NDArrays --------------------------------------

    @_x64
    def create_state(self, index: int, weight: Any) -> Pytree:
        """The state of ``weight`` (an NDArray) as NDArrays, in the weight's precision."""
        state = self._state_arrays(index, jnp.asarray(_data(weight)))
        return _wrap(state, getattr(weight, "_ctx", None))

    @_x64
    def create_state_multi_precision(self, index: int, weight: Any) -> Pytree:
        """The state of ``weight`` (an NDArray), with the float32 master copy if applicable.

        As in MXNet this calls ``self.create_state`` (on the float32 master copy when
        there is one), so MXNet-style subclasses overriding ``create_state`` work.
        """
        data = jnp.asarray(_data(weight))
        if self._uses_master_copy(data):
            weight32 = _ndarray_class()(data.astype(jnp.float32), getattr(weight, "_ctx", None))
            inner = self.create_state(index, weight32)
            return (inner, weight32) if self._mp_state_first else (weight32, inner)
        if _is_float16(data.dtype):
            warnings.warn(
                "Accumulating with float16 in optimizer can lead to poor accuracy or slow "
                "convergence. Consider using multi_precision=True option of the optimizer",
                stacklevel=2,
            )
        return self.create_state(index, weight)

    @_x64
    def update(self, index: Any, weight: Any, grad: Any, state: Pytree) -> None:
        """Update ``weight`` (NDArray) in place from ``grad`` and ``state`` (states in place).

        ``index``, ``weight``, ``grad`` and ``state`` may also be lists (one entry per
        parameter), as MXNet's aggregated updates pass them.
        """
        self._eager(index, weight, grad, state, multi_precision=False)

    @_x64
    def update_multi_precision(self, index: Any, weight: Any, grad: Any, state: Pytree) -> None:
        """Like ``update``, going through the float32 master copy for float16 weights.

        As in MXNet, unless the optimizer has its own multi-precision operators (``SGD``,
        ``NAG``, ``LARS``, ``LAMB``) this calls ``self.update`` on the master copy with a
        float32 copy of the gradient, then casts the master copy into ``weight``; without
        a master copy it is ``self.update``.
        """
        if self._native_mp:
            self._eager(index, weight, grad, state, multi_precision=None)
            return
        if isinstance(index, (list, tuple)):
            for i, w, g, s in zip(index, weight, grad, state, strict=True):
                self.update_multi_precision(i, w, g, s)
            return
        if self._uses_master_copy(jnp.asarray(_data(weight))):
            weight32, inner = state
            grad32 = _ndarray_class()(jnp.asarray(_data(grad)).astype(jnp.float32))
            self.update(index, weight32, grad32, inner)
            weight._set_data(jnp.asarray(weight32._data).astype(jnp.asarray(weight._data).dtype))
        else:
            self.update(index, weight, grad, state)

    def _eager(self, index, weight, grad, state, multi_precision) -> None:
        if isinstance(index, (list, tuple)):
            for i, w, g, s in zip(index, weight, grad, state, strict=True):
                self._eager(i, w, g, s, multi_precision)
            return
        w = jnp.asarray(_data(weight))
        g = jnp.asarray(_data(grad))
        mp = self._uses_master_copy(w) if multi_precision is None else multi_precision
        lr, wd, t = self.prepare_update(index)
        step = self._mp_step if mp else self._step
        new_w, new_state = step(
            index, w, g, _unwrap(state), lr, wd, self.rescale_grad, t
        )
        weight._set_data(new_w.astype(w.dtype))
        _write_back(state, new_state)


register = Optimizer.register
create = Optimizer.create_optimizer


@functools.cache
def _fused(cls: type) -> bool:
    """``supports_fused_step`` of the class ``cls`` (a property of the class alone)."""
    mro = cls.__mro__

    def owner(name: str) -> int:
        return next(i for i, klass in enumerate(mro) if name in vars(klass))

    step_owner = owner("_step")
    if mro[step_owner] is Optimizer:
        return False
    eager = ("update", "update_multi_precision", "create_state",
             "create_state_multi_precision")
    return all(owner(name) >= step_owner for name in eager)


_BATCHED_PREPARE = {Optimizer.prepare_update}
"""``prepare_update`` functions that ``prepare_updates`` may batch (see there)."""


def batched_prepare(fn: Callable) -> Callable:
    """Mark a ``prepare_update`` that is the base one plus ``_check_prepared`` (batchable)."""
    _BATCHED_PREPARE.add(fn)
    return fn


class Updater:
    """Applies an optimizer to ``(index, grad, weight)`` triples, keeping the states.

    ``updater(index, grad, weight)`` (indices/grads/weights may be lists) creates the
    state of an index on first use with ``create_state_multi_precision`` and calls
    ``update_multi_precision``. ``get_states``/``set_states`` (de)serialize the states and
    optionally the optimizer without pickle (see :mod:`hybrid.optimizer.states`).
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.states: dict = {}
        self.states_synced: dict = {}
        self.aggregate_updates = optimizer.aggregate_num > 0

    @_x64
    def __call__(self, index: Any, grad: Any, weight: Any) -> None:
        """Update ``weight`` from ``grad`` for ``index`` (or lists of them)."""
        if not isinstance(index, (list, tuple)):
            indices, grads, weights = [index], [grad], [weight]
        else:
            indices, grads, weights = list(index), list(grad), list(weight)
        for i, idx in enumerate(indices):
            if isinstance(idx, bytes):
                indices[i] = idx = idx.decode()
            if idx not in self.states:
                self.states[idx] = self.optimizer.create_state_multi_precision(idx, weights[i])
                self.states_synced[idx] = True
            elif not self.states_synced[idx]:
                self.states[idx] = self.sync_state_context(self.states[idx], None)
                self.states_synced[idx] = True
        for i, w, g in zip(indices, weights, grads, strict=True):
            self.optimizer.update_multi_precision(i, w, g, self.states[i])

    def sync_state_context(self, state: Pytree, context: Any) -> Pytree:
        """Move ``state`` to ``context`` (a no-op unless the arrays support ``as_in_context``)."""
        if state is None:
            return None
        if isinstance(state, (tuple, list)):
            synced = [self.sync_state_context(s, context) for s in state]
            return tuple(synced) if isinstance(state, tuple) else synced
        if context is not None and hasattr(state, "as_in_context"):
            return state.as_in_context(context)
        return state

    @_x64
    def set_states(self, states: bytes) -> None:
        """Load states from ``get_states`` bytes or an MXNet 1.9 ``get_states`` pickle.

        Never unpickles arbitrary objects: see :mod:`hybrid.optimizer.states` for the
        format and for what an MXNet pickle may contain (anything else is refused with
        ``pickle.UnpicklingError``). If the bytes hold an optimizer it replaces
        ``self.optimizer``.
        """
        from .states import loads_states

        loaded, optimizer = loads_states(states)
        if optimizer is not None:
            self.optimizer = optimizer
        self.states = {k: _from_numpy(v) for k, v in loaded.items()}
        self.states_synced = dict.fromkeys(self.states.keys(), False)

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """The states (and with ``dump_optimizer`` the optimizer) as bytes.

        The bytes are an MXNet NDArray dict file with a JSON header, not a pickle (see
        :mod:`hybrid.optimizer.states`); ``set_states`` reads them back.
        """
        from .states import dumps_states

        return dumps_states(self.states, self.optimizer if dump_optimizer else None)


def get_updater(optimizer: Optimizer) -> Updater:
    """An ``Updater`` closure for ``optimizer`` (as kvstore uses it)."""
    return Updater(optimizer)
