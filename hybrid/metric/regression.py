"""Regression metrics: MAE, MSE, RMSE and Pearson correlation."""

from __future__ import annotations

from typing import Any

import numpy

from .base import (
    EvalMetric,
    _to_numpy,
    alias,
    check_label_shapes,
    register,
)


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
