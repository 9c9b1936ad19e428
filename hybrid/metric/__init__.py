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

from .base import CompositeEvalMetric, EvalMetric, alias, check_label_shapes, create, register
from .classification import F1, MCC, PCC, Accuracy, TopKAccuracy
from .custom import Caffe, CustomMetric, Loss, Torch, np
from .probability import CrossEntropy, NegativeLogLikelihood, Perplexity
from .regression import MAE, MSE, RMSE, PearsonCorrelation

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
