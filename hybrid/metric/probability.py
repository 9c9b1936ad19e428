"""Metrics on predicted probabilities: perplexity, cross-entropy, NLL."""

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
