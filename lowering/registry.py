"""The operator registry: one definition per MXNet operator.

An :class:`OpDef` says everything the rest of the system needs to know about an
operator: its MXNet name and aliases, its named inputs (and which of them are
auxiliary states), its typed attributes with defaults, how many outputs it has,
whether it consumes a PRNG key or the training flag, and its implementation as
a pure function over ``jax.numpy`` arrays.

The eager ``nd.*`` functions, the symbolic ``sym.*`` functions, the graph
lowering and the JSON reader are all generated from this table.

Implementation calling convention::

    impl(*inputs, **attrs)                         -> array | tuple of arrays
    impl(*inputs, **attrs, key=k)                  if needs_rng
    impl(*inputs, **attrs, training=t)             if needs_training
    impl(*inputs_and_aux, **attrs) -> (outputs, batch_stats)   if the op has aux inputs

``batch_stats`` is None when the call leaves the aux states alone (BatchNorm in
predict mode), else one value per aux input, from which ``aux_update`` computes
the new aux values. The front end commits that update when backward passes
through the call, as MXNet does, so the update reads the aux value current at
that moment (a BatchNorm applied twice in one step is updated twice, in
backward order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .attrs import REQUIRED, Attr, AttrError


class OpError(ValueError):
    """Bad use of an operator: unknown name, missing attribute, wrong input count."""


@dataclass
class OpDef:
    """The single definition of one operator.

    Attributes:
        name: MXNet's operator name as written in symbol JSON (``FullyConnected``).
        impl: pure function over jax arrays (see the module docstring).
        inputs: input names in order. A name starting with ``*`` is variadic
            (``concat``'s ``*data``); its count comes from the ``num_args`` attr.
        attrs: attribute name -> :class:`Attr`.
        aux: names among ``inputs`` that are auxiliary states (not learnable,
            updated by the op; e.g. BatchNorm's ``moving_mean``).
        num_outputs: a fixed count or a function of the parsed attrs.
        needs_rng: the impl takes ``key=`` (a fresh PRNG key every call).
        needs_training: the impl takes ``training=`` (autograd's train mode).
        active_inputs: optional function attrs -> input names actually used
            (``FullyConnected`` drops ``bias`` when ``no_bias``).
        infer_shapes: optional function ``(attrs, shapes) -> shapes`` filling
            unknown (``None``) input shapes, used for deferred parameter shapes.
        aliases: other names (``Flatten`` for ``flatten``).
        differentiable: False for ops whose outputs carry no gradient.
        mutate_inputs: inputs MXNet updates in place (optimizer states): outputs
            ``1..k`` are their new values, which eager calls write back, returning
            only output 0 (MXNet's ``FMutateInputs``).
        aux_update: ``(attrs, old_aux, batch_stats) -> new_aux`` for ops with aux
            states (None: the batch statistics replace the aux values).
        check_attrs: optional ``attrs -> None`` raising :class:`OpError` for values
            MXNet refuses (``uniform`` with ``low > high``); run by ``parse_attrs``, so
            eager calls and graph building both check. Shape-dependent checks live
            in ``impl``, which runs on static shapes in both modes.
        check_values: optional ``(attrs, arrays) -> None`` run by eager calls on the
            concrete input arrays (index bounds: ``gather_nd``); a compiled graph
            cannot see values, so its ``impl`` must still do something defined.
        json_outputs: the output count MXNet's graph gives the op when it differs
            from ``num_outputs`` (hidden outputs: Dropout's mask, BatchNorm's saved
            mean and variance); only ``node_row_ptr`` in symbol JSON uses it.
        doc: one paragraph with the MXNet semantics that matter.
    """

    name: str
    impl: Callable[..., Any]
    inputs: tuple[str, ...] = ("data",)
    attrs: dict[str, Attr] = field(default_factory=dict)
    aux: tuple[str, ...] = ()
    num_outputs: int | Callable[[dict], int] = 1
    needs_rng: bool = False
    needs_training: bool = False
    active_inputs: Callable[[dict], Sequence[str]] | None = None
    infer_shapes: Callable[[dict, list], list] | None = None
    aliases: tuple[str, ...] = ()
    differentiable: bool = True
    mutate_inputs: tuple[str, ...] = ()
    json_outputs: int | Callable[[dict], int] | None = None
    aux_update: Callable[[dict, tuple, tuple], tuple] | None = None
    check_attrs: Callable[[dict], None] | None = None
    check_values: Callable[[dict, Sequence[Any]], None] | None = None
    doc: str = ""

    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[0].startswith("*")

    def parse_attrs(self, given: dict[str, Any]) -> dict[str, Any]:
        """Canonical attribute dict: defaults filled in, values parsed, unknowns refused.

        Keys starting with ``__`` (``__shape__``, ``__lr_mult__``...) are graph
        annotations, not op attributes; callers strip them before this.
        """
        out = {}
        for key, value in given.items():
            if key not in self.attrs:
                raise OpError(
                    f"operator {self.name} has no attribute {key!r}; "
                    f"its attributes are {sorted(self.attrs)}"
                )
            out[key] = self.attrs[key].parse(self.name, key, value)
        for key, spec in self.attrs.items():
            if key not in out:
                if spec.default is REQUIRED:
                    raise OpError(f"operator {self.name} needs attribute {key!r}")
                out[key] = spec.default
        if self.check_attrs is not None:
            self.check_attrs(out)
        return out

    def input_names(self, attrs: dict[str, Any]) -> list[str]:
        """Input names used with these attrs (variadic inputs expanded to arg0, arg1...)."""
        if self.variadic:
            return [f"arg{i}" for i in range(attrs["num_args"])]
        if self.active_inputs is not None:
            return list(self.active_inputs(attrs))
        return list(self.inputs)

    def output_count(self, attrs: dict[str, Any]) -> int:
        n = self.num_outputs
        return n(attrs) if callable(n) else n

    def format_attrs(self, attrs: dict[str, Any]) -> dict[str, str]:
        """MXNet's string form of ``attrs`` (only keys the caller set are usually written)."""
        return {k: self.attrs[k].kind.format(v) for k, v in attrs.items() if k in self.attrs}

    def aux_inputs(self, attrs: dict[str, Any]) -> list[int]:
        """Positions of the aux-state inputs among ``input_names(attrs)``."""
        return [i for i, n in enumerate(self.input_names(attrs)) if n in self.aux]

    def commit_aux(self, attrs: dict[str, Any], old: tuple, batch_stats: tuple) -> tuple:
        """New aux values from the current ones and one call's batch statistics."""
        if self.aux_update is None:
            return tuple(batch_stats)
        return tuple(self.aux_update(attrs, tuple(old), tuple(batch_stats)))


_OPS: dict[str, OpDef] = {}


def register(
    name: str,
    *,
    inputs: Sequence[str] = ("data",),
    attrs: dict[str, Attr] | None = None,
    aux: Sequence[str] = (),
    num_outputs: int | Callable[[dict], int] = 1,
    needs_rng: bool = False,
    needs_training: bool = False,
    active_inputs: Callable[[dict], Sequence[str]] | None = None,
    infer_shapes: Callable[[dict, list], list] | None = None,
    aliases: Sequence[str] = (),
    differentiable: bool = True,
    mutate_inputs: Sequence[str] = (),
    json_outputs: int | Callable[[dict], int] | None = None,
    aux_update: Callable[[dict, tuple, tuple], tuple] | None = None,
    check_attrs: Callable[[dict], None] | None = None,
    check_values: Callable[[dict, Sequence[Any]], None] | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator: register the decorated function as the implementation of op ``name``.

    The function's docstring becomes the op's documentation. Registering a name
    twice is an error (every op is defined exactly once).
    """

    def wrap(fn: Callable) -> Callable:
        op = OpDef(
            name=name,
            impl=fn,
            inputs=tuple(inputs),
            attrs=dict(attrs or {}),
            aux=tuple(aux),
            num_outputs=num_outputs,
            needs_rng=needs_rng,
            needs_training=needs_training,
            active_inputs=active_inputs,
            infer_shapes=infer_shapes,
            aliases=tuple(aliases),
            differentiable=differentiable,
            mutate_inputs=tuple(mutate_inputs),
            json_outputs=json_outputs,
            aux_update=aux_update,
            check_attrs=check_attrs,
            check_values=check_values,
            doc=(fn.__doc__ or "").strip(),
        )
        if op.variadic and "num_args" not in op.attrs:
            raise OpError(f"variadic op {name} must declare a num_args attribute")
        for key in (name, *op.aliases):
            if key in _OPS:
                raise OpError(f"operator {key} is registered twice")
            _OPS[key] = op
        return fn

    return wrap


def get(name: str) -> OpDef:
    """The op registered under ``name`` (or one of its aliases)."""
    _ensure_loaded()
    try:
        return _OPS[name]
    except KeyError:
        raise OpError(f"unknown operator {name!r}") from None


def names() -> dict[str, OpDef]:
    """Every registered name (aliases included) -> its OpDef."""
    _ensure_loaded()
    return dict(_OPS)


def _ensure_loaded() -> None:
    from . import ops  # noqa: F401  (importing registers every op)


__all__ = ["Attr", "AttrError", "OpDef", "OpError", "get", "names", "register"]
