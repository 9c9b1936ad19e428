"""User-supplied metrics: ``Loss`` (and its Torch/Caffe aliases), ``CustomMetric``, ``np``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from .base import (
    EvalMetric,
    _is_array,
    _to_numpy,
    check_label_shapes,
    register,
)


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
