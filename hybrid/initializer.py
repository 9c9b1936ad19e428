"""Weight initializers (``mx.init`` / ``mx.initializer``), with MXNet 1.9 semantics.

An initializer is called as ``init(desc, arr)`` and fills ``arr`` in place.
``desc`` is an :class:`InitDesc` (a ``str`` subclass carrying ``attrs`` and
``global_init``).  When ``desc.attrs['__init__']`` names an initializer (Gluon
sets it from ``Parameter.init``), *that* initializer's ``_init_weight`` fills
the array whatever its name; otherwise the name's suffix decides (``weight`` ->
``_init_weight``, ``bias``/``beta``/``min`` -> 0, ``gamma``/``max`` -> 1, any
other name -> ``ValueError``).  A plain ``str`` name takes MXNet's deprecated
legacy path, which also knows ``moving_mean``/``moving_var``/``moving_inv_var``/
``moving_avg``, ``upsampling*`` (bilinear) and ``stn_loc*``.

``arr`` may be an ``NDArray`` (filled with ``arr[:] = values``) or a numpy array
(filled with ``arr[...] = values``).  Random initializers draw with
``jax.random`` from ``hybrid.random.next_key()``, so ``mx.random.seed`` makes
them reproducible.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable
from math import sqrt
from typing import Any

import numpy as np

from lowering import x64

__all__ = [
    "InitDesc",
    "Initializer",
    "register",
    "alias",
    "create",
    "Load",
    "Mixed",
    "Zero",
    "One",
    "Constant",
    "Uniform",
    "Normal",
    "Orthogonal",
    "Xavier",
    "MSRAPrelu",
    "Bilinear",
    "LSTMBias",
]


# --------------------------------------------------------------------------------------
# Array helpers: work on NDArray (core) and on plain numpy arrays.


def _dtype_of(arr: Any) -> np.dtype:
    return np.dtype(arr.dtype)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    return np.asarray(x)


def _write(arr: Any, values: Any) -> None:
    """Fill ``arr`` in place with ``values`` (a scalar, numpy array or NDArray)."""
    if isinstance(arr, np.ndarray):
        arr[...] = _to_numpy(values) if hasattr(values, "asnumpy") else values
    else:
        arr[:] = values


def _write_array(arr: Any, values: np.ndarray) -> None:
    """Fill ``arr`` with a numpy array cast to ``arr``'s dtype and reshaped to its shape."""
    _write(arr, np.asarray(values).astype(_dtype_of(arr), copy=False).reshape(arr.shape))


_fallback_key: Any = None


def _next_key() -> Any:
    """A fresh jax PRNG key from ``hybrid.random.next_key()``.

    Until the core's ``hybrid.random`` exists, keys come from a private stream.
    """
    try:
        from . import random as _random

        next_key = _random.next_key
    except (ImportError, AttributeError):
        next_key = None
    if next_key is not None:
        return next_key()

    import jax

    global _fallback_key
    if _fallback_key is None:
        _fallback_key = jax.random.PRNGKey(0)
    _fallback_key, sub = jax.random.split(_fallback_key)
    return sub


def _uniform(shape: tuple, low: float, high: float) -> np.ndarray:
    """Samples of U[low, high) as a float32 numpy array."""
    import jax
    import jax.numpy as jnp

    shape = tuple(int(s) for s in shape)
    out = jax.random.uniform(
        _next_key(), shape, dtype=jnp.float32, minval=float(low), maxval=float(high)
    )
    return np.asarray(out)


def _normal(shape: tuple, loc: float, scale: float) -> np.ndarray:
    """Samples of N(loc, scale**2) as a float32 numpy array."""
    import jax
    import jax.numpy as jnp

    shape = tuple(int(s) for s in shape)
    out = jax.random.normal(_next_key(), shape, dtype=jnp.float32)
    return np.asarray(out) * np.float32(scale) + np.float32(loc)


# --------------------------------------------------------------------------------------


class InitDesc(str):
    """Name of a variable to initialize, with its attributes (a ``str`` subclass).

    Parameters
    ----------
    name : str
        Variable name; its suffix selects the fill when no ``__init__`` attribute is set.
    attrs : dict of str to str, optional
        Attributes; ``attrs['__init__']`` (an initializer, its name or its ``dumps()``
        JSON) overrides the name-based dispatch.
    global_init : Initializer, optional
        Initializer to fall back to; set to the calling initializer if None.
    """

    attrs: dict
    global_init: Any

    def __new__(cls, name: str, attrs: dict | None = None, global_init: Any = None) -> InitDesc:
        ret = super().__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


class Initializer:
    """Base class of initializers.

    Subclasses implement ``_init_weight(name, arr)``; the other hooks
    (``_init_bias``, ``_init_gamma``, ``_init_beta``, ...) have MXNet's fixed
    fills.  Constructor keyword arguments are recorded for ``dumps()``.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._verbose = False
        self._print_func: Callable | None = None

    def set_verbosity(self, verbose: bool = False, print_func: Callable | None = None):
        """Switch logging of every initialized array on/off; returns ``self``.

        ``print_func(arr) -> str`` summarizes an array; the default is
        ``norm(arr) / sqrt(arr.size)``.
        """
        self._verbose = verbose
        if print_func is None:

            def asum_stat(x: Any) -> str:
                """Return ``norm(x) / sqrt(size(x))`` as a string."""
                data = _to_numpy(x).astype(np.float64)
                return str(np.linalg.norm(data.ravel()) / sqrt(data.size))

            print_func = asum_stat
        self._print_func = print_func
        return self

    def _verbose_print(self, desc: str, init: Any, arr: Any) -> None:
        if self._verbose and self._print_func:
            logging.info("Initialized %s as %s: %s", desc, init, self._print_func(arr))

    def dumps(self) -> str:
        """JSON ``'["<lower-cased class name>", {kwargs}]'`` that ``create`` accepts.

        Example: ``Normal(0.5).dumps() == '["normal", {"sigma": 0.5}]'``.
        """
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    @x64.scoped
    def __call__(self, desc: Any, arr: Any) -> None:
        """Initialize ``arr`` in place according to ``desc``.

        An :class:`InitDesc` dispatches on ``attrs['__init__']`` and then on the
        name suffix (``weight``, ``bias``, ``gamma``, ``beta``, ``min``, ``max``,
        ``weight_quantize``, ``bias_quantize``); unknown names raise
        ``ValueError``.  A plain ``str`` uses the deprecated legacy rules.
        """
        if not isinstance(desc, InitDesc):
            self._legacy_init(desc, arr)
            return

        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get("__init__", "")

        if init:
            # A per-variable initializer always fills through _init_weight.
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
        elif desc.endswith("weight"):
            self._init_weight(desc, arr)
            self._verbose_print(desc, "weight", arr)
        elif desc.endswith("bias"):
            self._init_bias(desc, arr)
            self._verbose_print(desc, "bias", arr)
        elif desc.endswith("gamma"):
            self._init_gamma(desc, arr)
            self._verbose_print(desc, "gamma", arr)
        elif desc.endswith("beta"):
            self._init_beta(desc, arr)
            self._verbose_print(desc, "beta", arr)
        elif desc.endswith("min"):
            self._init_zero(desc, arr)
            self._verbose_print(desc, "min", arr)
        elif desc.endswith("max"):
            self._init_one(desc, arr)
            self._verbose_print(desc, "max", arr)
        elif desc.endswith("weight_quantize"):
            self._init_quantized_weight(desc, arr)
            self._verbose_print(desc, "weight_quantize", arr)
        elif desc.endswith("bias_quantize"):
            self._init_quantized_bias(desc, arr)
            self._verbose_print(desc, "bias_quantize", arr)
        else:
            self._init_default(desc, arr)

    def _legacy_init(self, name: Any, arr: Any) -> None:
        """Deprecated ``init(str, arr)`` path, with the old name rules."""
        warnings.warn(
            "Calling initializer with init(str, NDArray) has been deprecated."
            "please use init(mx.init.InitDesc(...), NDArray) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        if not isinstance(name, str):
            raise TypeError("name must be string")
        if not hasattr(arr, "shape") or isinstance(arr, (list, tuple)):
            raise TypeError("arr must be NDArray")
        if name.startswith("upsampling"):
            self._init_bilinear(name, arr)
        elif name.startswith("stn_loc") and name.endswith("weight"):
            self._init_zero(name, arr)
        elif name.startswith("stn_loc") and name.endswith("bias"):
            self._init_loc_bias(name, arr)
        elif name.endswith("bias"):
            self._init_bias(name, arr)
        elif name.endswith("gamma"):
            self._init_gamma(name, arr)
        elif name.endswith("beta"):
            self._init_beta(name, arr)
        elif name.endswith("weight"):
            self._init_weight(name, arr)
        elif name.endswith("moving_mean"):
            self._init_zero(name, arr)
        elif name.endswith("moving_var"):
            self._init_one(name, arr)
        elif name.endswith("moving_inv_var"):
            self._init_zero(name, arr)
        elif name.endswith("moving_avg"):
            self._init_zero(name, arr)
        elif name.endswith("min"):
            self._init_zero(name, arr)
        elif name.endswith("max"):
            self._init_one(name, arr)
        else:
            self._init_default(name, arr)

    def _init_bilinear(self, _: str, arr: Any) -> None:
        _write_array(arr, _bilinear_kernel(arr.shape))

    def _init_loc_bias(self, _: str, arr: Any) -> None:
        assert arr.shape[0] == 6
        _write_array(arr, np.array([1.0, 0, 0, 0, 1.0, 0]))

    def _init_zero(self, _: str, arr: Any) -> None:
        _write(arr, 0.0)

    def _init_one(self, _: str, arr: Any) -> None:
        _write(arr, 1.0)

    def _init_bias(self, _: str, arr: Any) -> None:
        _write(arr, 0.0)

    def _init_quantized_bias(self, _: str, arr: Any) -> None:
        _write(arr, 0)

    def _init_gamma(self, _: str, arr: Any) -> None:
        _write(arr, 1.0)

    def _init_beta(self, _: str, arr: Any) -> None:
        _write(arr, 0.0)

    def _init_weight(self, name: str, arr: Any) -> None:
        """Abstract: fill a weight."""
        raise NotImplementedError("Must override it")

    def _init_quantized_weight(self, _: str, arr: Any) -> None:
        # MXNet draws ONE integer in [-127, 127) and broadcasts it over the array.
        value = int(np.floor(_uniform((1,), -127, 127)[0]))
        _write(arr, value)

    def _init_default(self, name: str, _: Any) -> None:
        raise ValueError(
            f"Unknown initialization pattern for {name}. "
            'Default initialization is now limited to "weight", "bias", "gamma" (1.0), '
            'and "beta" (0.0). Please use mx.sym.Variable(init=mx.init.*) to set '
            "initialization pattern"
        )


def _bilinear_kernel(shape: tuple) -> np.ndarray:
    """MXNet's upsampling kernel; ``f`` and ``c`` come from ``shape[3]`` for both axes."""
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape))
    f = np.ceil(shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    i = np.arange(size)
    x = i % shape[3]
    y = (i // shape[3]) % shape[2]
    weight = (1 - np.abs(x / f - c)) * (1 - np.abs(y / f - c))
    return weight.astype(np.float32).reshape(shape)


# --------------------------------------------------------------------------------------
# Registry: names are lower-cased class names plus aliases.

_REGISTRY: dict[str, type] = {}


def _register(klass: type, name: str | None = None) -> type:
    assert issubclass(klass, Initializer), "Can only register subclass of Initializer"
    key = (klass.__name__ if name is None else name).lower()
    if key in _REGISTRY and _REGISTRY[key] is not klass:
        old = _REGISTRY[key]
        warnings.warn(
            f"New initializer {klass.__module__}.{klass.__name__} registered with name {key} "
            f"is overriding existing initializer {old.__module__}.{old.__name__}",
            UserWarning,
            stacklevel=3,
        )
    _REGISTRY[key] = klass
    return klass


def register(klass: type) -> type:
    """Class decorator registering an ``Initializer`` subclass under its lower-cased name.

    Registered initializers can be created by name: ``mx.init.create('myinit')``
    or ``Parameter(init='myinit')``.
    """
    return _register(klass)


def alias(*aliases: str) -> Callable[[type], type]:
    """Class decorator registering an initializer under extra names, e.g. ``@alias('zeros')``."""

    def reg(klass: type) -> type:
        for name in aliases:
            _register(klass, name)
        return klass

    return reg


def create(*args: Any, **kwargs: Any) -> Initializer:
    """Create an initializer from an instance, a name, a JSON string or a dict.

    * an ``Initializer`` instance is returned as is (no extra arguments allowed);
    * a registered name or alias, case-insensitive (``'xavier'``, ``'zeros'``,
      ``'ones'``, ``'uniform'``, ``'normal'``, ...) is constructed with ``*args, **kwargs``;
    * ``'["xavier", {"magnitude": 2}]'`` (what ``dumps`` writes) or ``'{"initializer":
      "xavier", ...}'`` JSON, or a dict with an ``'initializer'`` key.
    """
    if args:
        name, args = args[0], args[1:]
    else:
        name = kwargs.pop("initializer")
    if isinstance(name, Initializer):
        assert not args and not kwargs, (
            "initializer is already an instance. Additional arguments are invalid"
        )
        return name
    if isinstance(name, dict):
        return create(**name)
    assert isinstance(name, str), "initializer must be of string type"
    if name.startswith("["):
        assert not args and not kwargs
        name, kwargs = json.loads(name)
        return create(name, **kwargs)
    if name.startswith("{"):
        assert not args and not kwargs
        return create(**json.loads(name))
    name = name.lower()
    assert name in _REGISTRY, (
        f"{name} is not registered. Please register with initializer.register first"
    )
    return _REGISTRY[name](*args, **kwargs)


# --------------------------------------------------------------------------------------


class Load:
    """Initialize from a dict of arrays (or a file saved by ``mx.nd.save``).

    ``arg:``/``aux:`` prefixes of the keys are dropped.  Names found are copied
    (shapes must match, else ``AssertionError``); other names go to
    ``default_init`` (``AssertionError`` if there is none).
    """

    def __init__(self, param: Any, default_init: Any = None, verbose: bool = False) -> None:
        if isinstance(param, str):
            from . import ndarray as _nd

            param = _nd.load(param)
        assert isinstance(param, dict)
        self.param: dict = {}
        for name, arr in param.items():
            if name.startswith("arg:") or name.startswith("aux:"):
                self.param[name[4:]] = arr
            else:
                self.param[name] = arr
        self.default_init = default_init
        self.verbose = verbose

    def __call__(self, name: str, arr: Any) -> None:
        """Copy ``param[name]`` into ``arr``, or fall back to ``default_init(name, arr)``."""
        if name in self.param:
            assert tuple(arr.shape) == tuple(self.param[name].shape), (
                f"Parameter {name} cannot be initialized from loading. Shape mismatch, "
                f"target {tuple(arr.shape)} vs loaded {tuple(self.param[name].shape)}"
            )
            _write(arr, self.param[name])
            if self.verbose:
                logging.info("Initialized %s by loading", name)
        else:
            assert self.default_init is not None, (
                f"Cannot Initialize {name}. Not found in loaded param and no default "
                "Initializer is provided."
            )
            self.default_init(name, arr)
            if self.verbose:
                logging.info("Initialized %s by default", name)


class Mixed:
    """Route each name to the first initializer whose regex ``re.match``-es it.

    ``Mixed(['bias', '.*'], [mx.init.Zero(), mx.init.Uniform(0.1)])``.  A name
    matching no pattern raises ``ValueError``.
    """

    def __init__(self, patterns: list[str], initializers: list) -> None:
        assert len(patterns) == len(initializers)
        self.map = list(zip([re.compile(p) for p in patterns], initializers))

    def __call__(self, name: str, arr: Any) -> None:
        """Initialize ``arr`` with the first initializer whose pattern matches ``name``."""
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr)
                return
        raise ValueError(
            f"Parameter name {name} did not match any pattern. Consider "
            'add a ".*" pattern at the and with default Initializer.'
        )


@register
@alias("zeros")
class Zero(Initializer):
    """Fill with 0 (registered as ``'zero'`` and ``'zeros'``)."""

    def __init__(self) -> None:
        super().__init__()

    def _init_weight(self, _: str, arr: Any) -> None:
        _write(arr, 0)


@register
@alias("ones")
class One(Initializer):
    """Fill with 1 (registered as ``'one'`` and ``'ones'``)."""

    def __init__(self) -> None:
        super().__init__()

    def _init_weight(self, _: str, arr: Any) -> None:
        _write(arr, 1)


@register
class Constant(Initializer):
    """Fill with ``value``: a scalar, or an array (NDArray, numpy, nested list) of the shape.

    ``dumps()`` serializes an array value as a nested list.
    """

    def __init__(self, value: Any) -> None:
        super().__init__(value=value)
        self.value = value

    def dumps(self) -> str:
        """Like ``Initializer.dumps``, with an array ``value`` written as a nested list."""
        kwargs = dict(self._kwargs)
        val = kwargs["value"]
        if not np.isscalar(val):
            kwargs["value"] = _to_numpy(val).tolist()
        return json.dumps([self.__class__.__name__.lower(), kwargs])

    def _init_weight(self, _: str, arr: Any) -> None:
        value = self.value
        if isinstance(value, (list, tuple)):
            value = np.asarray(value, dtype=_dtype_of(arr))
        _write(arr, value)


@register
class Uniform(Initializer):
    """Fill with samples of U(-scale, scale); ``scale`` defaults to 0.07."""

    def __init__(self, scale: float = 0.07) -> None:
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _: str, arr: Any) -> None:
        _write_array(arr, _uniform(arr.shape, -self.scale, self.scale))


@register
class Normal(Initializer):
    """Fill with samples of N(0, sigma**2); ``sigma`` defaults to 0.01."""

    def __init__(self, sigma: float = 0.01) -> None:
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _: str, arr: Any) -> None:
        _write_array(arr, _normal(arr.shape, 0.0, self.sigma))


@register
class Orthogonal(Initializer):
    """Fill with ``scale`` times a random (semi-)orthogonal matrix (Saxe et al., 2013).

    The array is viewed as ``(nout, nin) = (shape[0], prod(shape[1:]))``; a random
    ``uniform(-1, 1)`` or ``normal(0, 1)`` matrix (``rand_type``) is decomposed by
    SVD and ``U`` is used when ``nin <= nout`` (orthonormal columns), ``V^T``
    otherwise (orthonormal rows).
    """

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform") -> None:
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _: str, arr: Any) -> None:
        nout = int(arr.shape[0])
        nin = int(np.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = _uniform((nout, nin), -1.0, 1.0)
        elif self.rand_type == "normal":
            tmp = _normal((nout, nin), 0.0, 1.0)
        else:
            raise ValueError(f"Unknown random type {self.rand_type}")
        u, _s, v = np.linalg.svd(tmp.astype(np.float64), full_matrices=False)
        res = u if u.shape == tmp.shape else v
        _write_array(arr, self.scale * res.reshape(arr.shape))


@register
class Xavier(Initializer):
    """Xavier/Glorot initialization.

    ``fan_in = shape[1] * prod(shape[2:])`` and ``fan_out = shape[0] *
    prod(shape[2:])``; ``factor`` is their mean (``'avg'``), ``fan_in`` (``'in'``)
    or ``fan_out`` (``'out'``), and ``scale = sqrt(magnitude / factor)``.
    ``rnd_type='uniform'`` samples U(-scale, scale), ``'gaussian'`` N(0, scale**2).
    Arrays with fewer than 2 dimensions raise ``ValueError``.
    """

    def __init__(
        self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3
    ) -> None:
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _init_weight(self, name: str, arr: Any) -> None:
        shape = arr.shape
        hw_scale = 1.0
        if len(shape) < 2:
            raise ValueError(
                f"Xavier initializer cannot be applied to vector {name}. It requires at least 2D."
            )
        if len(shape) > 2:
            hw_scale = np.prod(shape[2:])
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        if self.factor_type == "avg":
            factor = (fan_in + fan_out) / 2.0
        elif self.factor_type == "in":
            factor = fan_in
        elif self.factor_type == "out":
            factor = fan_out
        else:
            raise ValueError("Incorrect factor type")
        scale = np.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            _write_array(arr, _uniform(shape, -scale, scale))
        elif self.rnd_type == "gaussian":
            _write_array(arr, _normal(shape, 0.0, scale))
        else:
            raise ValueError("Unknown random type")


@register
class MSRAPrelu(Xavier):
    """He/MSRA initialization for PReLU nets: gaussian Xavier, magnitude ``2 / (1 + slope**2)``."""

    def __init__(self, factor_type: str = "avg", slope: float = 0.25) -> None:
        magnitude = 2.0 / (1 + slope**2)
        super().__init__("gaussian", factor_type, magnitude)
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Bilinear(Initializer):
    """Bilinear upsampling kernel for 4-D ``(C_out, C_in, H, W)`` deconvolution weights.

    ``w = (1 - |x/f - c|) * (1 - |y/f - c|)`` with ``f = ceil(W / 2)`` and
    ``c = (2f - 1 - f % 2) / (2f)``, where ``f`` and ``c`` come from the width
    for both axes (as in MXNet, even for non-square kernels).
    """

    def __init__(self) -> None:
        super().__init__()

    def _init_weight(self, _: str, arr: Any) -> None:
        _write_array(arr, _bilinear_kernel(arr.shape))


@register
class LSTMBias(Initializer):
    """LSTM bias: zeros except the forget gate block ``[H:2H]`` (gates i, f, g, o) = forget_bias."""

    def __init__(self, forget_bias: float = 1.0) -> None:
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name: str, arr: Any) -> None:
        values = np.zeros(arr.shape, dtype=_dtype_of(arr))
        num_hidden = int(arr.shape[0] / 4)
        values[num_hidden : 2 * num_hidden] = self.forget_bias
        _write(arr, values)
