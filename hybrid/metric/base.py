"""The metric base class, the name registry and ``create``; see ``hybrid.metric``."""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy

_NUMERIC_TYPES = (float, int, numpy.generic)


def _is_array(x: Any) -> bool:
    """True for a single array (NDArray, numpy or jax), False for lists/tuples of arrays."""
    return not isinstance(x, (list, tuple)) and hasattr(x, "shape")


def _to_numpy(x: Any) -> numpy.ndarray:
    """A numpy copy of an NDArray (via ``asnumpy``) or anything numpy accepts."""
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    return numpy.asarray(x)


def _length(x: Any) -> int:
    """``len(x)``; for arrays without ``__len__`` the size of the first axis."""
    try:
        return len(x)
    except TypeError:
        return x.shape[0]


def check_label_shapes(
    labels: Any, preds: Any, wrap: bool = False, shape: bool = False
) -> tuple[Any, Any]:
    """Check that labels and predictions agree, optionally wrapping single arrays.

    With ``shape=False`` the *lengths* are compared (the number of arrays in two
    lists, or the first dimension of two arrays); with ``shape=True`` the
    ``.shape`` attributes are.  A mismatch raises ``ValueError`` naming both.
    With ``wrap=True`` a single array (NDArray or numpy) is wrapped in a list
    *after* the check, as MXNet does.  Returns ``(labels, preds)``.
    """
    if not shape:
        label_shape, pred_shape = _length(labels), _length(preds)
    else:
        label_shape, pred_shape = labels.shape, preds.shape

    if label_shape != pred_shape:
        raise ValueError(
            f"Shape of labels {label_shape} does not match shape of predictions {pred_shape}"
        )

    if wrap:
        if _is_array(labels):
            labels = [labels]
        if _is_array(preds):
            preds = [preds]
    return labels, preds


class EvalMetric:
    """Base class of all evaluation metrics.

    Parameters
    ----------
    name : str
        Display name, returned by ``get()``.
    output_names, label_names : list of str or None
        Which entries of the dicts given to ``update_dict`` to use (all, in dict
        order, when None).
    has_global_stats : bool (keyword, default False)
        Whether ``get_global()`` reports the global accumulators; otherwise it
        returns ``get()``.
    **kwargs
        Extra constructor arguments, recorded for ``get_config()``.
    """

    def __init__(
        self,
        name: str,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
        self._kwargs = kwargs
        self.reset()

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self) -> dict:
        """Constructor arguments plus ``metric`` (the class name); ``create(**config)`` rebuilds."""
        config = self._kwargs.copy()
        config.update(
            {
                "metric": self.__class__.__name__,
                "name": self.name,
                "output_names": self.output_names,
                "label_names": self.label_names,
            }
        )
        return config

    def update_dict(self, label: dict, pred: dict) -> None:
        """Update from name->array dicts, selecting ``label_names``/``output_names`` if set."""
        if self.output_names is not None:
            pred = [pred[name] for name in self.output_names]
        else:
            pred = list(pred.values())

        if self.label_names is not None:
            label = [label[name] for name in self.label_names]
        else:
            label = list(label.values())

        self.update(label, pred)

    def update(self, labels: Any, preds: Any) -> None:
        """Accumulate one batch; ``labels`` and ``preds`` are lists of arrays."""
        raise NotImplementedError()

    def reset(self) -> None:
        """Clear both the local and the global accumulators."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self) -> None:
        """Clear only the local accumulators; the global ones keep counting."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self) -> tuple[Any, Any]:
        """``(name, sum_metric / num_inst)``, or ``(name, nan)`` if nothing was accumulated."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.sum_metric / self.num_inst)

    def get_global(self) -> tuple[Any, Any]:
        """Like ``get()`` on the global accumulators (``get()`` itself without global stats)."""
        if self._has_global_stats:
            if self.global_num_inst == 0:
                return (self.name, float("nan"))
            return (self.name, self.global_sum_metric / self.global_num_inst)
        return self.get()

    def get_name_value(self) -> list[tuple[str, Any]]:
        """``get()`` as a list of ``(name, value)`` pairs."""
        name, value = self.get()
        if not isinstance(name, list):
            name = [name]
        if not isinstance(value, list):
            value = [value]
        return list(zip(name, value))

    def get_global_name_value(self) -> list[tuple[str, Any]]:
        """``get_global()`` as a list of ``(name, value)`` pairs."""
        if self._has_global_stats:
            name, value = self.get_global()
            if not isinstance(name, list):
                name = [name]
            if not isinstance(value, list):
                value = [value]
            return list(zip(name, value))
        return self.get_name_value()


# --------------------------------------------------------------------------------------
# Registry: names are the lower-cased class names plus aliases.

_REGISTRY: dict[str, type] = {}


def register(klass: type, name: str | None = None) -> type:
    """Register an ``EvalMetric`` subclass under ``name`` (default: its lower-cased class name)."""
    assert issubclass(klass, EvalMetric), "Can only register subclass of EvalMetric"
    key = (klass.__name__ if name is None else name).lower()
    if key in _REGISTRY and _REGISTRY[key] is not klass:
        old = _REGISTRY[key]
        warnings.warn(
            f"New metric {klass.__module__}.{klass.__name__} registered with name {key} is "
            f"overriding existing metric {old.__module__}.{old.__name__}",
            UserWarning,
            stacklevel=2,
        )
    _REGISTRY[key] = klass
    return klass


def alias(*aliases: str) -> Callable[[type], type]:
    """Class decorator registering a metric under extra names, e.g. ``@alias('acc')``."""

    def reg(klass: type) -> type:
        for name in aliases:
            register(klass, name)
        return klass

    return reg


def _create(*args: Any, **kwargs: Any) -> EvalMetric:
    if args:
        name, args = args[0], args[1:]
    else:
        name = kwargs.pop("metric")
    if isinstance(name, EvalMetric):
        assert not args and not kwargs, (
            "metric is already an instance. Additional arguments are invalid"
        )
        return name
    if isinstance(name, dict):
        return _create(**name)
    assert isinstance(name, str), "metric must be of string type"
    if name.startswith("["):
        assert not args and not kwargs
        name, kwargs = json.loads(name)
        return _create(name, **kwargs)
    if name.startswith("{"):
        assert not args and not kwargs
        return _create(**json.loads(name))
    name = name.lower()
    assert name in _REGISTRY, (
        f"{name} is not registered. Please register with metric.register first"
    )
    return _REGISTRY[name](*args, **kwargs)


def create(metric: Any, *args: Any, **kwargs: Any) -> EvalMetric:
    """Create a metric from a name, an instance, a list, a config dict or a function.

    * a callable (``feval(label, pred)``) gives a ``CustomMetric``;
    * a list gives a ``CompositeEvalMetric`` of ``create(item, *args, **kwargs)``;
    * an ``EvalMetric`` instance is returned as is;
    * a string is a registered name or alias, case-insensitive (``'acc'``, ``'ce'``,
      ``'top_k_accuracy'``, ``'f1'``, ``'mae'``, ...), or a JSON ``'["name", {kwargs}]'``;
    * a dict (as from ``get_config()``) names the class under ``'metric'``.
    """
    if callable(metric):
        from .custom import CustomMetric

        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, list):
        composite_metric = CompositeEvalMetric()
        for child_metric in metric:
            composite_metric.add(create(child_metric, *args, **kwargs))
        return composite_metric
    return _create(metric, *args, **kwargs)


@register
@alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns ``([names], [values])``.

    Children may be given as anything ``create`` accepts.  ``get_metric(index)``
    *returns* (does not raise) a ``ValueError`` for a bad index, as MXNet does.
    """

    def __init__(
        self,
        metrics: list | None = None,
        name: str = "composite",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        if metrics is None:
            metrics = []
        self.metrics = [create(i) for i in metrics]

    def add(self, metric: Any) -> None:
        """Append a child metric (anything ``create`` accepts)."""
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> Any:
        """The child at ``index``; a ``ValueError`` instance (returned) if out of range."""
        try:
            return self.metrics[index]
        except IndexError:
            return ValueError(f"Metric index {index} is out of range 0 and {len(self.metrics)}")

    def update_dict(self, labels: dict, preds: dict) -> None:  # type: ignore[override]
        if self.label_names is not None:
            labels = OrderedDict([i for i in labels.items() if i[0] in self.label_names])
        if self.output_names is not None:
            preds = OrderedDict([i for i in preds.items() if i[0] in self.output_names])
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels: Any, preds: Any) -> None:
        """Pass the same labels and predictions to every child."""
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self) -> None:
        """Reset every child (local and global)."""
        # Called by EvalMetric.__init__ before self.metrics exists.
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def reset_local(self) -> None:
        """Reset the local accumulators of every child."""
        for metric in getattr(self, "metrics", []):
            metric.reset_local()

    def _collect(self, getter: str) -> tuple[list, list]:
        names: list = []
        values: list = []
        for metric in self.metrics:
            name, value = getattr(metric, getter)()
            if isinstance(name, str):
                name = [name]
            if isinstance(value, _NUMERIC_TYPES):
                value = [value]
            names.extend(name)
            values.extend(value)
        return (names, values)

    def get(self) -> tuple[list, list]:
        """``([child names...], [child values...])``, flattening nested composites."""
        return self._collect("get")

    def get_global(self) -> tuple[list, list]:
        """Like ``get()`` with each child's ``get_global()``."""
        return self._collect("get_global")

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"metrics": [i.get_config() for i in self.metrics]})
        return config


########################
# CLASSIFICATION METRICS
########################
