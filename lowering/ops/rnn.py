"""The fused recurrent operator ``RNN`` and its parameter packer ``_rnn_param_concat``.

``RNN`` runs a stack of (optionally bidirectional) vanilla RNN / LSTM / GRU layers
over a time-major ``(T, N, C)`` sequence with ``lax.scan``. All weights live in
one flat ``parameters`` vector in MXNet's (cuDNN's) order: first every weight
matrix -- per layer, per direction (left then right): ``i2h`` ``(G*H, in)`` then
``h2h`` ``(G*H, H)`` -- then every bias in the same order (``i2h`` then ``h2h``).
Gate blocks are stacked along the rows: LSTM ``[i, f, g, o]``, GRU ``[r, z, n]``
with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ..attrs import BOOL, FLOAT, INT, OPT_FLOAT, OPT_INT, REQUIRED, STR, Attr
from ..registry import OpError, register
from .checks import uniform_dtype
from .nn import keep_mask

_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


def rnn_param_size(mode: str, num_layers: int, directions: int, state_size: int,
                   input_size: int) -> int:
    """Length of the flat ``parameters`` vector of an ``RNN`` op (no projection)."""
    g, h = _GATES[mode], state_size
    total = 0
    for layer in range(num_layers):
        in_size = input_size if layer == 0 else directions * h
        total += directions * (g * h * in_size + g * h * h + 2 * g * h)
    return total


def _unpack(params, mode, num_layers, directions, h, input_size):
    """Split the flat vector into ``[layer][direction] -> (Wx, Wh, bx, bh)``."""
    g = _GATES[mode]
    expected = rnn_param_size(mode, num_layers, directions, h, input_size)
    if params.shape != (expected,):
        raise OpError(f"operator RNN: parameters must have shape ({expected},) for mode={mode}, "
                      f"num_layers={num_layers}, directions={directions}, state_size={h}, "
                      f"input size {input_size}; got {tuple(params.shape)}")
    offset = 0
    weights = []
    for layer in range(num_layers):
        in_size = input_size if layer == 0 else directions * h
        per_dir = []
        for _ in range(directions):
            wx = params[offset:offset + g * h * in_size].reshape(g * h, in_size)
            offset += g * h * in_size
            wh = params[offset:offset + g * h * h].reshape(g * h, h)
            offset += g * h * h
            per_dir.append([wx, wh])
        weights.append(per_dir)
    for layer in range(num_layers):
        for d in range(directions):
            bx = params[offset:offset + g * h]
            offset += g * h
            bh = params[offset:offset + g * h]
            offset += g * h
            weights[layer][d] += [bx, bh]
    return weights


def _cell_step(mode, clip):
    """``step((h, c), (x_proj, mask)) -> ((h, c), out)`` for one direction of one layer."""

    def step(wh, bh, carry, inp):
        h, c = carry
        xp, keep = inp
        hp = h @ wh.T + bh
        if mode == "lstm":
            gi, gf, gg, go = jnp.split(xp + hp, 4, axis=-1)
            c_new = jax.nn.sigmoid(gf) * c + jax.nn.sigmoid(gi) * jnp.tanh(gg)
            if clip is not None:
                lo, hi, nan = clip
                if nan:
                    c_new = jnp.where(jnp.isnan(c_new), hi if hi is not None else 0, c_new)
                c_new = jnp.clip(c_new, lo, hi)
            h_new = jax.nn.sigmoid(go) * jnp.tanh(c_new)
        elif mode == "gru":
            xr, xz, xn = jnp.split(xp, 3, axis=-1)
            hr, hz, hn = jnp.split(hp, 3, axis=-1)
            r = jax.nn.sigmoid(xr + hr)
            z = jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * hn)
            h_new, c_new = (1 - z) * n + z * h, c
        else:
            pre = xp + hp
            h_new = jax.nn.relu(pre) if mode == "rnn_relu" else jnp.tanh(pre)
            c_new = c
        if keep is not None:
            h_new = jnp.where(keep, h_new, h)
            c_new = jnp.where(keep, c_new, c)
            out = jnp.where(keep, h_new, 0)
        else:
            out = h_new
        return (h_new, c_new), out

    return step


def _rnn_inputs(attrs):
    names = ["data", "parameters", "state"]
    if attrs["mode"] == "lstm":
        names.append("state_cell")
    if attrs["use_sequence_length"]:
        names.append("sequence_length")
    return names


def _rnn_outputs(attrs):
    if not attrs["state_outputs"]:
        return 1
    return 3 if attrs["mode"] == "lstm" else 2


def _rnn_shapes(attrs, shapes):
    data = shapes[0]
    if data is None:
        return shapes
    dirs = 2 if attrs["bidirectional"] else 1
    h, layers = attrs["state_size"], attrs["num_layers"]
    out = list(shapes)
    out[1] = (rnn_param_size(attrs["mode"], layers, dirs, h, data[2]),)
    for i in range(2, 2 + (2 if attrs["mode"] == "lstm" else 1)):
        if i < len(out):
            out[i] = (layers * dirs, data[1], h)
    return out


@register(
    "RNN",
    inputs=("data", "parameters", "state", "state_cell", "sequence_length"),
    attrs={
        "state_size": Attr(INT),
        "num_layers": Attr(INT),
        "bidirectional": Attr(BOOL, False),
        "mode": Attr(STR, REQUIRED, tuple(_GATES)),
        "p": Attr(FLOAT, 0.0),
        "state_outputs": Attr(BOOL, False),
        "projection_size": Attr(OPT_INT, None),
        "lstm_state_clip_min": Attr(OPT_FLOAT, None),
        "lstm_state_clip_max": Attr(OPT_FLOAT, None),
        "lstm_state_clip_nan": Attr(BOOL, False),
        "use_sequence_length": Attr(BOOL, False),
    },
    num_outputs=_rnn_outputs,
    needs_rng=True,
    needs_training=True,
    active_inputs=_rnn_inputs,
    infer_shapes=_rnn_shapes,
)
def rnn(data, parameters, state, *rest, state_size, num_layers, bidirectional, mode, p,
        state_outputs, projection_size, lstm_state_clip_min, lstm_state_clip_max,
        lstm_state_clip_nan, use_sequence_length, key, training):
    """Multi-layer (bidirectional) RNN/LSTM/GRU over ``data`` of shape ``(T, N, C)``.

    ``state`` (and ``state_cell`` for LSTM) have shape ``(L*D, N, H)``; a state
    with a zero batch dimension (MXNet's exported ``_zeros`` with an unknown
    batch) means zeros. Outputs ``(T, N, D*H)`` and, with ``state_outputs``, the
    final hidden state (and cell state). With ``use_sequence_length`` the steps
    at and after each sequence's length leave the state unchanged and output
    zeros (the reverse direction starts at the last valid step). Dropout with
    probability ``p`` is applied to each layer's output but the last's, only
    when training.
    """
    if projection_size is not None:
        raise OpError("operator RNN: projection_size is not supported")
    rest = list(rest)
    state_cell = rest.pop(0) if mode == "lstm" else None
    seq_len = rest.pop(0) if use_sequence_length else None
    # A zero-size state is a placeholder for zeros (built in the data's dtype).
    uniform_dtype("RNN", data, parameters=parameters,
                  state=state if state is not None and state.size else None,
                  state_cell=state_cell if state_cell is not None and state_cell.size else None)
    if data.ndim != 3:
        raise OpError(f"operator RNN: data must be 3-D (T, N, C), got shape {tuple(data.shape)}")
    t_len, batch, in_size = data.shape
    dirs = 2 if bidirectional else 1
    h = state_size
    full = (num_layers * dirs, batch, h)

    def fill(s):
        if s is None or (s.shape != full and s.size == 0):
            return jnp.zeros(full, data.dtype)
        if s.shape != full:
            raise OpError(f"operator RNN: state shape {tuple(s.shape)} must be {full}")
        return s.astype(data.dtype)

    state = fill(state)
    cell = fill(state_cell) if mode == "lstm" else jnp.zeros(full, data.dtype)
    weights = _unpack(parameters, mode, num_layers, dirs, h, in_size)
    keep = None
    if seq_len is not None:
        steps = jnp.arange(t_len)[:, None, None]
        keep = steps < seq_len.astype(jnp.int32)[None, :, None]
    clip = None
    if mode == "lstm" and (lstm_state_clip_min is not None or lstm_state_clip_max is not None):
        clip = (lstm_state_clip_min, lstm_state_clip_max, lstm_state_clip_nan)
    step = _cell_step(mode, clip)
    x = data
    h_out, c_out = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            wx, wh, bx, bh = weights[layer][d]
            xp = x @ wx.T + bx
            idx = layer * dirs + d
            (hT, cT), ys = lax.scan(
                lambda carry, inp, wh=wh, bh=bh: step(wh, bh, carry, inp),
                (state[idx], cell[idx]), (xp, keep), reverse=d == 1)
            outs.append(ys)
            h_out.append(hT)
            c_out.append(cT)
        x = outs[0] if dirs == 1 else jnp.concatenate(outs, axis=-1)
        if training and p > 0 and layer < num_layers - 1:
            key, sub = jax.random.split(key)
            mask = keep_mask(sub, 1.0 - p, x.shape, x.dtype)
            x = jnp.where(mask, x / (1.0 - p), jnp.zeros((), x.dtype)).astype(x.dtype)
    if not state_outputs:
        return x
    if mode == "lstm":
        return x, jnp.stack(h_out), jnp.stack(c_out)
    return x, jnp.stack(h_out)


@register(
    "_rnn_param_concat",
    inputs=("*data",),
    attrs={"num_args": Attr(INT), "dim": Attr(INT, 0)},
)
def rnn_param_concat(*data, num_args, dim):
    """Concatenate the (flattened) parameter arrays along ``dim`` into the ``RNN``
    op's flat parameter vector; MXNet's graph feeds it 1-D reshapes."""
    if len(data) != num_args:
        raise OpError(f"operator _rnn_param_concat: num_args={num_args} but got {len(data)} "
                      "inputs")
    if dim == 0:
        return jnp.concatenate([jnp.ravel(a) for a in data])
    return jnp.concatenate(data, axis=dim)
