"""Basic Gluon layers: containers, ``Dense``, ``Activation``, ``Dropout``, ``Flatten``, lambdas."""

from __future__ import annotations

from typing import Any

from ..block import Block, HybridBlock


class _Sequence:
    """What both containers share: ``add``, indexing and running children in order."""

    def add(self, *blocks: Block) -> None:
        """Append blocks."""
        for block in blocks:
            self.register_child(block)

    def _run_children(self, x: Any, *args: Any) -> Any:
        for block in self._children.values():
            x = block(x, *args)
            args = ()
            if isinstance(x, (tuple, list)):
                args = tuple(x[1:])
                x = x[0]
        if args:
            x = tuple([x] + list(args))
        return x

    def __getitem__(self, key: int | slice) -> Any:
        layers = list(self._children.values())[key]
        if isinstance(layers, list):
            net = type(self)(prefix=self._prefix)
            with net.name_scope():
                net.add(*layers)
            return net
        return layers

    def __len__(self) -> int:
        return len(self._children)


class Sequential(_Sequence, Block):
    """Children run one after the other (eagerly; hybrid children still hybridize)."""

    def forward(self, x: Any, *args: Any) -> Any:
        """Run the children in order; a tuple output feeds the next child's arguments."""
        return self._run_children(x, *args)


class HybridSequential(_Sequence, HybridBlock):
    """Children run one after the other; hybridizes as one graph.

    As in MXNet the sequence lives in ``hybrid_forward`` (``HybridBlock.forward``
    calls it), so a subclass overriding ``hybrid_forward`` or ``forward`` runs its own.
    """

    def hybrid_forward(self, F: Any, x: Any, *args: Any) -> Any:
        """Run the children in order; a tuple output feeds the next child's arguments."""
        return self._run_children(x, *args)


class Dense(HybridBlock):
    """Fully connected layer ``activation(dot(x, W.T) + b)``.

    ``weight`` has shape ``(units, in_units)``; ``in_units=0`` defers it to the
    first call. With ``flatten=True`` (default) inputs are reshaped to 2-D first.
    """

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 flatten: bool = True, dtype="float32", weight_initializer=None,
                 bias_initializer="zeros", in_units: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._flatten = flatten
        with self.name_scope():
            self._units = units
            self._in_units = in_units
            self.weight = self.params.get("weight", shape=(units, in_units),
                                          init=weight_initializer, dtype=dtype,
                                          allow_deferred_init=True)
            if use_bias:
                self.bias = self.params.get("bias", shape=(units,), init=bias_initializer,
                                            dtype=dtype, allow_deferred_init=True)
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + "_") if activation else None

    def hybrid_forward(self, F, x, weight, bias=None):
        act = F.FullyConnected(x, weight, bias, no_bias=bias is None, num_hidden=self._units,
                               flatten=self._flatten, name="fwd")
        if self.act is not None:
            act = self.act(act)
        return act

    def __repr__(self) -> str:
        shape = self.weight.shape
        act = self.act._act_type if self.act is not None else "linear"
        return (f"Dense({shape[1] if shape[1] else None} -> {shape[0]}, "
                f"{'Activation(' + act + ')' if self.act is not None else act})")


class Activation(HybridBlock):
    """Element-wise activation: ``relu``, ``sigmoid``, ``tanh``, ``softrelu``, ``softsign``."""

    def __init__(self, activation: str, **kwargs: Any) -> None:
        self._act_type = activation
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return self._act_type

    def hybrid_forward(self, F, x):
        return F.Activation(x, act_type=self._act_type, name="fwd")

    def __repr__(self) -> str:
        return f"Activation({self._act_type})"


class Dropout(HybridBlock):
    """Drops units with probability ``rate`` in training; ``axes`` share the mask."""

    def __init__(self, rate: float, axes: tuple = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rate = rate
        self._axes = tuple(axes)

    def hybrid_forward(self, F, x):
        if self._rate > 0:
            return F.Dropout(x, p=self._rate, axes=self._axes, name="fwd", cudnn_off=False)
        return F.identity(x)

    def __repr__(self) -> str:
        return f"Dropout(p = {self._rate}, axes={self._axes})"


class Flatten(HybridBlock):
    """Reshape ``(N, ...)`` to ``(N, -1)``."""

    def hybrid_forward(self, F, x):
        return F.Flatten(x)

    def __repr__(self) -> str:
        return "Flatten"


class Lambda(Block):
    """Wrap a function (or the name of an ``nd`` op) as a Block."""

    def __init__(self, function, prefix: str | None = None) -> None:
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            from ... import ndarray

            if not hasattr(ndarray, function):
                raise ValueError(f"function name {function} is not found in ndarray")
            self._func_impl = getattr(ndarray, function)
        elif callable(function):
            self._func_impl = function
        else:
            raise ValueError(f"unrecognized function in lambda: {function} of type "
                             f"{type(function)}")

    def forward(self, *args: Any) -> Any:
        return self._func_impl(*args)


class HybridLambda(HybridBlock):
    """Wrap ``function(F, *args)`` (or an op name) as a HybridBlock."""

    def __init__(self, function, prefix: str | None = None) -> None:
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            name = function
            self._func = lambda F, *args: getattr(F, name)(*args)
        elif callable(function):
            self._func = function
        else:
            raise ValueError(f"unrecognized function in lambda: {function}")

    def hybrid_forward(self, F, x, *args):
        return self._func(F, x, *args)


class Embedding(HybridBlock):
    """Map integer indices (given as floats, MXNet's convention) to rows of a
    ``(input_dim, output_dim)`` weight; out-of-range indices are clipped.

    The gradient w.r.t. the weight accumulates rows of repeated indices.
    ``sparse_grad`` is accepted (MXNet's row_sparse gradient); gradients are dense.
    """

    def __init__(self, input_dim: int, output_dim: int, dtype="float32",
                 weight_initializer=None, sparse_grad: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        grad_stype = "row_sparse" if sparse_grad else "default"
        self._kwargs = {"input_dim": input_dim, "output_dim": output_dim, "dtype": dtype,
                        "sparse_grad": sparse_grad}
        self.weight = self.params.get("weight", shape=(input_dim, output_dim),
                                      init=weight_initializer, dtype=dtype,
                                      allow_deferred_init=True, grad_stype=grad_stype)

    def hybrid_forward(self, F, x, weight):
        return F.Embedding(x, weight, name="fwd", **self._kwargs)

    def __repr__(self) -> str:
        k = self._kwargs
        return f"Embedding({k['input_dim']} -> {k['output_dim']}, {k['dtype']})"
