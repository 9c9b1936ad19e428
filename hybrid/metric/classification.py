"""Classification metrics: accuracy, top-k, F1, MCC (binary) and PCC (multi-class)."""

from __future__ import annotations

import math
from typing import Any

import numpy

from .base import (
    EvalMetric,
    _to_numpy,
    alias,
    check_label_shapes,
    register,
)


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
