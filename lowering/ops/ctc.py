"""Connectionist Temporal Classification loss (``CTCLoss``, alias ``ctc_loss``).

MXNet's op (``src/operator/nn/ctc_loss-inl.h``, warp-ctc on CPU) takes
unnormalised activations ``data`` of shape ``(T, N, C)`` (a softmax over ``C``
is applied inside), 2-D ``label`` of shape ``(N, L)`` and returns the negative
log-likelihood of each sequence, shape ``(N,)``.

* ``blank_label='first'`` (default): class ``0`` is the blank, labels are
  ``1..C-1`` and, without ``label_lengths``, a label row ends at its first ``0``.
* ``blank_label='last'``: class ``C-1`` is the blank, labels are ``0..C-2`` and a
  row ends at its first ``-1``.
* ``use_data_lengths`` / ``use_label_lengths`` add the ``data_lengths`` /
  ``label_lengths`` inputs (shape ``(N,)``); otherwise every sequence uses all
  ``T`` steps and the label length comes from the padding value.

Here the loss is a log-space forward (alpha) recursion over the blank-extended
label run with ``lax.scan``; its gradient is JAX's derivative of that recursion,
which equals warp-ctc's ``softmax - posterior`` and is zero past each sequence's
data length. A label that no alignment can produce costs ``+inf``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.nn import log_softmax

from ..attrs import BOOL, STR, Attr
from ..registry import OpError, register


def _ctc_inputs(attrs):
    names = ["data", "label"]
    if attrs["use_data_lengths"]:
        names.append("data_lengths")
    if attrs["use_label_lengths"]:
        names.append("label_lengths")
    return names


def _lengths_from_padding(label, pad):
    """Index of the first ``pad`` value in each row (the row length when absent)."""
    is_pad = label == pad
    first = jnp.argmax(is_pad, axis=1)
    return jnp.where(jnp.any(is_pad, axis=1), first, label.shape[1]).astype(jnp.int32)


@register(
    "CTCLoss",
    inputs=("data", "label", "data_lengths", "label_lengths"),
    attrs={
        "use_data_lengths": Attr(BOOL, False),
        "use_label_lengths": Attr(BOOL, False),
        "blank_label": Attr(STR, "first", choices=("first", "last")),
    },
    active_inputs=_ctc_inputs,
    aliases=("ctc_loss", "_contrib_CTCLoss", "_contrib_ctc_loss"),
    json_outputs=2,
)
def ctc_loss(data, label, *lengths, use_data_lengths, use_label_lengths, blank_label):
    """Per-sequence CTC negative log-likelihood of ``label`` under ``softmax(data)``.

    ``data`` is ``(T, N, C)`` activations, ``label`` ``(N, L)``. The blank is
    class 0 (``blank_label='first'``, padding value 0) or ``C-1`` (``'last'``,
    padding value -1). Optional ``data_lengths`` / ``label_lengths`` (``(N,)``)
    are read when ``use_data_lengths`` / ``use_label_lengths`` are set.
    """
    if data.ndim != 3 or label.ndim != 2:
        raise OpError(f"operator CTCLoss: data must be 3-D and label 2-D, got shapes "
                      f"{tuple(data.shape)} and {tuple(label.shape)}")
    steps, batch, classes = data.shape
    if label.shape[0] != batch:
        raise OpError(f"operator CTCLoss: label batch size {label.shape[0]} differs from "
                      f"data batch size {batch}")
    if label.shape[1] > steps:
        raise OpError("operator CTCLoss: the max number of labels cannot exceed the maximum "
                      "sequence length of the data")
    rest = list(lengths)
    data_lengths = rest.pop(0) if use_data_lengths else None
    label_lengths = rest.pop(0) if use_label_lengths else None
    blank = 0 if blank_label == "first" else classes - 1
    pad = 0 if blank_label == "first" else -1

    lab = jnp.round(label).astype(jnp.int32)
    if label_lengths is not None:
        lab_len = label_lengths.astype(jnp.int32)
    else:
        lab_len = _lengths_from_padding(lab, pad)
    if data_lengths is not None:
        dat_len = data_lengths.astype(jnp.int32)
    else:
        dat_len = jnp.full((batch,), steps, jnp.int32)

    max_labels = lab.shape[1]
    states = 2 * max_labels + 1
    pos = jnp.arange(states)
    lab_index = jnp.clip((pos - 1) // 2, 0, max(max_labels - 1, 0))
    # blank-extended labels (N, S): blank, l1, blank, l2, ..., blank
    if max_labels:
        ext = jnp.where(pos[None, :] % 2 == 1, jnp.take(lab, lab_index, axis=1), blank)
    else:
        ext = jnp.full((batch, states), blank, jnp.int32)
    valid_label = (pos[None, :] - 1) // 2 < lab_len[:, None]
    ext = jnp.where((pos[None, :] % 2 == 0) | valid_label, ext, blank)
    ext = jnp.clip(ext, 0, classes - 1)
    ext_prev2 = jnp.concatenate([jnp.full((batch, 2), -1, ext.dtype), ext[:, :-2]], axis=1)
    # the skip transition s-2 -> s is allowed into a non-blank differing from s-2
    skip = (ext != blank) & (ext != ext_prev2) & (pos[None, :] >= 2)

    logp = log_softmax(data, axis=2)  # (T, N, C)
    neg = jnp.asarray(-1e30, logp.dtype)
    emit = jnp.take_along_axis(logp, jnp.broadcast_to(ext[None], (steps, batch, states)), axis=2)

    init = jnp.where(pos[None, :] < 2, emit[0], neg)
    init = jnp.where((pos[None, :] == 1) & (lab_len[:, None] == 0), neg, init)

    def step(alpha, inputs):
        t, e = inputs
        prev1 = jnp.concatenate([jnp.full((batch, 1), neg), alpha[:, :-1]], axis=1)
        prev2 = jnp.concatenate([jnp.full((batch, 2), neg), alpha[:, :-2]], axis=1)
        prev2 = jnp.where(skip, prev2, neg)
        new = jnp.logaddexp(jnp.logaddexp(alpha, prev1), prev2) + e
        alpha = jnp.where((t < dat_len)[:, None], new, alpha)
        return alpha, None

    alpha, _ = lax.scan(step, init, (jnp.arange(1, steps), emit[1:]))
    last = 2 * lab_len
    end_blank = jnp.take_along_axis(alpha, last[:, None], axis=1)[:, 0]
    end_label = jnp.take_along_axis(alpha, jnp.maximum(last - 1, 0)[:, None], axis=1)[:, 0]
    end_label = jnp.where(lab_len > 0, end_label, neg)
    loglike = jnp.logaddexp(end_blank, end_label)
    # no alignment fits (label too long for the data length): warp-ctc's cost is +inf
    return jnp.where(loglike < neg / 2, jnp.asarray(jnp.inf, loglike.dtype), -loglike)
