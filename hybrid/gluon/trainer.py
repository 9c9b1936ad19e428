"""``gluon.Trainer``: applies an optimizer to a set of parameters.

``step(batch_size)`` sets ``rescale_grad = scale / batch_size`` (MXNet's rule:
gradients are sums over the batch) and updates every parameter in one compiled
call over the pytrees of weights, gradients and optimizer states. The states'
buffers are donated to the call, and so are the weights' unless some other handle
still shares one of them. Learning rate, weight decay, the rescale factor and the
update counts are traced arguments, so changing them never recompiles.

Parameters on several contexts follow MXNet 1.9 with a local kvstore in one
process. With ``kvstore`` ``'device'``/``'local'`` (any non-distributed name) the
gradients of the contexts are summed. By default (``update_on_kvstore`` None, the
``MXNET_UPDATE_ON_KVSTORE`` environment variable unset or 1) the update happens "on
the kvstore": the summed gradient updates one stored weight (initialised from the
first context's copy) that is copied to every context, the gradients stay per
context, and ``allreduce_grads``/``update`` are refused as in MXNet. With
``update_on_kvstore=False`` the sum is written back to every context's gradient and
each copy is updated with its own optimizer state. ``kvstore=None`` sums nothing.

A parameter's gradient is "fresh" once a backward wrote it; ``step`` clears the flag
and refuses (raises ``UserWarning``, as MXNet does) a stale gradient unless
``ignore_stale_grad=True``, which skips the stale parameters.
"""

from __future__ import annotations

import itertools
import os
import sys
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lowering import x64
from lowering.compile_cache import CompileCache
from lowering.compile_cache import key as cache_key

from .. import optimizer as _opt
from ..engine import steps as _steps
from ..ndarray.ndarray import NDArray
from .parameter import Parameter, ParameterDict, _put

_OWN_REFS = 4
"""References to a weight's jax array while ``_unshared`` looks at it: its NDArray
handle, the ``weights`` tuple, the loop variable and ``getrefcount``'s argument."""

_LOCAL_MAX_UPDATE_ON_KVSTORE = 1024 * 1024 * 16
"""MXNet's ``'local'`` kvstore updates on the store only while every parameter has at
most this many elements."""


def _unshared(arrays: tuple) -> bool:
    """Whether every array is held only by its parameter, so its buffer may be donated.

    Another holder (a ``detach()``-ed handle, ``set_data(other)``, a retained autograd
    graph, a user's variable) would see its buffer deleted by donation; then the step
    runs without donating the weights (correct, a little slower).
    """
    return all(sys.getrefcount(a) <= _OWN_REFS for a in arrays)


def _check_kvstore_options(kvstore: Any, compression_params: Any, update_on_kvstore: Any,
                           n_contexts: int) -> None:
    """Refuse the kvstore options hybrid cannot honour exactly (instead of ignoring them)."""
    if kvstore is not None and not isinstance(kvstore, str):
        raise TypeError(
            f"kvstore must be a str, a KVStore (mx.kv.create) or None, got "
            f"{type(kvstore).__name__}")
    if isinstance(kvstore, str) and any(k in kvstore for k in ("async", "horovod", "byteps",
                                                                  "p3")):
        raise NotImplementedError(
            f"kvstore={kvstore!r} is not implemented in hybrid; use 'dist_sync' (several "
            "processes), 'device' or 'local' (several contexts in one process)")
    has_kvstore = kvstore is not None and (n_contexts > 1 or "dist" in kvstore)
    if compression_params and has_kvstore:
        raise NotImplementedError(
            f"compression_params={compression_params!r}: gradient compression is not "
            "implemented in hybrid (MXNet would compress the gradients summed over "
            f"{n_contexts} contexts)")
    if update_on_kvstore and not has_kvstore:
        raise ValueError(
            "update_on_kvstore=True needs a kvstore, and there is none with "
            + ("kvstore=None" if kvstore is None else "a single context")
            + "; leave update_on_kvstore unset (MXNet fails on this setting too)")


def _stale_grad_error(param: Parameter, value: NDArray) -> UserWarning:
    return UserWarning(
        f"Gradient of Parameter `{param.name}` on context {value.context} has not been "
        "updated by backward since last `step`. This could mean a bug in your model that "
        "made it only use a subset of the Parameters (Blocks) for this iteration. If you "
        "are intentionally only using a subset, call step with ignore_stale_grad=True to "
        "suppress this warning and skip updating of Parameters with stale gradient")


def _copy_state(state: Any, ctx) -> Any:
    """An independent copy of an optimizer state on ``ctx`` (for another context's updater)."""
    def leaf(a):
        if isinstance(a, NDArray):
            return NDArray(_put(jnp.copy(a._data), ctx), ctx=ctx)
        return _put(jnp.copy(a), ctx) if isinstance(a, jax.Array) else a

    return jax.tree_util.tree_map(leaf, state, is_leaf=lambda a: isinstance(a, NDArray))


UPDATES = CompileCache("trainer update", maxsize=256)
SUMS = CompileCache("gradient sum", maxsize=64)


def _sum_program(counts: tuple[int, ...]):
    """``[[g_ctx0, g_ctx1, ...] per parameter] -> [sum per parameter]``, summed left to
    right (one compiled call for all parameters)."""
    k = cache_key(contexts=counts)
    fn = SUMS.get("sum", k)
    if fn is None:
        def run(lists):
            out = []
            for grads in lists:
                total = grads[0]
                for g in grads[1:]:
                    total = total + g
                out.append(total)
            return out

        fn = SUMS.jit("sum", k, run)
    return fn
"""Compiled update steps of every Trainer (one per set of updated parameters)."""
_serial = itertools.count()


class Trainer:
    """Updates ``params`` with ``optimizer`` (a name such as ``'sgd'`` or an Optimizer).

    ``kvstore`` may be ``'device'``, ``'local'`` (or another non-distributed name, which
    MXNet treats as local), ``'dist_sync'``/``'dist_device_sync'`` (several processes,
    :mod:`hybrid.kvstore`), a store made by ``mx.kv.create`` (its type decides), or
    None; ``dist_async`` and gradient compression are refused. ``update_on_kvstore``
    chooses where several contexts' summed gradient is applied (see the module
    docstring). The Trainer emulates a local store itself: it does not set its
    optimizer on a KVStore object given to it.
    """

    def __init__(self, params, optimizer, optimizer_params: dict | None = None,
                 kvstore: Any = "device", compression_params: Any = None,
                 update_on_kvstore: bool | None = None) -> None:
        if isinstance(params, (dict, ParameterDict)):
            params = [params[k] for k in sorted(params.keys())]  # MXNet's index order
        if not isinstance(params, (list, tuple)):
            raise ValueError("First argument must be a list or dict of Parameters, "
                             f"got {type(params)}.")
        self._params: list[Parameter] = []
        seen: set[int] = set()
        for p in params:
            if not isinstance(p, Parameter):
                raise ValueError("First argument must be a list or dict of Parameters, "
                                 f"got list of {type(p)}.")
            if id(p) not in seen:
                seen.add(id(p))
                self._params.append(p)
        self._param2idx = {id(p): i for i, p in enumerate(self._params)}
        self._contexts = self._check_contexts()
        self._multi = len(self._contexts) > 1
        from ..kvstore import KVStore

        self._kv_object = kvstore if isinstance(kvstore, KVStore) else None
        if self._kv_object is not None:  # a store made by mx.kv.create: its kind decides
            kvstore = kvstore.type
        _check_kvstore_options(kvstore, compression_params, update_on_kvstore,
                               len(self._contexts))
        optimizer_params = dict(optimizer_params or {})
        param_dict = dict(enumerate(self._params))
        if isinstance(optimizer, _opt.Optimizer):
            if optimizer_params:
                raise ValueError("optimizer_params must be None if optimizer is an instance of "
                                 "Optimizer instead of str")
            self._optimizer = optimizer
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = _opt.create(optimizer, param_dict=param_dict, **optimizer_params)
        self._scale = float(self._optimizer.rescale_grad)
        self._compression_params = compression_params
        self._kvstore_params = {"kvstore": kvstore, "update_on_kvstore": update_on_kvstore}
        self._states: dict[int, Any] = {}
        self._ctx_states: list[dict] | None = None
        self._owner = f"trainer{next(_serial)}"
        self._programs: dict[tuple, tuple] = {}  # indices -> (optimizer, pure update)
        weakref.finalize(self, UPDATES.drop, self._owner)  # its programs go with it
        self._kv_initialized = False
        self._kvstore: str | None = None
        self._update_on_kvstore: bool | None = None
        self._kv_weights: dict[int, jax.Array] = {}
        self._dist: Any = None  # the dist kvstore summing over processes, if any
        self._params_to_init: list[Parameter] = []
        for p in self._params:
            p._set_trainer(self)
        self._reset_kvstore()

    def _check_contexts(self) -> list:
        contexts = None
        for param in self._params:
            ctx = param.list_ctx()
            if contexts is not None and contexts != ctx:
                raise AssertionError(
                    f"All Parameters must be initialized on the same set of contexts, but "
                    f"Parameter {param.name} is initialized on {ctx} while previous Parameters "
                    f"are initialized on {contexts}.")
            contexts = ctx
        return contexts or []

    # ------------------------------------------------------------- kvstore
    def _reset_kvstore(self) -> None:
        """Forget the (emulated) kvstore; it is rebuilt on the next step, as MXNet's is."""
        if self._kv_initialized and self._update_on_kvstore:
            self._states = {}  # the optimizer state lived in the dropped kvstore's updater
        self._kv_initialized = False
        self._kvstore = None
        self._update_on_kvstore = None
        self._kv_weights = {}
        self._params_to_init = list(self._params)

    def _init_kvstore(self) -> None:
        kvstore = self._kvstore_params["kvstore"]
        if kvstore is not None and "dist" in kvstore:
            # Several processes: each sums over its contexts, the dist store sums over
            # processes, and every process applies the same update to its copy (MXNet's
            # servers compute that update once; the weights are the same).
            from .. import kvstore as _kv

            self._dist = self._kv_object if isinstance(self._kv_object, _kv.DistKVStore) \
                else _kv.create(kvstore)
            update = bool(int(os.getenv("MXNET_UPDATE_ON_KVSTORE", "1")))
            if self._kvstore_params["update_on_kvstore"] is not None:
                update = bool(self._kvstore_params["update_on_kvstore"])
            self._kvstore, self._update_on_kvstore = kvstore, update
        elif kvstore is None or not self._multi:
            # MXNet creates no kvstore for a single context.
            self._kvstore, self._update_on_kvstore = None, None
        else:
            update = bool(int(os.getenv("MXNET_UPDATE_ON_KVSTORE", "1")))
            if kvstore == "local" and max(
                    int(np.prod(p.shape or (0,))) for p in self._params) \
                    > _LOCAL_MAX_UPDATE_ON_KVSTORE:
                update = False
            if self._kvstore_params["update_on_kvstore"] is not None:
                update = bool(self._kvstore_params["update_on_kvstore"])
            self._kvstore, self._update_on_kvstore = kvstore, update
        self._kv_initialized = True

    def _init_params(self) -> None:
        """Broadcast the first context's value of each parameter to every context (and
        into the store), as MXNet's kvstore ``broadcast`` does; deferred ones wait."""
        pending = []
        for p in self._params_to_init:
            if p._var_nd is None:
                pending.append(p)
                continue
            if self._kvstore is None:
                continue
            values = p.list_data()
            source = values[0]._data
            if self._dist is not None:  # rank 0's value everywhere
                source = jax.device_put(self._dist._hosts.broadcast_one_to_all(source),
                                        values[0].context.jax_device)
                values[0]._set_data(source)
            for v in values[1:]:
                v._set_data(_put(source, v._ctx))
            if self._update_on_kvstore and self._dist is None:
                self._kv_weights[self._param2idx[id(p)]] = source
        self._params_to_init = pending

    def _prepare(self) -> None:
        if not self._kv_initialized:
            self._init_kvstore()
        if self._params_to_init:
            self._init_params()

    # ---------------------------------------------------------- public API
    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @property
    def optimizer(self):
        return self._optimizer

    def set_learning_rate(self, lr: float) -> None:
        """Set the base learning rate (not with a scheduler attached)."""
        self._optimizer.set_learning_rate(lr)

    @x64.scoped
    def step(self, batch_size: float, ignore_stale_grad: bool = False) -> None:
        """One update with ``rescale_grad = rescale / batch_size``: ``allreduce_grads``
        then ``update``. ``ignore_stale_grad`` skips parameters no backward reached."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._prepare()
        if self._multi or self._dist is not None:
            self._allreduce_grads()
        self._update(ignore_stale_grad)

    def compile_step(self, net: Any, loss_fn: Any, return_outputs: bool = False):
        """A :class:`~hybrid.gluon.train_step.TrainStep`: ``step(data, label)`` runs
        ``record(); loss_fn(net(data), label); backward(); self.step(batch)`` as one
        compiled program and returns the loss (and the output with ``return_outputs``).
        hybrid's own API (MXNet has none): the plain loop is captured the same way."""
        from .train_step import TrainStep

        return TrainStep(self, net, loss_fn, return_outputs)

    @x64.scoped
    def allreduce_grads(self) -> None:
        """Sum each parameter's gradients over its contexts into every context's gradient
        (nothing to do with one context); not with ``update_on_kvstore``."""
        self._prepare()
        if self._kvstore is not None and self._update_on_kvstore:
            raise AssertionError(
                "allreduce_grads() when parameters are updated on kvstore is not supported. "
                "Try setting `update_on_kvstore` to False when creating trainer.")
        self._allreduce_grads()

    @x64.scoped
    def update(self, batch_size: float, ignore_stale_grad: bool = False) -> None:
        """Like ``step`` without ``allreduce_grads`` (after calling it yourself)."""
        self._prepare()
        if self._kvstore is not None and self._update_on_kvstore:
            raise AssertionError(
                "update() when parameters are updated on kvstore is not supported. Try "
                "setting `update_on_kvstore` to False when creating trainer.")
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    # ----------------------------------------------------------- internals
    def _values(self, param: Parameter) -> list[NDArray]:
        """The parameter's copies, checked against the contexts the trainer was built for."""
        values = param.list_data()
        if len(values) != len(self._contexts) or (
                self._multi and param.list_ctx() != self._contexts):
            raise RuntimeError(
                f"Parameter '{param.name}' is on contexts {param.list_ctx()} but this Trainer "
                f"was created for {self._contexts}; create the Trainer after reset_ctx")
        return values

    def _allreduce_grads(self) -> None:
        if self._kvstore is None:
            return
        reduced, summed = [], []
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            summed.append((i, p, [v._grad for v in self._values(p)], None))
        # Every parameter's gradients summed in one program on the first context's
        # device (MXNet's 'device' store reduces on one device too), in context order.
        first = summed[0][2][0]._data if summed else None
        totals = _sum_program(tuple(len(grads) for _, _, grads, _ in summed))(
            [[_put(g._data, None, first) for g in grads] for _, _, grads, _ in summed])
        summed = [(i, p, grads, t) for (i, p, grads, _), t in zip(summed, totals)]
        if self._dist is not None:  # one exchange for every parameter
            totals = self._dist._merge([t for _, _, _, t in summed])
            summed = [(i, p, grads, t) for (i, p, grads, _), t in zip(summed, totals)]
        for i, p, grads, total in summed:
            if self._update_on_kvstore and self._dist is None:
                reduced.append((i, p, total))
            else:
                for g in grads:
                    g._set_data(_put(total, g._ctx))
        if reduced:
            self._update_on_store(reduced)

    def _update_on_store(self, reduced: list) -> None:
        """The kvstore's update: the summed gradient updates the stored weight, which is
        then copied ("pulled") to every context."""
        indices = [i for i, _, _ in reduced]
        stored = [NDArray(self._kv_weights[i]) for i in indices]
        for v, (_, _, total) in zip(stored, reduced):
            v._grad = NDArray(total)
        self._apply(indices, stored, self._states, donate=False)
        for v, (i, p, _) in zip(stored, reduced):
            self._kv_weights[i] = v._data
            for copy in p.list_data():
                copy._set_data(_put(v._data, copy._ctx))

    def _update(self, ignore_stale_grad: bool = False) -> None:
        if self._multi:
            self._update_multi(ignore_stale_grad)
            return
        indices, values = [], []
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            v = p._check_initialized()
            if p._copies is not None:
                self._values(p)  # raises: the parameter moved to several contexts
            if not getattr(v, "_fresh_grad", False):
                if not ignore_stale_grad:
                    raise _stale_grad_error(p, v)
                continue
            v._fresh_grad = False
            indices.append(i)
            values.append(v)
        if indices:
            self._apply(indices, values, self._states, donate=True)

    def _update_multi(self, ignore_stale_grad: bool) -> None:
        on_store = self._kvstore is not None and self._update_on_kvstore and self._dist is None
        per_ctx: list[tuple[list, list]] = [([], []) for _ in self._contexts]
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            values = self._values(p)
            if not ignore_stale_grad:
                for v in values:
                    if not getattr(v, "_fresh_grad", False):
                        raise _stale_grad_error(p, v)
            if on_store:
                continue  # MXNet neither skips nor clears the flags here
            for (indices, vals), v in zip(per_ctx, values):
                if not ignore_stale_grad or getattr(v, "_fresh_grad", False):
                    indices.append(i)
                    vals.append(v)
                    v._fresh_grad = False
        if on_store:
            return
        states = self._context_states()
        opt = self._optimizer
        for ctx, (indices, vals), st in zip(self._contexts, per_ctx, states):
            if indices:
                opt._set_current_context(ctx.device_id)  # MXNet's per-device update counts
                self._apply(indices, vals, st, donate=False)

    def _context_states(self) -> list[dict]:
        """One optimizer-state dict per context (the first is ``_states``, which
        ``save_states`` writes). When ``_states`` was replaced (``load_states``) every
        context restarts from a copy of it, as MXNet's ``load_states`` sets all updaters."""
        if self._ctx_states is None or self._ctx_states[0] is not self._states:
            self._ctx_states = [self._states] + [
                {i: _copy_state(s, ctx) for i, s in self._states.items()}
                for ctx in self._contexts[1:]]
        return self._ctx_states

    def _apply(self, indices: list[int], values: list, states: dict, donate: bool) -> None:
        """Update ``values`` (NDArrays with ``_grad``) in place with ``states``."""
        opt = self._optimizer
        if not getattr(opt, "supports_fused_step", True):
            self._update_eager(indices, values, states)
            return
        for i, v in zip(indices, values):
            if i not in states:
                states[i] = opt.create_state_arrays(i, v._data)
        # prepare_update advances the counters and reads the schedule in MXNet's order.
        lrs, wds, ts = opt.prepare_updates(indices)
        key = tuple(indices)
        st = tuple(states[i] for i in indices)
        hyper = (lrs, wds, np.float64(opt.rescale_grad), ts)

        def assign(result) -> None:
            new_w, new_s = result
            for v, w in zip(values, new_w):
                v._set_data(w)
            for i, s in zip(indices, new_s):
                states[i] = s

        if not self._multi and any(_steps.pending_in_open_capture(v._grad) for v in values):
            # The gradients come from a captured backward: the update joins that program,
            # and the step runs as one (see hybrid.engine).
            owner = (self._owner, id(opt), key)
            if _steps.capture_update(owner, self._update_program(key), values, st, hyper,
                                     assign):
                return
        weights = tuple(v._data for v in values)
        grads = tuple(v._grad._data for v in values)
        assign(self._step_fn(key, donate and _unshared(weights))(weights, grads, st, *hyper))

    def _update_program(self, indices: tuple[int, ...]):
        """The pure update of the parameters ``indices``: ``(weights, grads, states, lrs,
        wds, rescale, ts) -> (new weights, new states)`` (one per optimizer and set)."""
        found = self._programs.get(indices)
        if found is not None and found[0] is self._optimizer:
            return found[1]
        # Weakly: the shared caches must not keep the optimizer (and through its
        # param_dict the whole network) alive; it is traced only while in use.
        opt_ref = weakref.ref(self._optimizer)

        def run(weights, grads, states, lrs, wds, rescale, ts):
            opt = opt_ref()
            new_w, new_s = [], []
            for k, i in enumerate(indices):
                w, s = opt.fused_step(i, weights[k], grads[k], states[k], lrs[k], wds[k],
                                      rescale, ts[k])
                new_w.append(w.astype(weights[k].dtype))
                new_s.append(s)
            return tuple(new_w), tuple(new_s)

        self._programs[indices] = (self._optimizer, run)
        return run

    def _step_fn(self, indices: tuple[int, ...], donate_weights: bool):
        k = cache_key(params=indices, donate_weights=donate_weights)
        fn = UPDATES.get(self._owner, k)
        if fn is None:
            donate = (0, 2) if donate_weights else (2,)
            fn = UPDATES.jit(self._owner, k, self._update_program(indices),
                             donate_argnums=donate)
        return fn

    def _update_eager(self, indices: list[int], values: list, states: dict) -> None:
        """User optimizers that override ``update`` with NDArray code run one by one."""
        opt = self._optimizer
        for i, v in zip(indices, values):
            if i not in states:
                states[i] = opt.create_state_multi_precision(i, v)
            opt.update_multi_precision(i, v, v._grad, states[i])

    def save_states(self, fname: str) -> None:
        """Save the optimizer and its states to ``fname``, atomically, without pickle.

        The file is an MXNet NDArray dict file (the ``.params`` format) whose JSON header
        entry records the state structure and the optimizer's attributes (update counts,
        ``num_update``, hyper-parameters, scheduler); see :mod:`hybrid.optimizer.states`.
        As in MXNet, ``optimizer.param_dict`` is not saved.
        """
        from lowering.serialization import write_atomic

        from ..optimizer.states import dumps_states

        write_atomic(fname, dumps_states(self._states, self._optimizer))

    @x64.scoped
    def load_states(self, fname: str) -> None:
        """Load states written by ``save_states`` or by MXNet 1.9's ``Trainer.save_states``.

        Nothing in the file is executed: hybrid's files are parsed as data, and MXNet's
        pickles go through a restricted unpickler that admits only NDArrays, MXNet
        optimizers and schedulers (anything else raises ``pickle.UnpicklingError``). The
        loaded optimizer replaces this trainer's, with ``param_dict`` set from the
        trainer's parameters, as in MXNet.
        """
        from ..optimizer.optimizer import _from_numpy
        from ..optimizer.states import loads_states

        with open(fname, "rb") as f:
            states, opt = loads_states(f.read(), plain_schedule=False)
        if opt is None:
            opt = self._optimizer
        if getattr(opt, "supports_fused_step", True):
            self._states = {i: jax.tree_util.tree_map(jax.numpy.asarray, s)
                            for i, s in states.items()}
        else:
            self._states = {i: _from_numpy(s) for i, s in states.items()}
        opt.param_dict = dict(enumerate(self._params))
        self._optimizer = opt
        UPDATES.drop(self._owner)



