"""``gluon.Trainer``: applies an optimizer to a set of parameters.

``step(batch_size)`` sets ``rescale_grad = scale / batch_size`` (MXNet's rule:
gradients are sums over the batch) and updates every parameter in one compiled
call over the pytrees of weights, gradients and optimizer states. The states'
buffers are donated to the call, and so are the weights' unless some other handle
still shares one of them. Learning rate, weight decay, the rescale factor and the
update counts are traced arguments, so changing them never recompiles.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import numpy as np

from .. import optimizer as _opt
from .parameter import Parameter, ParameterDict

_OWN_REFS = 4
"""References to a weight's jax array while ``_unshared`` looks at it: its NDArray
handle, the ``weights`` tuple, the loop variable and ``getrefcount``'s argument."""


def _unshared(arrays: tuple) -> bool:
    """Whether every array is held only by its parameter, so its buffer may be donated.

    Another holder (a ``detach()``-ed handle, ``set_data(other)``, a retained autograd
    graph, a user's variable) would see its buffer deleted by donation; then the step
    runs without donating the weights (correct, a little slower).
    """
    return all(sys.getrefcount(a) <= _OWN_REFS for a in arrays)


class Trainer:
    """Updates ``params`` with ``optimizer`` (a name such as ``'sgd'`` or an Optimizer)."""

    def __init__(self, params, optimizer, optimizer_params: dict | None = None,
                 kvstore: Any = "device", compression_params: Any = None,
                 update_on_kvstore: bool | None = None) -> None:
        if isinstance(params, (dict, ParameterDict)):
            params = list(params.values())
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
        optimizer_params = dict(optimizer_params or {})
        self._scale = float(optimizer_params.get("rescale_grad", 1.0))
        param_dict = dict(enumerate(self._params))
        if isinstance(optimizer, _opt.Optimizer):
            if optimizer_params:
                raise ValueError("optimizer_params must be None if optimizer is an instance of "
                                 "Optimizer instead of str")
            self._optimizer = optimizer
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = _opt.create(optimizer, param_dict=param_dict, **optimizer_params)
        self._kvstore = kvstore
        self._update_on_kvstore = update_on_kvstore
        self._states: dict[int, Any] = {}
        self._compiled: dict[tuple, Any] = {}

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    @property
    def optimizer(self):
        return self._optimizer

    def set_learning_rate(self, lr: float) -> None:
        """Set the base learning rate (not with a scheduler attached)."""
        self._optimizer.set_learning_rate(lr)

    def allreduce_grads(self) -> None:
        """Sum gradients across devices (a no-op with one copy per parameter)."""

    def step(self, batch_size: float, ignore_stale_grad: bool = False) -> None:
        """One update with ``rescale_grad = rescale / batch_size``."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def update(self, batch_size: float, ignore_stale_grad: bool = False) -> None:
        """Like ``step`` without ``allreduce_grads`` (after calling it yourself)."""
        self.step(batch_size, ignore_stale_grad)

    def _step_fn(self, indices: tuple[int, ...], donate_weights: bool):
        fn = self._compiled.get((indices, donate_weights))
        if fn is None:
            opt = self._optimizer

            def run(weights, grads, states, lrs, wds, rescale, ts):
                new_w, new_s = [], []
                for k, i in enumerate(indices):
                    w, s = opt.fused_step(i, weights[k], grads[k], states[k], lrs[k], wds[k],
                                          rescale, ts[k])
                    new_w.append(w.astype(weights[k].dtype))
                    new_s.append(s)
                return tuple(new_w), tuple(new_s)

            donate = (0, 2) if donate_weights else (2,)
            fn = self._compiled[(indices, donate_weights)] = jax.jit(run, donate_argnums=donate)
        return fn

    def _update(self, ignore_stale_grad: bool = False) -> None:
        indices, values = [], []
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            indices.append(i)
            values.append(p._check_initialized())
        if not indices:
            return
        opt = self._optimizer
        if not getattr(opt, "supports_fused_step", True):
            self._update_eager(indices, values)
            return
        for i, v in zip(indices, values):
            if i not in self._states:
                self._states[i] = opt.create_state_arrays(i, v._data)
        # prepare_update advances the counters and reads the schedule in MXNet's order.
        lrs, wds, ts = zip(*(opt.prepare_update(i) for i in indices))
        lrs = np.asarray(lrs, dtype=np.float64)
        wds = np.asarray(wds, dtype=np.float64)
        ts = np.asarray(ts, dtype=np.int64)
        key = tuple(indices)
        weights = tuple(v._data for v in values)
        grads = tuple(v._grad._data for v in values)
        states = tuple(self._states[i] for i in indices)
        new_w, new_s = self._step_fn(key, _unshared(weights))(
            weights, grads, states, lrs, wds, np.float64(opt.rescale_grad), ts)
        for v, w in zip(values, new_w):
            v._set_data(w)
        for i, s in zip(indices, new_s):
            self._states[i] = s

    def _update_eager(self, indices: list[int], values: list) -> None:
        """User optimizers that override ``update`` with NDArray code run one by one."""
        opt = self._optimizer
        for i, v in zip(indices, values):
            if i not in self._states:
                self._states[i] = opt.create_state_multi_precision(i, v)
            opt.update_multi_precision(i, v, v._grad, self._states[i])

    def save_states(self, fname: str) -> None:
        """Save the optimizer and its states (a pickle of numpy arrays), atomically."""
        import pickle

        from lowering.serialization import write_atomic

        states = {i: jax.tree_util.tree_map(np.asarray, s) for i, s in self._states.items()}
        write_atomic(fname, pickle.dumps({"states": states, "optimizer": self._optimizer}))

    def load_states(self, fname: str) -> None:
        """Load states saved by ``save_states``."""
        import pickle

        with open(fname, "rb") as f:
            payload = pickle.load(f)
        self._states = {i: jax.tree_util.tree_map(jax.numpy.asarray, s)
                        for i, s in payload["states"].items()}
        opt = payload["optimizer"]
        opt.param_dict = dict(enumerate(self._params))
        self._optimizer = opt
        self._compiled.clear()



