"""A capture: the ops, block calls, backward and update of one step, run as one program.

Inside ``autograd.record()`` the front end does not run each op; it appends an
*entry* to the thread's :class:`Capture` and gives the op's outputs a
:class:`~hybrid.engine.pending.Pending` value. ``backward()`` and
``Trainer.step`` append entries too. The capture runs ("flushes") when a value
is read, when the Trainer's update has been appended, or when a new recorded
step begins: everything captured becomes one ``jax.jit`` program, cached on the
capture's *signature* (every entry's static description and wiring, the shapes
and dtypes of its concrete inputs, and which results are still referenced), so a
loop whose steps have the same structure compiles once and then runs one
executable per step.

A flush leaves exactly the state eager execution would have left: arrays get
their values, tape nodes that a later backward may still use get their VJP
closures (as outputs of the same program), BatchNorm statistics and gradients
are written. Anything the capture does not handle flushes first and then runs
eagerly, so results never depend on whether a step was captured.

Refs name values inside a capture: ``(0, i)`` is concrete input (leaf) ``i``;
``(1, e, j)`` is output ``j`` of entry ``e``.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lowering import x64
from lowering.compile_cache import CompileCache, key

from .pending import Pending, PendingVJP

STEPS = CompileCache("bulk step", maxsize=64, warn_after=None)
"""Compiled programs of captured steps, one per signature."""

_tls = threading.local()
_AVALS: dict[tuple, jax.ShapeDtypeStruct] = {}  # shared (shape, dtype) descriptions
EXECUTIONS = [0]


class Entry:
    """One captured action. ``sig`` is hashable and determines ``trace`` fully."""

    sig: tuple = ()

    def trace(self, env: dict, get: Callable[[tuple], Any]) -> None:  # pragma: no cover
        raise NotImplementedError


class Capture:
    """The actions captured so far in one thread (see the module docstring)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.leaves: list[Any] = []
        self._leaf_ids: dict[int, int] = {}
        self.device: Any = None  # the device of the arrays captured so far
        self._sharding: Any = None  # the sharding of one of them (a quick equality test)
        self.entries: list[Entry] = []
        self.arrays: list[tuple[weakref.ref, Pending]] = []
        self.nodes: list[tuple[Any, int, Callable | None]] = []  # (TapeNode, entry, commit)
        self.results: list[tuple[tuple, Callable[[Any], None]]] = []  # (ref, assign)
        self.after: list[Callable[[], None]] = []
        self.holders: dict[int, list] = {}  # entry -> aux-state NDArrays it commits to
        self.replaced: dict[int, Any] = {}  # leaf -> the NDArray whose value it is, or ALWAYS
        self.has_backward = False
        self.closed = False
        self._lock = threading.RLock()

    # ----------------------------------------------------------- building
    def leaf(self, value: Any) -> tuple:
        """The ref of a concrete value (a jax array, a numpy array or a Python scalar)."""
        i = self._leaf_ids.get(id(value))
        if i is None:
            i = len(self.leaves)
            self._leaf_ids[id(value)] = i
            self.leaves.append(value)
        return (0, i)

    def ref(self, array: Any) -> tuple | None:
        """The ref of an NDArray's current value, or None when it cannot be referred to
        without running this capture (a view of a pending array)."""
        if array._base is not None:
            root = array._base
            while root._base is not None:
                root = root._base
            if root._value.__class__ is Pending:
                return None
            return self.leaf(array._data)
        value = array._value
        if value.__class__ is Pending:
            return value.ref if value.capture is self else None
        i = self._leaf_ids.get(id(value))
        if i is not None:
            return (0, i)
        # One program runs on one device: an array on another one ends the capture.
        sharding = value.sharding
        if sharding is not self._sharding and sharding != self._sharding:
            devices = value.devices()
            if len(devices) != 1:
                return None
            device = next(iter(devices))
            if self.device is None:
                self.device = device
                self._sharding = sharding
            elif device != self.device:
                return None
        return self.leaf(value)

    def replaces(self, ref: tuple, owner: Any) -> None:
        """The run replaces the concrete value ``ref`` (a weight, an optimizer state, a
        running statistic): its buffer may be donated to the program. ``owner`` is the
        NDArray holding it (donated only if nothing else does), or ``ALWAYS`` for values
        only hybrid holds (optimizer states, donated by the eager update too)."""
        if ref[0] == 0:
            self.replaced[ref[1]] = owner

    def add(self, entry: Entry) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1

    def pending(self, array: Any, ref: tuple, aval: jax.ShapeDtypeStruct) -> None:
        """Make ``array``'s value the captured value ``ref`` (``aval``: its shape and
        dtype; an array given for it is not kept, so its buffer can be freed or donated)."""
        if aval.__class__ is not jax.ShapeDtypeStruct:
            k = (aval.shape, aval.dtype)
            found = _AVALS.get(k)
            if found is None:
                if len(_AVALS) > 4096:
                    _AVALS.clear()
                found = _AVALS[k] = jax.ShapeDtypeStruct(*k)
            aval = found
        p = Pending(self, ref, aval)
        array._value = p
        self.arrays.append((weakref.ref(array), p))

    def node(self, node: Any, entry: int, commit_factory: Callable | None) -> PendingVJP:
        """Register a tape node recorded by ``entry``: its VJP (and, for ops with aux
        states, a commit made from its batch statistics) is assigned by the flush."""
        self.nodes.append((node, entry, commit_factory))
        return PendingVJP(self, entry)

    def result(self, ref: tuple, assign: Callable[[Any], None]) -> None:
        """Call ``assign(value)`` with the value of ``ref`` when the capture runs."""
        self.results.append((ref, assign))

    @property
    def full(self) -> bool:
        return len(self.entries) >= self.limit

    # ------------------------------------------------------------ running
    def _donated(self) -> tuple[int, ...]:
        """The leaves the program takes over (``replaces``): fixed by the structure, so
        one program serves every step."""
        leaves = self.leaves
        return tuple(sorted(i for i in self.replaced if isinstance(leaves[i], jax.Array)))

    def _gifts(self, donated: tuple[int, ...]) -> list:
        """The buffers given to the program for the ``donated`` leaves: the value itself
        when nothing but this capture and its owner holds it, else a fresh copy (on the
        first step the values are not committed yet; a value the user also holds must
        stay readable)."""
        gifts = []
        leaves = self.leaves
        for i in donated:
            v = leaves[i]
            owner = self.replaced[i]
            # References besides getrefcount's argument: the leaf list, ``v``, and the
            # owner while it holds the value (a weight, until the update's result is
            # assigned). Any other holder gets the copy's original.
            alone = owner is ALWAYS or sys.getrefcount(v) - 1 <= (
                3 if owner._value is v else 2)
            if alone and v.committed:
                gifts.append(v)
            else:
                device = self.device if self.device is not None else next(iter(v.devices()))
                gifts.append(jax.device_put(v, device, may_alias=False))
        return gifts

    def flush(self) -> None:
        """Run everything captured as one program and assign the results."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if getattr(_tls, "capture", None) is self:
                _tls.capture = None
            try:
                if self.entries:
                    self._run()
            finally:  # a run capture holds nothing: its arrays now hold their own values
                self.leaves, self._leaf_ids, self.arrays = [], {}, []
                self.nodes, self.results, self.after, self.holders = [], [], [], {}
                self.replaced = {}
                self.entries = []

    @x64.scoped
    def _run(self) -> None:
        live = []
        for wr, p in self.arrays:
            a = wr()
            if a is not None and a._value is p:
                live.append((a, p))
        nodes = [(n, e, f) for n, e, f in self.nodes
                 if n.vjp.__class__ is PendingVJP and n.vjp.capture is self]
        out_refs = tuple(p.ref for _, p in live)
        node_refs = tuple((e, f is not None) for _, e, f in nodes)
        result_refs = tuple(r for r, _ in self.results)
        # Leaf shapes and dtypes are not part of the key: jax.jit retraces the program
        # when they change (counted as a trace of "step"); the entries themselves are
        # shape-generic, and a backward's entry holds the shapes it depends on.
        donated = self._donated()
        sig = key(entries=tuple(e.sig for e in self.entries), outputs=out_refs,
                  nodes=node_refs, results=result_refs, donated=donated)
        fn = STEPS.get("step", sig)
        note_compile(fn is None)
        if fn is None:
            fn = STEPS.jit("step", sig, _program(list(self.entries), out_refs, node_refs,
                                                 result_refs, donated, len(self.leaves)),
                           donate_argnums=(0,) if donated else (), keep_unused=True)
        gifts = self._gifts(donated)
        if donated:
            skip = set(donated)
            kept = [v for i, v in enumerate(self.leaves) if i not in skip]
        else:
            kept = self.leaves
        kept = _commit_all(kept, self.device)
        self.leaves = self._leaf_ids = None  # the donated buffers' last holders
        values, vjps, stats, results = fn(gifts, kept)
        del gifts, kept
        EXECUTIONS[0] += 1
        for (a, _), v in zip(live, values):
            a._value = v
        for (n, _, factory), vjp, st in zip(nodes, vjps, stats):
            n.vjp = vjp
            if factory is not None:
                n.commit = factory(st)
        for (_, assign), v in zip(self.results, results):
            assign(v)
        for fn_after in self.after:
            fn_after()


_COMMITTED: dict[tuple, tuple] = {}
_COMMITTED_LIMIT = 256


def _commit_all(leaves: list, device: Any) -> list:
    """``leaves`` with every uncommitted array committed to the capture's device.

    An uncommitted argument selects another executable than the committed one a
    previous step's program returned, so step 2 would compile again; arrays that
    stay uncommitted across steps (a global PRNG key, a reused batch) are committed
    once and the copy reused.
    """
    out = list(leaves)
    for i, v in enumerate(leaves):
        if isinstance(v, jax.Array) and not v.committed:
            dev = device if device is not None else next(iter(v.devices()))
            k = (id(v), dev)
            found = _COMMITTED.get(k)
            if found is None or found[0] is not v:
                if len(_COMMITTED) >= _COMMITTED_LIMIT:
                    _COMMITTED.clear()
                found = _COMMITTED[k] = (v, jax.device_put(v, dev))
            out[i] = found[1]
    return out


ALWAYS = object()
"""``Capture.replaces`` owner of a value only hybrid holds (always donated)."""


def _program(entries: list[Entry], out_refs: tuple, node_refs: tuple, result_refs: tuple,
             donated: tuple[int, ...], n_leaves: int):
    rest = [i for i in range(n_leaves) if i not in set(donated)]

    def run(gift, kept):
        leaves = [None] * n_leaves
        for i, v in zip(donated, gift):
            leaves[i] = v
        for i, v in zip(rest, kept):
            leaves[i] = v
        env: dict = {}

        def get(ref):
            return leaves[ref[1]] if ref[0] == 0 else env[ref]

        for e in entries:
            e.trace(env, get)
        values = tuple(get(r) for r in out_refs)
        vjps = tuple(env[("vjp", e)] for e, _ in node_refs)
        stats = tuple(env[("stats", e)] if has else None for e, has in node_refs)
        results = tuple(get(r) for r in result_refs)
        return values, vjps, stats, results

    return run


# ---------------------------------------------------------------- the thread's capture
_SETTINGS = {"size": 10000}
_COOLDOWN_STEPS = 50
_MISSES_BEFORE_COOLDOWN = 4


def current() -> Capture | None:
    """The thread's open capture, if any."""
    cap = getattr(_tls, "capture", None)
    return cap if cap is not None and not cap.closed else None


def active() -> Capture | None:
    """The capture to append to now: the open one, or a new one when bulk execution is
    on; None when it is off (``set_bulk_size(0)``) or cooling down."""
    cap = getattr(_tls, "capture", None)
    if cap is not None and not cap.closed:
        if cap.full:
            cap.flush()
        else:
            return cap
    if _SETTINGS["size"] <= 1 or getattr(_tls, "cooldown", 0) > 0:
        return None
    cap = _tls.capture = Capture(_SETTINGS["size"])
    return cap


def flush() -> None:
    """Run the thread's open capture now (``mx.nd.waitall`` does this)."""
    cap = current()
    if cap is not None:
        cap.flush()


def step_begins() -> None:
    """A new ``record()`` scope starts: run what the previous one captured (a step is
    one scope; a capture never grows across scopes that nothing reads)."""
    cap = current()
    if cap is not None:
        cap.flush()
    cd = getattr(_tls, "cooldown", 0)
    if cd > 0:
        _tls.cooldown = cd - 1


def note_compile(new: bool) -> None:
    """Dynamic programs (a new structure each step) stop capturing for a while."""
    misses = getattr(_tls, "misses", 0) + 1 if new else 0
    _tls.misses = misses
    if misses >= _MISSES_BEFORE_COOLDOWN:
        _tls.cooldown = _COOLDOWN_STEPS
        _tls.misses = 0


def reset_adaptation() -> None:
    """Forget this thread's run of new step structures (and any cool-down it caused)."""
    _tls.misses = 0
    _tls.cooldown = 0


def set_bulk_size(size: int) -> int:
    """Largest number of captured actions run as one program; 0 or 1 runs every op
    on its own (MXNet's ``engine.set_bulk_size``). Returns the previous size."""
    flush()
    prev = _SETTINGS["size"]
    _SETTINGS["size"] = int(size)
    return prev


def bulk_size() -> int:
    return _SETTINGS["size"]


def zeros_cotangent(aval: jax.ShapeDtypeStruct):
    if jnp.issubdtype(aval.dtype, jnp.inexact):
        return jnp.zeros(aval.shape, aval.dtype)
    return np.zeros(aval.shape, jax.dtypes.float0)
