"""``Trainer.compile_step``: a whole training step as one compiled program, explicitly.

The plain Gluon loop is already captured into one program per step (see
:mod:`hybrid.engine`); :class:`TrainStep` is the explicit route for code that owns
its loop (and for the Estimator)::

    step = trainer.compile_step(net, loss_fn)
    for x, y in loader:
        loss = step(x, y)            # one XLA execution

does what this does, with the same numbers as the hybridized loop::

    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    trainer.step(x.shape[0])

The net and the loss are traced as ``hybridize()`` traces them (whether or not they
were hybridized), so Dropout draws the hybridized loop's random numbers. Gradients
are written to ``.grad`` (``grad_req='add'`` accumulates), BatchNorm statistics are
updated, and the Trainer's optimizer states and update counts advance exactly as
``trainer.step`` advances them. The weights, optimizer states and running
statistics the step replaces are donated to it (copied first when something else
still holds them), so the step updates them in place.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lowering import x64
from lowering.compile_cache import CompileCache, key

from .. import autograd
from .. import random as _random
from ..base import MXNetError
from ..engine import capture as _capture
from ..engine.entries import _vjp_call
from ..ndarray import NDArray
from .block import HybridBlock, _dummy_key, _flatten

STEPS = CompileCache("train step", maxsize=64)
"""The compiled programs of every TrainStep, one per call structure."""


class TrainStep:
    """One training step of ``net`` under ``loss_fn`` and ``trainer`` (see the module
    docstring); made by :meth:`Trainer.compile_step`.

    Arguments:
        trainer: the Trainer whose parameters and optimizer the step updates (one
            context; several contexts run the plain loop, which is captured per device).
        net: a HybridBlock called as ``net(*data)``; it must return one array.
        loss_fn: a HybridBlock called as ``loss_fn(output, *label)``.
        return_outputs: also return the net's output (for metrics).

    Raises:
        TypeError: ``net`` or ``loss_fn`` is not a HybridBlock.
        NotImplementedError: the trainer has several contexts, updates on a kvstore, or
            its optimizer has no fused (compiled) update.
    """

    def __init__(self, trainer: Any, net: HybridBlock, loss_fn: HybridBlock,
                 return_outputs: bool = False) -> None:
        for what, block in (("net", net), ("loss_fn", loss_fn)):
            if not isinstance(block, HybridBlock):
                raise TypeError(
                    f"compile_step: {what} must be a HybridBlock (it is traced as "
                    f"hybridize() traces it), got {type(block).__name__}; run the plain "
                    "record()/backward()/step() loop for other blocks")
        self.trainer = trainer
        self.net = net
        self.loss_fn = loss_fn
        self.return_outputs = bool(return_outputs)
        self._owner = f"train step {net.name}"
        self._plans: dict[tuple, _Plan] = {}

    # ------------------------------------------------------------------ call
    @x64.scoped
    def __call__(self, data: Any, label: Any, batch_size: float | None = None,
                 ignore_stale_grad: bool = False) -> Any:
        """Run one step on ``data`` (an NDArray or a list of the net's inputs) and
        ``label`` (an NDArray or a list of the loss's inputs after the output).

        Arguments:
            batch_size: what ``trainer.step`` is given (gradients are scaled by
                ``1 / batch_size``); default the first input's ``shape[0]``.
            ignore_stale_grad: as ``trainer.step``'s: skip trainer parameters the step
                does not reach instead of raising.

        Returns:
            The loss (an NDArray, one value per sample, as ``loss_fn`` returns it),
            and the net's output too with ``return_outputs``.
        """
        trainer = self.trainer
        self._check_trainer()
        data = list(data) if isinstance(data, (list, tuple)) else [data]
        label = list(label) if isinstance(label, (list, tuple)) else [label]
        for what, group in (("data", data), ("label", label)):
            for a in group:
                if not isinstance(a, NDArray):
                    raise TypeError(f"compile_step: every {what} input must be an NDArray, "
                                    f"got {type(a).__name__}")
        if not data:
            raise ValueError("compile_step: the net needs at least one input")
        if autograd.is_recording():
            raise RuntimeError("compile_step: the step records by itself; call it outside "
                               "autograd.record()")
        ctx = trainer._contexts[0] if trainer._contexts else data[0].context
        for x in data + label:
            if x.context != ctx:
                raise ValueError(f"compile_step: an input of shape {x.shape} is on "
                                 f"{x.context} but the parameters are on {ctx}")
        if batch_size is None:
            batch_size = data[0].shape[0]
        _capture.flush()  # inputs computed by an open capture get their values
        net_args = tuple(data)
        net_cache = self.net._cache_for(net_args, _flatten(net_args)[1])
        sig = (id(net_cache), len(label), bool(ignore_stale_grad),
               tuple(x._entry is not None for x in data + label))
        plan = self._plans.get(sig)
        if plan is None or not plan.still_holds(self, net_cache, label, ctx):
            plan = self._plans[sig] = self._plan(net_cache, data, label, ctx,
                                                 ignore_stale_grad)
        trainer._optimizer.rescale_grad = trainer._scale / batch_size
        trainer._prepare()
        return self._run(plan, data, label, ctx)

    def _check_trainer(self) -> None:
        t = self.trainer
        if t._multi:
            raise NotImplementedError(
                "compile_step runs on one context; this Trainer has "
                f"{len(t._contexts)}: use the plain record()/backward()/step() loop")
        kv = t._kvstore_params["kvstore"]
        if isinstance(kv, str) and "dist" in kv:
            raise NotImplementedError(
                f"compile_step: kvstore {kv!r} sums gradients over processes between "
                "backward and update; use the plain loop")
        if not getattr(t._optimizer, "supports_fused_step", True):
            raise NotImplementedError(
                f"compile_step: optimizer {type(t._optimizer).__name__} updates with NDArray "
                "code (it overrides update()), which cannot be compiled into the step; use "
                "the plain loop")

    # ------------------------------------------------------------- planning
    def _plan(self, net_cache, data: list, label: list, ctx: Any,
              ignore_stale_grad: bool) -> _Plan:
        """What the call structure fixes: graphs, parameter lists, masks, update set."""
        if net_cache.out_structure is not None:
            raise TypeError(f"compile_step: net {self.net.name} returns several outputs; "
                            "it must return one array (the loss's prediction)")
        p_nds = [p._data_on(ctx) for p in net_cache.params]
        a_nds = [p._data_on(ctx) for p in net_cache.aux]
        spec = [(tuple(x.shape), np.dtype(x._aval().dtype)) for x in p_nds + a_nds + data]
        n_p, n_a = len(p_nds), len(a_nds)
        train = True
        out_avals, _ = net_cache.graph.abstract_call(spec[:n_p], spec[n_p:n_p + n_a],
                                                     spec[n_p + n_a:], _dummy_key(), train)
        placeholder = NDArray(jnp.zeros(out_avals[0].shape, out_avals[0].dtype), ctx=ctx)
        loss_args = (placeholder, *label)
        loss_cache = self.loss_fn._cache_for(loss_args, _flatten(loss_args)[1])
        if loss_cache.out_structure is not None:
            raise TypeError(f"compile_step: loss {self.loss_fn.name} returns several "
                            "outputs; it must return one array")
        q_nds = [p._data_on(ctx) for p in loss_cache.params]
        b_nds = [p._data_on(ctx) for p in loss_cache.aux]
        return _Plan(self, net_cache, loss_cache, placeholder, p_nds, a_nds, q_nds, b_nds,
                     data, label, ctx, ignore_stale_grad)

    # ------------------------------------------------------------------ run
    def _run(self, plan: _Plan, data: list, label: list, ctx: Any) -> Any:
        trainer = self.trainer
        opt = trainer._optimizer
        states = trainer._states
        upd = plan.update_nds
        for i, v in zip(plan.indices, upd):
            if i not in states:
                states[i] = opt.create_state_arrays(i, v._data)
        counts = opt._index_update_count
        saved = (dict(counts), opt.num_update)  # restored if the step fails to compile
        lrs, wds, ts = opt.prepare_updates(list(plan.indices)) if plan.indices else \
            (np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
        hyper = (lrs, wds, np.float64(opt.rescale_grad), ts)
        keys = [_random.next_key_parts() if cache.needs_rng else (_dummy_key(), 0)
                for cache in (plan.net_cache, plan.loss_cache)]
        device = ctx.jax_device
        flat, tree = jax.tree_util.tree_flatten([states[i] for i in plan.indices])
        fn = plan.fns.get(tree)
        if fn is None:
            k = key(plan=plan.key, states=tree)
            fn = STEPS.get(self._owner, k)
            if fn is None:  # compiles on this call; the next one keeps the executable
                # keep_unused: the replaced gradients are inputs only so that the new
                # ones are written into their buffers
                fn = STEPS.jit(self._owner, k, plan.program(trainer, tree),
                               donate_argnums=(0,), keep_unused=True)
            else:
                plan.fns[tree] = fn
        donated = _gifts(plan.donated_nds, device) + _gifts(plan.grad_nds, device)
        # Optimizer states: only the Trainer holds them; donated as trainer.step donates
        # them, committed to the device first so that every step runs one executable.
        donated.append([a if a.committed else jax.device_put(a, device, may_alias=False)
                        for a in flat])
        del flat
        kept = ([v._data for v in plan.kept_nds], [x._data for x in data + label],
                [v._grad._data for v in plan.outside_nds], hyper, keys)
        try:
            loss, out, grads, new_aux, new_w, new_s = fn(donated, kept)
        except Exception as err:  # noqa: BLE001 - a tracing error (nothing ran yet)
            counts.clear()
            counts.update(saved[0])
            opt.num_update = saved[1]
            if isinstance(err, MXNetError):
                raise
            shapes = ", ".join(str(x.shape) for x in data + label)
            raise MXNetError(f"compile_step of net {self.net.name} with loss "
                             f"{self.loss_fn.name} on inputs ({shapes}): {err}") from None
        del donated
        for v, g in zip(plan.grad_owners, grads):
            _write(v._grad, g)
            v._fresh_grad = True
        for v, a in zip(plan.aux_nds, new_aux):
            _write(v, a)
        for v, w in zip(upd, new_w):
            _write(v, w)
            v._fresh_grad = False
        for i, s in zip(plan.indices, new_s):
            states[i] = s
        loss_nd = NDArray(loss, ctx=ctx)
        return (loss_nd, NDArray(out, ctx=ctx)) if self.return_outputs else loss_nd


class _Plan:
    """The structure of one kind of call: which arrays go where in the program."""

    def __init__(self, step: TrainStep, net_cache, loss_cache, placeholder: NDArray, p_nds,
                 a_nds, q_nds, b_nds, data: list, label: list, ctx: Any,
                 ignore_stale_grad: bool) -> None:
        trainer = step.trainer
        self.net_cache, self.loss_cache = net_cache, loss_cache
        self.placeholder = placeholder
        self.traced = list(net_cache.params) + list(net_cache.aux) + \
            list(loss_cache.params) + list(loss_cache.aux)
        self.fingerprint = _fingerprint(trainer, self.traced, ctx)
        held = [p._data_on(ctx) for p in self.traced] + \
            [p._check_initialized() for p in trainer._params if p.grad_req != "null"]
        self.held = held + [v._grad for v in held]  # keeps the fingerprint's ids unique
        self.fns: dict[Any, Any] = {}  # optimizer-state structure -> compiled step
        # Every parameter array once, in order: the net's, then the loss's new ones.
        params: list = []
        pos: dict[int, int] = {}
        for v in p_nds + q_nds:
            if id(v) not in pos:
                pos[id(v)] = len(params)
                params.append(v)
        self.p_pos = tuple(pos[id(v)] for v in p_nds)
        self.q_pos = tuple(pos[id(v)] for v in q_nds)
        aux: list = []
        apos: dict[int, int] = {}
        for v in a_nds + b_nds:
            if id(v) not in apos:
                apos[id(v)] = len(aux)
                aux.append(v)
        self.aux_nds = aux
        self.a_pos = tuple(apos[id(v)] for v in a_nds)
        self.b_pos = tuple(apos[id(v)] for v in b_nds)
        # Differentiated: parameters with a gradient buffer, inputs with attach_grad().
        self.param_diff = tuple(v._entry is not None for v in params)
        inputs = data + label
        self.input_diff = tuple(
            x._entry is not None and jnp.issubdtype(x._aval().dtype, jnp.inexact)
            for x in inputs)
        self.n_data = len(data)
        variables = [v for v, d in zip(params, self.param_diff) if d] + \
            [x for x, d in zip(inputs, self.input_diff) if d]
        self.grad_owners = [v for v in variables if v._grad is not None]
        self.grad_of = tuple(v._grad is not None for v in variables)
        self.grad_reqs = tuple(v._grad_req for v in self.grad_owners)
        self.grad_dtypes = tuple(np.dtype(v._grad._aval().dtype) for v in self.grad_owners)
        self.grad_nds = [v._grad for v in self.grad_owners]  # replaced: donated
        # The Trainer's update: parameters it would update after this backward.
        reached = {id(v) for v in self.grad_owners}
        indices, upd = [], []
        for i, p in enumerate(trainer._params):
            if p.grad_req == "null":
                continue
            v = p._check_initialized()
            if id(v) in reached or getattr(v, "_fresh_grad", False):
                indices.append(i)
                upd.append(v)
            elif not ignore_stale_grad:
                from .trainer import _stale_grad_error

                raise _stale_grad_error(p, v)
        self.indices = tuple(indices)
        self.update_nds = upd
        # Where each updated weight comes from: a traced parameter (its position) or not
        # (its current value and gradient are separate inputs).
        upos = {id(v): k for k, v in enumerate(upd)}
        gpos = {id(v): k for k, v in enumerate(self.grad_owners)}
        self.upd_grad = tuple(gpos.get(id(v)) for v in upd)
        outside = [v for v in upd if id(v) not in pos]
        self.outside_nds = outside
        # Donated: the updated weights (traced or not), the running statistics and the
        # gradients (rewritten); kept: the parameters that are not updated.
        self.donated_nds = list(upd) + aux
        self.kept_nds = [v for v in params if id(v) not in upos]
        kpos = {id(v): k for k, v in enumerate(self.kept_nds)}
        self.param_src = tuple(("d", upos[id(v)]) if id(v) in upos else ("k", kpos[id(v)])
                               for v in params)
        self.n_aux = len(aux)
        self.key = key(net=net_cache.graph.serial, loss=loss_cache.graph.serial,
                       params=self.param_src, p=self.p_pos, q=self.q_pos, a=self.a_pos,
                       b=self.b_pos, param_diff=self.param_diff, input_diff=self.input_diff,
                       n_data=self.n_data, grad_of=self.grad_of, reqs=self.grad_reqs,
                       grad_dtypes=self.grad_dtypes, indices=self.indices,
                       upd_grad=self.upd_grad, outside=len(outside),
                       optimizer=id(trainer._optimizer), outputs=step.return_outputs)

    def still_holds(self, step: TrainStep, net_cache, label: list, ctx: Any) -> bool:
        """Whether this plan is still the structure of a call (same graphs, parameter
        arrays, gradient buffers and requests, and Trainer flags)."""
        if net_cache is not self.net_cache:
            return False
        loss_args = (self.placeholder, *label)
        if step.loss_fn._cache_for(loss_args, _flatten(loss_args)[1]) is not self.loss_cache:
            return False
        return _fingerprint(step.trainer, self.traced, ctx) == self.fingerprint

    def program(self, trainer: Any, state_tree: Any):
        """The pure step: ``(donated, kept) -> (loss, output, grads, aux, weights, states)``."""
        net_graph, loss_graph = self.net_cache.graph, self.loss_cache.graph
        update = trainer._update_program(self.indices)
        n_upd, n_aux, n_data = len(self.indices), self.n_aux, self.n_data
        param_src, p_pos, q_pos = self.param_src, self.p_pos, self.q_pos
        a_pos, b_pos = self.a_pos, self.b_pos
        param_diff, input_diff = self.param_diff, self.input_diff
        grad_of, reqs, grad_dtypes = self.grad_of, self.grad_reqs, self.grad_dtypes
        upd_grad = self.upd_grad
        rng = (self.net_cache.needs_rng, self.loss_cache.needs_rng)

        def run(donated, kept):
            weights, aux = donated[:n_upd], donated[n_upd:n_upd + n_aux]
            old_grads = donated[n_upd + n_aux:-1]
            states = jax.tree_util.tree_unflatten(state_tree, donated[-1])
            kept_params, inputs, outside_grads, hyper, keys = kept
            params = [weights[k] if src == "d" else kept_params[k] for src, k in param_src]
            net_key, loss_key = (jax.random.fold_in(k, c) if fold else k
                                 for (k, c), fold in zip(keys, rng))
            n_params = len(params)

            def forward(*args):  # (loss, (output, statistics)): as _vjp_call expects
                ps, xs = args[:n_params], args[n_params:]
                outs, net_stats = net_graph.pure([ps[i] for i in p_pos],
                                                 [aux[i] for i in a_pos], xs[:n_data],
                                                 net_key, True)
                losses, loss_stats = loss_graph.pure([ps[i] for i in q_pos],
                                                     [aux[i] for i in b_pos],
                                                     [outs[0], *xs[n_data:]], loss_key, True)
                return losses[0], (outs[0], net_stats, loss_stats)

            loss, (out, net_stats, loss_stats), vjp = _vjp_call(
                forward, [*params, *inputs], param_diff + input_diff)
            cts = vjp(jnp.ones(loss.shape, loss.dtype))
            grads = [ct for ct, has in zip(cts, grad_of) if has]
            new_grads = []
            for g, old, req, dt in zip(grads, old_grads, reqs, grad_dtypes):
                g = g.astype(dt)
                new_grads.append(old + g if req == "add" else g)
            new_aux = list(aux)
            for graph, positions, stats in ((net_graph, a_pos, net_stats),
                                            (loss_graph, b_pos, loss_stats)):
                if stats:
                    changed = graph.pure_commit([new_aux[i] for i in positions], stats)
                    for i, v in zip(positions, changed):
                        new_aux[i] = v
            upd_grads, it = [], iter(outside_grads)
            for g in upd_grad:
                upd_grads.append(new_grads[g] if g is not None else next(it))
            new_w, new_s = update(tuple(weights), tuple(upd_grads), states, *hyper)
            return (loss, out, tuple(new_grads), tuple(new_aux), new_w, new_s)

        return run


def _fingerprint(trainer: Any, traced: list, ctx: Any) -> tuple:
    """What a plan depends on besides the graphs: the traced parameters' arrays, whether
    they are differentiated, their gradient buffers and requests; each Trainer
    parameter's array and fresh-gradient flag. (A plan holds the arrays it names, so
    their ids are not reused while it lives.)"""
    out = []
    for p in traced:
        v = p._data_on(ctx)
        out.append((id(v), v._entry is not None, id(v._grad), v._grad_req))
    for p in trainer._params:
        if p.grad_req == "null":
            out.append(None)
        else:
            v = p._check_initialized()
            out.append((id(v), id(v._grad), getattr(v, "_fresh_grad", False)))
    return tuple(out)


def _write(array: NDArray, value: jax.Array) -> None:
    """Give ``array`` the step's new ``value`` (noting the write for recorded readers)."""
    array._value = value
    if array._saved_by:
        array._note_write()


def _gifts(owners: Sequence[NDArray], device: Any) -> list:
    """The current values of ``owners`` to donate: each value itself when only its
    NDArray holds it, else a fresh copy (the other holder keeps reading it)."""
    out = []
    for nd in owners:
        v = nd._data
        # references besides getrefcount's argument: the NDArray and ``v``
        if sys.getrefcount(v) - 1 <= 2 and v.committed:
            out.append(v)
        else:
            out.append(jax.device_put(v, device, may_alias=False))
    return out
