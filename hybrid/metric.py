"""Online evaluation metrics (``mx.metric``), with MXNet 1.9 semantics.

Every metric keeps two sets of accumulators: the *local* ones (``sum_metric``,
``num_inst``), cleared by both ``reset()`` and ``reset_local()``, and the
*global* ones (``global_sum_metric``, ``global_num_inst``), cleared only by
``reset()``.  ``get()`` reports the local value and ``get_global()`` the global
one; a metric created without ``has_global_stats=True`` (the default of
``EvalMetric`` itself, so of most user subclasses) answers ``get_global()`` with
``get()``.  With nothing accumulated the value is ``float('nan')``.

``update(labels, preds)`` takes lists of arrays (``NDArray`` or numpy; a single
array is accepted by most metrics and wrapped in a list).  Values are computed
in numpy from ``asnumpy()`` copies, as MXNet does.  Note the averaging units,
which follow MXNet: ``MAE``/``MSE``/``RMSE``, macro ``F1``/``MCC`` and macro
``PearsonCorrelation`` average *per-batch* values over batches, while
``Accuracy``, ``CrossEntropy`` and friends average over samples.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy

__all__ = [
    "EvalMetric",
    "CompositeEvalMetric",
    "Accuracy",
    "TopKAccuracy",
    "F1",
    "MCC",
    "Perplexity",
    "MAE",
    "MSE",
    "RMSE",
    "CrossEntropy",
    "NegativeLogLikelihood",
    "PearsonCorrelation",
    "PCC",
    "Loss",
    "Torch",
    "Caffe",
    "CustomMetric",
    "np",
    "create",
    "register",
    "alias",
    "check_label_shapes",
]

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


@register
@alias("acc")
class Accuracy(EvalMetric):
    """Fraction of samples whose predicted class equals the label.

    When a prediction's shape differs from its label's, the class is its argmax
    along ``axis``; otherwise the prediction *is* the class id.  Both are cast to
    int32 (truncating) and compared element-wise after flattening.
    """

    def __init__(
        self,
        axis: int = 1,
        name: str = "accuracy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name,
            axis=axis,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.axis = axis

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred_label in zip(labels, preds):
            pred_np = _to_numpy(pred_label)
            label_np = _to_numpy(label)
            if pred_np.shape != label_np.shape:
                pred_np = numpy.argmax(pred_np, axis=self.axis)
            pred_flat = pred_np.astype("int32").ravel()
            label_flat = label_np.astype("int32").ravel()
            check_label_shapes(label_flat, pred_flat)
            num_correct = (pred_flat == label_flat).sum()
            self.sum_metric += num_correct
            self.global_sum_metric += num_correct
            self.num_inst += len(pred_flat)
            self.global_num_inst += len(pred_flat)


@register
@alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the ``top_k`` highest-scored classes.

    ``top_k`` must be > 1 (use ``Accuracy`` otherwise); the name becomes
    ``'top_k_accuracy_<k>'``.  Predictions must be at most 2-D.
    """

    def __init__(
        self,
        top_k: int = 1,
        name: str = "top_k_accuracy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name,
            top_k=top_k,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.top_k = top_k
        assert self.top_k > 1, "Please use Accuracy if top_k is no more than 1"
        self.name += f"_{self.top_k:d}"

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred_label in zip(labels, preds):
            pred_np = _to_numpy(pred_label)
            assert len(pred_np.shape) <= 2, "Predictions should be no more than 2 dims"
            # argpartition puts the top_k largest scores in the last top_k columns.
            pred_np = numpy.argpartition(pred_np.astype("float32"), -self.top_k)
            label_np = _to_numpy(label).astype("int32")
            check_label_shapes(label_np, pred_np)
            num_samples = pred_np.shape[0]
            num_dims = len(pred_np.shape)
            if num_dims == 1:
                num_correct = (pred_np.ravel() == label_np.ravel()).sum()
                self.sum_metric += num_correct
                self.global_sum_metric += num_correct
            elif num_dims == 2:
                num_classes = pred_np.shape[1]
                top_k = min(num_classes, self.top_k)
                for j in range(top_k):
                    column = pred_np[:, num_classes - 1 - j].ravel()
                    num_correct = (column == label_np.ravel()).sum()
                    self.sum_metric += num_correct
                    self.global_sum_metric += num_correct
            self.num_inst += num_samples
            self.global_num_inst += num_samples


class _BinaryClassificationMetrics:
    """True/false positive/negative counts (local and global) of a binary classifier."""

    def __init__(self) -> None:
        self.true_positives = 0
        self.false_negatives = 0
        self.false_positives = 0
        self.true_negatives = 0
        self.global_true_positives = 0
        self.global_false_negatives = 0
        self.global_false_positives = 0
        self.global_true_negatives = 0

    def update_binary_stats(self, label: Any, pred: Any) -> None:
        """Count one (label, pred) pair; ``pred`` is (N, 2) scores, argmax'ed on axis 1."""
        pred = _to_numpy(pred)
        label = _to_numpy(label).astype("int32")
        pred_label = numpy.argmax(pred, axis=1)
        check_label_shapes(label, pred)
        if len(numpy.unique(label)) > 2:
            raise ValueError(
                f"{self.__class__.__name__} currently only supports binary classification."
            )
        pred_true = pred_label == 1
        pred_false = ~pred_true
        label_true = label == 1
        label_false = ~label_true
        true_pos = int((pred_true & label_true).sum())
        false_pos = int((pred_true & label_false).sum())
        false_neg = int((pred_false & label_true).sum())
        true_neg = int((pred_false & label_false).sum())
        self.true_positives += true_pos
        self.global_true_positives += true_pos
        self.false_positives += false_pos
        self.global_false_positives += false_pos
        self.false_negatives += false_neg
        self.global_false_negatives += false_neg
        self.true_negatives += true_neg
        self.global_true_negatives += true_neg

    @staticmethod
    def _ratio(num: int, other: int) -> float:
        return float(num) / (num + other) if num + other > 0 else 0.0

    @staticmethod
    def _f1(precision: float, recall: float) -> float:
        if precision + recall > 0:
            return 2 * precision * recall / (precision + recall)
        return 0.0

    @property
    def precision(self) -> float:
        return self._ratio(self.true_positives, self.false_positives)

    @property
    def global_precision(self) -> float:
        return self._ratio(self.global_true_positives, self.global_false_positives)

    @property
    def recall(self) -> float:
        return self._ratio(self.true_positives, self.false_negatives)

    @property
    def global_recall(self) -> float:
        return self._ratio(self.global_true_positives, self.global_false_negatives)

    @property
    def fscore(self) -> float:
        return self._f1(self.precision, self.recall)

    @property
    def global_fscore(self) -> float:
        return self._f1(self.global_precision, self.global_recall)

    def matthewscc(self, use_global: bool = False) -> float:
        """Matthews correlation; zero factors of the denominator are replaced by 1."""
        if use_global:
            if not self.global_total_examples:
                return 0.0
            tp = float(self.global_true_positives)
            fp = float(self.global_false_positives)
            fn = float(self.global_false_negatives)
            tn = float(self.global_true_negatives)
        else:
            if not self.total_examples:
                return 0.0
            tp = float(self.true_positives)
            fp = float(self.false_positives)
            fn = float(self.false_negatives)
            tn = float(self.true_negatives)
        denom = 1.0
        for term in (tp + fp, tp + fn, tn + fp, tn + fn):
            if term != 0.0:
                denom *= term
        return (tp * tn - fp * fn) / math.sqrt(denom)

    @property
    def total_examples(self) -> int:
        return (
            self.false_negatives + self.false_positives + self.true_negatives + self.true_positives
        )

    @property
    def global_total_examples(self) -> int:
        return (
            self.global_false_negatives
            + self.global_false_positives
            + self.global_true_negatives
            + self.global_true_positives
        )

    def local_reset_stats(self) -> None:
        self.false_positives = 0
        self.false_negatives = 0
        self.true_positives = 0
        self.true_negatives = 0

    def reset_stats(self) -> None:
        self.local_reset_stats()
        self.global_false_positives = 0
        self.global_false_negatives = 0
        self.global_true_positives = 0
        self.global_true_negatives = 0


class _BinaryScoreMetric(EvalMetric):
    """Shared by F1 and MCC: a score of the pooled binary counts.

    ``average='macro'`` (default) computes the score per ``update`` call and
    averages those over calls (local and global values are then equal, as in
    MXNet); ``'micro'`` computes one score from the counts pooled over calls.
    """

    def __init__(self, name: str, output_names: list[str] | None,
                 label_names: list[str] | None, average: str) -> None:
        self.average = average
        self.metrics = _BinaryClassificationMetrics()
        super().__init__(
            name=name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    def _score(self, use_global: bool) -> float:
        raise NotImplementedError

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self.metrics.update_binary_stats(label, pred)
        if self.average == "macro":
            self.sum_metric += self._score(False)
            self.global_sum_metric += self._score(True)
            self.num_inst += 1
            self.global_num_inst += 1
            self.metrics.reset_stats()
        else:
            self.sum_metric = self._score(False) * self.metrics.total_examples
            self.global_sum_metric = self._score(True) * self.metrics.global_total_examples
            self.num_inst = self.metrics.total_examples
            self.global_num_inst = self.metrics.global_total_examples

    def reset(self) -> None:
        self.sum_metric = 0.0
        self.num_inst = 0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0
        self.metrics.reset_stats()

    def reset_local(self) -> None:
        self.sum_metric = 0.0
        self.num_inst = 0
        self.metrics.local_reset_stats()


@register
class F1(_BinaryScoreMetric):
    """F1 score of a *binary* classifier (labels 0/1, predictions (N, 2) scores).

    More than two label values raise ``ValueError``; ``average`` is ``'macro'``
    (per update call, then averaged) or ``'micro'`` (pooled counts).
    """

    def __init__(self, name: str = "f1", output_names: list[str] | None = None,
                 label_names: list[str] | None = None, average: str = "macro") -> None:
        super().__init__(name, output_names, label_names, average)

    def _score(self, use_global: bool) -> float:
        return self.metrics.global_fscore if use_global else self.metrics.fscore


@register
class MCC(_BinaryScoreMetric):
    """Matthews correlation coefficient of a *binary* classifier.

    ``TP*TN - FP*FN`` over the square root of the product of the non-zero terms
    among ``(TP+FP), (TP+FN), (TN+FP), (TN+FN)``.  ``average`` works as for ``F1``.
    """

    def __init__(self, name: str = "mcc", output_names: list[str] | None = None,
                 label_names: list[str] | None = None, average: str = "macro") -> None:
        super().__init__(name, output_names, label_names, average)

    def _score(self, use_global: bool) -> float:
        return self.metrics.matthewscc(use_global=use_global)


def _pick(data: numpy.ndarray, index: numpy.ndarray, axis: int) -> numpy.ndarray:
    """``nd.pick(data, index, axis, mode='clip')``: index shape = data shape without ``axis``."""
    axis = axis % data.ndim
    expected = data.shape[:axis] + data.shape[axis + 1 :]
    if index.shape != expected:
        raise ValueError(
            f"pick: index shape {index.shape} does not match data shape {data.shape} "
            f"without axis {axis}"
        )
    index = numpy.clip(index.astype(numpy.int64), 0, data.shape[axis] - 1)
    return numpy.take_along_axis(data, numpy.expand_dims(index, axis), axis=axis).squeeze(axis)


@register
class Perplexity(EvalMetric):
    """Perplexity ``exp(-mean(log p[label]))`` over all non-ignored positions.

    Each label array is flattened; its size must equal ``pred.size / pred.shape[-1]``
    and the predicted probability of the label is picked along ``axis`` (so
    ``(N, T)`` labels need ``(N*T, vocab)`` predictions).  Positions whose label
    equals ``ignore_label`` (required argument; ``None`` keeps all) count neither
    in the sum nor in the number of instances.  Probabilities are floored at 1e-10.
    """

    def __init__(
        self,
        ignore_label: int | None,
        axis: int = -1,
        name: str = "perplexity",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name,
            ignore_label=ignore_label,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.ignore_label = ignore_label
        self.axis = axis

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        loss = 0.0
        num = 0
        for label, pred in zip(labels, preds):
            label_np = _to_numpy(label)
            pred_np = _to_numpy(pred)
            assert label_np.size == pred_np.size / pred_np.shape[-1], (
                f"shape mismatch: {label_np.shape} vs. {pred_np.shape}"
            )
            label_np = label_np.reshape((label_np.size,))
            picked = _pick(pred_np, label_np.astype("int32"), self.axis)
            if self.ignore_label is not None:
                ignore = (label_np == self.ignore_label).astype(picked.dtype)
                num -= int(ignore.sum())
                picked = picked * (1 - ignore) + ignore
            floor = numpy.asarray(1e-10, dtype=picked.dtype)
            loss -= float(numpy.log(numpy.maximum(floor, picked)).sum(dtype=numpy.float64))
            num += picked.size
        self.sum_metric += loss
        self.global_sum_metric += loss
        self.num_inst += num
        self.global_num_inst += num

    def get(self) -> tuple[str, float]:
        """``(name, exp(sum_metric / num_inst))``; nan before any update."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.sum_metric / self.num_inst))

    def get_global(self) -> tuple[str, float]:
        if self.global_num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, math.exp(self.global_sum_metric / self.global_num_inst))


####################
# REGRESSION METRICS
####################


class _PerBatchRegression(EvalMetric):
    """Shared body of MAE/MSE/RMSE: one per-batch value, averaged over batches."""

    def __init__(
        self,
        name: str,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    @staticmethod
    def _batch_value(diff: numpy.ndarray) -> float:
        raise NotImplementedError()

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label_np = _to_numpy(label).astype(numpy.float64)
            pred_np = _to_numpy(pred).astype(numpy.float64)
            # 1-D arrays become (N, 1) columns so (N,) labels broadcast against (N, 1) preds.
            if len(label_np.shape) == 1:
                label_np = label_np.reshape(label_np.shape[0], 1)
            if len(pred_np.shape) == 1:
                pred_np = pred_np.reshape(pred_np.shape[0], 1)
            value = self._batch_value(label_np - pred_np)
            self.sum_metric += value
            self.global_sum_metric += value
            self.num_inst += 1
            self.global_num_inst += 1


@register
class MAE(_PerBatchRegression):
    """Mean absolute error, computed per label/pred pair and averaged over pairs (batches)."""

    def __init__(
        self,
        name: str = "mae",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def _batch_value(diff: numpy.ndarray) -> float:
        return numpy.abs(diff).mean()


@register
class MSE(_PerBatchRegression):
    """Mean squared error, computed per label/pred pair and averaged over pairs (batches)."""

    def __init__(
        self,
        name: str = "mse",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def _batch_value(diff: numpy.ndarray) -> float:
        return (diff**2.0).mean()


@register
class RMSE(_PerBatchRegression):
    """Root mean squared error per label/pred pair, averaged over pairs.

    This is the mean of per-batch RMSEs, not the square root of the pooled MSE.
    """

    def __init__(
        self,
        name: str = "rmse",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def _batch_value(diff: numpy.ndarray) -> float:
        return numpy.sqrt((diff**2.0).mean())


class _LabelLogLoss(EvalMetric):
    """Shared body of CrossEntropy/NLL: ``-log(pred[i, label[i]] + eps)`` summed over samples."""

    def __init__(
        self,
        eps: float,
        name: str,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name,
            eps=eps,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.eps = eps

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label_np = _to_numpy(label).ravel()
            pred_np = _to_numpy(pred)
            num_examples = pred_np.shape[0]
            assert label_np.shape[0] == num_examples, (label_np.shape[0], num_examples)
            prob = pred_np[numpy.arange(num_examples, dtype=numpy.int64), numpy.int64(label_np)]
            value = (-numpy.log(prob.astype(numpy.float64) + self.eps)).sum()
            self.sum_metric += value
            self.global_sum_metric += value
            self.num_inst += num_examples
            self.global_num_inst += num_examples


@register
@alias("ce")
class CrossEntropy(_LabelLogLoss):
    """Mean over samples of ``-log(p[label] + eps)``; ``pred`` holds probabilities (N, C)."""

    def __init__(
        self,
        eps: float = 1e-12,
        name: str = "cross-entropy",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(eps, name, output_names=output_names, label_names=label_names)


@register
@alias("nll_loss")
class NegativeLogLikelihood(_LabelLogLoss):
    """Mean over samples of ``-log(p[label] + eps)`` (same value as ``CrossEntropy``)."""

    def __init__(
        self,
        eps: float = 1e-12,
        name: str = "nll-loss",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(eps, name, output_names=output_names, label_names=label_names)


@register
@alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation between labels and predictions (of identical shapes).

    ``average='macro'``: ``numpy.corrcoef`` per pair, averaged over pairs.
    ``average='micro'``: one streaming (Welford) correlation over everything seen
    since the last reset; as in MXNet, ``get_global()`` then reports
    ``global_sum_metric / global_num_inst``, which stays 0 in micro mode.
    """

    def __init__(
        self,
        name: str = "pearsonr",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        average: str = "macro",
    ) -> None:
        self.average = average
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        if self.average == "micro":
            self.reset_micro()

    def reset_micro(self) -> None:
        """Clear the streaming (micro) statistics."""
        self._sse_p = 0
        self._mean_p = 0
        self._sse_l = 0
        self._mean_l = 0
        self._pred_nums = 0
        self._label_nums = 0
        self._conv = 0

    def reset(self) -> None:
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0
        if self.average == "micro":
            self.reset_micro()

    def update_variance(self, new_values: numpy.ndarray, *aggregate: Any) -> tuple:
        """Welford update of ``(count, mean, M2)`` with a batch of values."""
        count, mean, m_2 = aggregate
        count += len(new_values)
        delta = new_values - mean
        mean += numpy.sum(delta / count)
        delta_2 = new_values - mean
        m_2 += numpy.sum(delta * delta_2)
        return (count, mean, m_2)

    def update_cov(self, label: numpy.ndarray, pred: numpy.ndarray) -> None:
        """Accumulate the co-moment (label mean already updated, pred mean not yet)."""
        self._conv = self._conv + numpy.sum((label - self._mean_l) * (pred - self._mean_p))

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            check_label_shapes(label, pred, False, True)
            label_np = _to_numpy(label).ravel().astype(numpy.float64)
            pred_np = _to_numpy(pred).ravel().astype(numpy.float64)
            if self.average == "macro":
                pearson_corr = numpy.corrcoef(pred_np, label_np)[0, 1]
                self.sum_metric += pearson_corr
                self.global_sum_metric += pearson_corr
                self.num_inst += 1
                self.global_num_inst += 1
            else:
                self.global_num_inst += 1
                self.num_inst += 1
                self._label_nums, self._mean_l, self._sse_l = self.update_variance(
                    label_np, self._label_nums, self._mean_l, self._sse_l
                )
                self.update_cov(label_np, pred_np)
                self._pred_nums, self._mean_p, self._sse_p = self.update_variance(
                    pred_np, self._pred_nums, self._mean_p, self._sse_p
                )

    def get(self) -> tuple[str, float]:
        if self.num_inst == 0:
            return (self.name, float("nan"))
        if self.average == "macro":
            return (self.name, self.sum_metric / self.num_inst)
        n = self._label_nums
        pearsonr = self._conv / (
            (n - 1) * numpy.sqrt(self._sse_p / (n - 1)) * numpy.sqrt(self._sse_l / (n - 1))
        )
        return (self.name, pearsonr)


@register
class PCC(EvalMetric):
    """Multiclass Matthews correlation (PCC) from a growing K x K confusion matrix.

    Predictions of a different shape than the labels are argmax'ed on axis 1.
    ``num_inst`` counts ``update`` calls; the value is the correlation of the
    confusion matrix accumulated since the (local or global) reset, ``nan`` when
    a marginal is degenerate.
    """

    def __init__(
        self,
        name: str = "pcc",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
        has_global_stats: bool = True,
    ) -> None:
        self.k = 2
        super().__init__(
            name=name,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=has_global_stats,
        )

    def _grow(self, inc: int) -> None:
        self.lcm = numpy.pad(self.lcm, ((0, inc), (0, inc)), "constant", constant_values=0)
        self.gcm = numpy.pad(self.gcm, ((0, inc), (0, inc)), "constant", constant_values=0)
        self.k += inc

    @staticmethod
    def _calc_mcc(cmat: numpy.ndarray) -> float:
        n = cmat.sum()
        x = cmat.sum(axis=1)
        y = cmat.sum(axis=0)
        cov_xx = numpy.sum(x * (n - x))
        cov_yy = numpy.sum(y * (n - y))
        if cov_xx == 0 or cov_yy == 0:
            return float("nan")
        i = cmat.diagonal()
        cov_xy = numpy.sum(i * n - x * y)
        return cov_xy / (cov_xx * cov_yy) ** 0.5

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label_np = _to_numpy(label).astype("int32")
            pred_np = _to_numpy(pred)
            if pred_np.shape != label_np.shape:
                pred_np = pred_np.argmax(axis=1)
            else:
                pred_np = pred_np.astype("int32")
            n = max(pred_np.max(), label_np.max())
            if n >= self.k:
                self._grow(int(n) + 1 - self.k)
            bcm = numpy.zeros((self.k, self.k))
            numpy.add.at(bcm, (pred_np.ravel(), label_np.ravel()), 1)
            self.lcm += bcm
            self.gcm += bcm
        self.num_inst += 1
        self.global_num_inst += 1

    @property
    def sum_metric(self) -> float:  # type: ignore[override]
        """Correlation of the local confusion matrix times ``num_inst``."""
        return self._calc_mcc(self.lcm) * self.num_inst

    @property
    def global_sum_metric(self) -> float:  # type: ignore[override]
        """Correlation of the global confusion matrix times ``global_num_inst``."""
        return self._calc_mcc(self.gcm) * self.global_num_inst

    def reset(self) -> None:
        self.global_num_inst = 0.0
        self.gcm = numpy.zeros((self.k, self.k))
        self.reset_local()

    def reset_local(self) -> None:
        self.num_inst = 0.0
        self.lcm = numpy.zeros((self.k, self.k))


@register
class Loss(EvalMetric):
    """Mean of loss values passed as ``preds`` (labels are ignored).

    ``preds`` may be one array or a list; every element counts as one instance.
    """

    def __init__(
        self,
        name: str = "loss",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    def update(self, labels: Any, preds: Any) -> None:
        if _is_array(preds):
            preds = [preds]
        for pred in preds:
            pred_np = _to_numpy(pred)
            loss = float(pred_np.sum(dtype=numpy.float64))
            self.sum_metric += loss
            self.global_sum_metric += loss
            self.num_inst += pred_np.size
            self.global_num_inst += pred_np.size


@register
class Torch(Loss):
    """Dummy metric for torch criterions (a ``Loss`` named ``'torch'``)."""

    def __init__(
        self,
        name: str = "torch",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(name, output_names=output_names, label_names=label_names)


@register
class Caffe(Loss):
    """Dummy metric for caffe criterions (a ``Loss`` named ``'caffe'``)."""

    def __init__(
        self,
        name: str = "caffe",
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__(name, output_names=output_names, label_names=label_names)


@register
class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred)`` on numpy arrays, called once per pair.

    ``feval`` returns either a value (counted as one instance) or a
    ``(sum_metric, num_inst)`` tuple.  The default name is ``feval.__name__``,
    wrapped as ``'custom(<lambda>)'`` for names containing ``'<'``.  With
    ``allow_extra_outputs`` the label/pred list lengths are not checked (extra
    predictions are ignored).  ``get_config`` raises ``NotImplementedError``.
    """

    def __init__(
        self,
        feval: Callable,
        name: str | None = None,
        allow_extra_outputs: bool = False,
        output_names: list[str] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        if name is None:
            name = feval.__name__
            if name.find("<") != -1:
                name = f"custom({name})"
        super().__init__(
            name,
            feval=feval,
            allow_extra_outputs=allow_extra_outputs,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels: Any, preds: Any) -> None:
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        elif _is_array(labels) or _is_array(preds):
            labels = [labels] if _is_array(labels) else labels
            preds = [preds] if _is_array(preds) else preds
        for pred, label in zip(preds, labels):
            reval = self._feval(_to_numpy(label), _to_numpy(pred))
            if isinstance(reval, tuple):
                (sum_metric, num_inst) = reval
                self.sum_metric += sum_metric
                self.global_sum_metric += sum_metric
                self.num_inst += num_inst
                self.global_num_inst += num_inst
            else:
                self.sum_metric += reval
                self.global_sum_metric += reval
                self.num_inst += 1
                self.global_num_inst += 1

    def get_config(self) -> dict:
        """Always raises ``NotImplementedError``: a function cannot be serialized."""
        raise NotImplementedError("CustomMetric cannot be serialized")


def np(
    numpy_feval: Callable, name: str | None = None, allow_extra_outputs: bool = False
) -> CustomMetric:
    """Wrap a numpy function ``feval(label, pred) -> float`` as a ``CustomMetric``.

    The metric's default name is the function's ``__name__``.
    """

    def feval(label: numpy.ndarray, pred: numpy.ndarray) -> Any:
        return numpy_feval(label, pred)

    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)
