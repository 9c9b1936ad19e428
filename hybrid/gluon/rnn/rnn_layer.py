"""Fused recurrent layers ``RNN``, ``LSTM`` and ``GRU`` (MXNet 1.9 ``gluon.rnn``).

Each layer owns per-layer, per-direction parameters ``{l|r}{k}_{i2h|h2h}_{weight|bias}``
(gate blocks stacked along axis 0: LSTM ``[i, f, g, o]``, GRU ``[r, z, n]``). The
forward pass flattens and concatenates them with ``_rnn_param_concat`` (weights of
every layer and direction first, then the biases) and runs the fused ``RNN`` op,
exactly the graph MXNet exports. ``save_parameters`` uses MXNet's legacy names
(``_unfused.0.i2h_weight``; bidirectional ``_unfused.0.l_cell.i2h_weight``).
"""

from __future__ import annotations

import re
from typing import Any

from ... import ndarray as _nd_mod
from ...ndarray.ndarray import NDArray
from ..block import HybridBlock
from ..parameter import Parameter

_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}
_KEY = re.compile(r"(l|r)(\d+)_(i2h|h2h)_(weight|bias)\Z")


class _RNNLayer(HybridBlock):
    """Implementation shared by :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    def __init__(self, hidden_size: int, num_layers: int, layout: str, dropout: float,
                 bidirectional: bool, input_size: int, i2h_weight_initializer: Any,
                 h2h_weight_initializer: Any, i2h_bias_initializer: Any,
                 h2h_bias_initializer: Any, mode: str, projection_size: int | None = None,
                 h2r_weight_initializer: Any = None, lstm_state_clip_min: float | None = None,
                 lstm_state_clip_max: float | None = None,
                 lstm_state_clip_nan: bool = False, dtype: Any = "float32",
                 use_sequence_length: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if layout not in ("TNC", "NTC"):
            raise ValueError(f"Invalid layout {layout}; must be one of ['TNC' or 'NTC']")
        if projection_size is not None:
            raise NotImplementedError("projection_size is not supported")
        self._hidden_size = hidden_size
        self._projection_size = projection_size
        self._num_layers = num_layers
        self._mode = mode
        self._layout = layout
        self._dropout = dropout
        self._dir = 2 if bidirectional else 1
        self._input_size = input_size
        self._lstm_state_clip_min = lstm_state_clip_min
        self._lstm_state_clip_max = lstm_state_clip_max
        self._lstm_state_clip_nan = lstm_state_clip_nan
        self._dtype = dtype
        self._use_sequence_length = use_sequence_length
        self._gates = _GATES[mode]
        self.skip_states: bool | None = None
        ng, ni, nh = self._gates, input_size, hidden_size
        for i in range(num_layers):
            for j in ["l", "r"][:self._dir]:
                self._register_param(f"{j}{i}_i2h_weight", (ng * nh, ni),
                                     i2h_weight_initializer, dtype)
                self._register_param(f"{j}{i}_h2h_weight", (ng * nh, nh),
                                     h2h_weight_initializer, dtype)
                self._register_param(f"{j}{i}_i2h_bias", (ng * nh,), i2h_bias_initializer, dtype)
                self._register_param(f"{j}{i}_h2h_bias", (ng * nh,), h2h_bias_initializer, dtype)
            ni = nh * self._dir

    def _register_param(self, name: str, shape: tuple, init: Any, dtype: Any) -> Parameter:
        p = self.params.get(name, shape=shape, init=init, allow_deferred_init=True, dtype=dtype)
        setattr(self, name, p)
        return p

    def __repr__(self) -> str:
        shape = self.l0_i2h_weight.shape
        mapping = f"{shape[1] if shape[1] else None} -> {shape[0] // self._gates}"
        extra = ""
        if self._num_layers != 1:
            extra += f", num_layers={self._num_layers}"
        if self._dropout != 0:
            extra += f", dropout={self._dropout}"
        if self._dir == 2:
            extra += ", bidirectional"
        return f"{self.__class__.__name__}({mapping}, {self._layout}{extra})"

    def _collect_params_with_prefix(self, prefix: str = "") -> dict[str, Parameter]:
        """MXNet's legacy structural names: ``_unfused.<layer>.<i2h|h2h>_<weight|bias>``,
        bidirectional ``_unfused.<layer>.<l|r>_cell.<...>`` (what ``save_parameters``
        writes and ``load_parameters`` expects)."""
        if prefix:
            prefix += "."
        bidirectional = any(_KEY.match(k).group(1) == "r" for k in self._reg_params)
        ret = {}
        for key, val in self._reg_params.items():
            d, layer, g, t = _KEY.match(key).groups()
            name = (f"_unfused.{layer}.{d}_cell.{g}_{t}" if bidirectional
                    else f"_unfused.{layer}.{g}_{t}")
            ret[prefix + name] = val
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    def state_info(self, batch_size: int = 0) -> list[dict]:
        """Shapes of the begin states: ``(num_layers * directions, batch, hidden)``."""
        shape = (self._num_layers * self._dir, batch_size, self._hidden_size)
        info = [{"shape": shape, "__layout__": "LNC", "dtype": self._dtype}]
        if self._mode == "lstm":
            info.append(dict(info[0]))
        return info

    def begin_state(self, batch_size: int = 0, func: Any = None, **kwargs: Any) -> list:
        """Initial states (zeros by default, via ``func(shape=..., **kwargs)``)."""
        states = []
        for i, info in enumerate(self.state_info(batch_size)):
            info = dict(info)
            info.update(kwargs)
            if func is None:
                states.append(_nd_mod.zeros(info["shape"], ctx=info.get("ctx"),
                                            dtype=info["dtype"]))
            else:
                states.append(func(name=f"{self.prefix}h0_{i}", **info))
        return states

    def _finish_input_size(self, inputs: NDArray) -> None:
        """Fill the deferred ``l0``/``r0`` i2h weight shapes from the input's channels."""
        channels = inputs.shape[2]
        for d in ["l", "r"][:self._dir]:
            p = self._reg_params[f"{d}0_i2h_weight"]
            if p.shape[1] in (0, None):
                p.shape = (p.shape[0], channels)
                p._finish_deferred_init()

    def __call__(self, inputs: Any, states: Any = None, sequence_length: Any = None,
                 **kwargs: Any) -> Any:
        self.skip_states = states is None
        if isinstance(inputs, NDArray):
            self._finish_input_size(inputs)
        if states is None:
            if isinstance(inputs, NDArray):
                batch_size = inputs.shape[self._layout.find("N")]
                states = self.begin_state(batch_size, ctx=inputs.context,
                                          dtype=inputs.dtype)
            else:
                from ... import symbol as _sym

                states = self.begin_state(0, func=_sym.zeros)
        if not isinstance(states, (list, tuple)):
            states = [states]
        if self._use_sequence_length:
            return super().__call__(inputs, list(states), sequence_length)
        return super().__call__(inputs, list(states))

    def _signature_extra(self) -> bool | None:
        # Without given states the traced graph returns only the outputs.
        return self.skip_states

    def hybrid_forward(self, F, inputs, states, sequence_length=None, **kwargs):
        if isinstance(inputs, NDArray):
            batch_size = inputs.shape[self._layout.find("N")]
            for state, info in zip(states, self.state_info(batch_size)):
                if tuple(state.shape) != info["shape"]:
                    raise ValueError(f"Invalid recurrent state shape. Expecting {info['shape']}, "
                                     f"got {tuple(state.shape)}.")
        out = self._forward_kernel(F, inputs, states, sequence_length, **kwargs)
        return out[0] if self.skip_states else out

    def _forward_kernel(self, F, inputs, states, sequence_length, **kwargs):
        if self._layout == "NTC":
            inputs = F.swapaxes(inputs, dim1=0, dim2=1)
        params = [F.reshape(kwargs[f"{d}{layer}_{g}_{t}"], shape=(-1,))
                  for t in ["weight", "bias"]
                  for layer in range(self._num_layers)
                  for d in ["l", "r"][:self._dir]
                  for g in ["i2h", "h2h"]]
        params = F._internal._rnn_param_concat(*params, dim=0, num_args=len(params))
        extra = {"sequence_length": sequence_length} if self._use_sequence_length else {}
        rnn = F.RNN(inputs, params, *states, **extra,
                    use_sequence_length=self._use_sequence_length,
                    state_size=self._hidden_size, projection_size=self._projection_size,
                    num_layers=self._num_layers, bidirectional=self._dir == 2,
                    p=self._dropout, state_outputs=True, mode=self._mode,
                    lstm_state_clip_min=self._lstm_state_clip_min,
                    lstm_state_clip_max=self._lstm_state_clip_max,
                    lstm_state_clip_nan=self._lstm_state_clip_nan)
        if self._mode == "lstm":
            outputs, states = rnn[0], [rnn[1], rnn[2]]
        else:
            outputs, states = rnn[0], [rnn[1]]
        if self._layout == "NTC":
            outputs = F.swapaxes(outputs, dim1=0, dim2=1)
        return outputs, states


class RNN(_RNNLayer):
    r"""Multi-layer Elman RNN: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Args:
        hidden_size: number of features of the hidden state.
        num_layers: number of stacked layers.
        activation: ``'relu'`` or ``'tanh'``.
        layout: ``'TNC'`` (time, batch, channel) or ``'NTC'``.
        dropout: dropout probability on each layer's output but the last's.
        bidirectional: run a second, reversed, RNN per layer and concatenate.
        input_size: input channels; 0 infers them at the first call.

    Called as ``layer(data)`` (zero begin states; returns only the output) or
    ``layer(data, states)`` returning ``(output, new_states)``; states have shape
    ``(num_layers * directions, batch, hidden_size)`` whatever the layout.
    """

    def __init__(self, hidden_size: int, num_layers: int = 1, activation: str = "relu",
                 layout: str = "TNC", dropout: float = 0, bidirectional: bool = False,
                 i2h_weight_initializer: Any = None, h2h_weight_initializer: Any = None,
                 i2h_bias_initializer: Any = "zeros", h2h_bias_initializer: Any = "zeros",
                 input_size: int = 0, dtype: Any = "float32", **kwargs: Any) -> None:
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, "rnn_" + activation,
                         dtype=dtype, **kwargs)


class LSTM(_RNNLayer):
    r"""Multi-layer LSTM (gates ``[i, f, g, o]``):
    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``.

    Same arguments as :class:`RNN` (no ``activation``), plus
    ``lstm_state_clip_min``/``max``/``nan`` clipping the cell state. States are
    ``[h, c]``, each ``(num_layers * directions, batch, hidden_size)``.
    """

    def __init__(self, hidden_size: int, num_layers: int = 1, layout: str = "TNC",
                 dropout: float = 0, bidirectional: bool = False, input_size: int = 0,
                 i2h_weight_initializer: Any = None, h2h_weight_initializer: Any = None,
                 i2h_bias_initializer: Any = "zeros", h2h_bias_initializer: Any = "zeros",
                 projection_size: int | None = None, h2r_weight_initializer: Any = None,
                 state_clip_min: float | None = None, state_clip_max: float | None = None,
                 state_clip_nan: bool = False, dtype: Any = "float32",
                 use_sequence_length: bool = False, **kwargs: Any) -> None:
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, "lstm",
                         projection_size=projection_size,
                         h2r_weight_initializer=h2r_weight_initializer,
                         lstm_state_clip_min=state_clip_min,
                         lstm_state_clip_max=state_clip_max,
                         lstm_state_clip_nan=state_clip_nan, dtype=dtype,
                         use_sequence_length=use_sequence_length, **kwargs)


class GRU(_RNNLayer):
    r"""Multi-layer GRU (gates ``[r, z, n]``, cuDNN variant):
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``.

    Same arguments as :class:`RNN` (no ``activation``).
    """

    def __init__(self, hidden_size: int, num_layers: int = 1, layout: str = "TNC",
                 dropout: float = 0, bidirectional: bool = False, input_size: int = 0,
                 i2h_weight_initializer: Any = None, h2h_weight_initializer: Any = None,
                 i2h_bias_initializer: Any = "zeros", h2h_bias_initializer: Any = "zeros",
                 dtype: Any = "float32", use_sequence_length: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(hidden_size, num_layers, layout, dropout, bidirectional, input_size,
                         i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, "gru", dtype=dtype,
                         use_sequence_length=use_sequence_length, **kwargs)


__all__ = ["RNN", "LSTM", "GRU"]
