"""Recurrent cells (MXNet 1.9 ``gluon.rnn.rnn_cell``): one time step per call.

A cell is called as ``cell(x_t, states) -> (output, new_states)``; ``unroll``
runs it over a sequence. Cell parameters are ``i2h_weight`` ``(G*H, C)``,
``h2h_weight`` ``(G*H, H)``, ``i2h_bias`` and ``h2h_bias`` with the gate blocks
stacked along axis 0 (LSTM ``[i, f, g, o]``, GRU ``[r, z, n]``).
"""

from __future__ import annotations

from typing import Any

from ... import ndarray as _nd_mod
from ... import symbol as _sym_mod
from ...ndarray.ndarray import NDArray
from ...symbol.symbol import Symbol
from ..block import Block, HybridBlock


def _cells_state_info(cells, batch_size: int) -> list[dict]:
    return sum([c.state_info(batch_size) for c in cells], [])


def _cells_begin_state(cells, **kwargs: Any) -> list:
    return sum([c.begin_state(**kwargs) for c in cells], [])


def _get_begin_state(cell, F, begin_state, inputs, batch_size: int) -> list:
    if begin_state is None:
        if F is _nd_mod:
            ctx = inputs.context if isinstance(inputs, NDArray) else inputs[0].context
            dtype = inputs.dtype if isinstance(inputs, NDArray) else inputs[0].dtype
            begin_state = cell.begin_state(func=_nd_mod.zeros, batch_size=batch_size, ctx=ctx,
                                           dtype=dtype)
        else:
            # MXNet writes ``zeros((0, H))`` and lets shape inference fill the batch; the
            # compiled graph needs concrete shapes, so the zeros are built from the input.
            if isinstance(inputs, Symbol):
                return cell.begin_state(func=_sym_mod.zeros, batch_size=batch_size)
            column = F.zeros_like(F.slice_axis(inputs[0], axis=1, begin=0, end=1))
            begin_state = []
            for info in cell.state_info(batch_size):
                shape = info["shape"]
                if len(shape) != 2:
                    raise ValueError(f"cannot build a symbolic begin state of shape {shape}")
                begin_state.append(F.broadcast_axis(column, axis=1, size=shape[1]))
    return begin_state


def _format_sequence(length: int | None, inputs: Any, layout: str, merge: bool | None,
                     in_layout: str | None = None):
    """Split a merged sequence into ``length`` steps (``merge=False``), or stack a list of
    steps along the time axis (``merge=True``). Returns ``(inputs, axis, F, batch_size)``."""
    if layout not in ("TNC", "NTC"):
        raise ValueError(f"Invalid layout {layout}; must be one of ['TNC' or 'NTC']")
    axis = layout.find("T")
    batch_axis = layout.find("N")
    batch_size = 0
    in_axis = in_layout.find("T") if in_layout is not None else axis
    if isinstance(inputs, Symbol):
        F = _sym_mod
        if merge is False:
            if length is None:
                raise ValueError("unroll needs the sequence length for symbolic inputs")
            inputs = list(F.split(inputs, axis=in_axis, num_outputs=length, squeeze_axis=1))
    elif isinstance(inputs, NDArray):
        F = _nd_mod
        batch_size = inputs.shape[batch_axis]
        if merge is False:
            if length is not None and length != inputs.shape[in_axis]:
                raise ValueError(f"unroll length {length} does not match the input's time "
                                 f"dimension {inputs.shape[in_axis]}")
            steps = F.split(inputs, axis=in_axis, num_outputs=inputs.shape[in_axis],
                            squeeze_axis=1)
            inputs = [steps] if isinstance(steps, NDArray) else list(steps)
    else:
        if length is not None and len(inputs) != length:
            raise ValueError(f"unroll length {length} does not match {len(inputs)} inputs")
        if isinstance(inputs[0], Symbol):
            F = _sym_mod
        else:
            F = _nd_mod
            batch_size = inputs[0].shape[0]
        if merge is True:
            inputs = F.stack(*inputs, axis=axis)
            in_axis = axis
    if isinstance(inputs, (NDArray, Symbol)) and axis != in_axis:
        inputs = F.swapaxes(inputs, dim1=axis, dim2=in_axis)
    return inputs, axis, F, batch_size


def _mask_sequence_variable_length(F, data, length: int, valid_length, time_axis: int,
                                   merge: bool):
    if not isinstance(data, (NDArray, Symbol)):
        data = F.stack(*data, axis=time_axis)
    outputs = F.SequenceMask(data, sequence_length=valid_length, use_sequence_length=True,
                             axis=time_axis)
    if not merge:
        outputs = F.split(outputs, num_outputs=length, axis=time_axis, squeeze_axis=True)
        outputs = [outputs] if isinstance(outputs, (NDArray, Symbol)) else list(outputs)
    return outputs


class RecurrentCell(Block):
    """Abstract base class of recurrent cells (eager)."""

    def __init__(self, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)
        self._modified = False
        self.reset()

    def reset(self) -> None:
        """Reset before re-using the cell for another graph (step counters)."""
        self._init_counter = -1
        self._counter = -1
        for cell in self._children.values():
            if isinstance(cell, RecurrentCell):
                cell.reset()

    def state_info(self, batch_size: int = 0) -> list[dict]:
        """Shape and layout of each state."""
        raise NotImplementedError()

    def begin_state(self, batch_size: int = 0, func: Any = _nd_mod.zeros,
                    **kwargs: Any) -> list:
        """Initial states, ``func(shape=..., **kwargs)`` per state (zeros by default)."""
        if self._modified:
            raise RuntimeError("After applying modifier cells (e.g. ZoneoutCell) the base "
                               "cell cannot be called directly. Call the modifier cell instead.")
        states = []
        for info in self.state_info(batch_size):
            self._init_counter += 1
            info = dict(info) if info is not None else {}
            info.update(kwargs)
            info.pop("__layout__", None)
            if func is _nd_mod.zeros:
                states.append(_nd_mod.zeros(info["shape"], ctx=info.get("ctx"),
                                            dtype=info.get("dtype")))
            else:
                states.append(func(name=f"{self._prefix}begin_state_{self._init_counter}",
                                   **info))
        return states

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: bool | None = None, valid_length: Any = None):
        """Run the cell for ``length`` steps.

        ``inputs`` is one array of layout ``layout`` or a list of ``length`` arrays
        ``(N, C)``. Returns ``(outputs, states)``: outputs merged into one array along
        the time axis when ``merge_outputs`` (a list when False; as given when None).
        With ``valid_length``, outputs past each sequence's length are zero and the
        states are those at its last valid step.
        """
        self.reset()
        inputs, axis, F, batch_size = _format_sequence(length, inputs, layout, False)
        begin_state = _get_begin_state(self, F, begin_state, inputs, batch_size)
        states = begin_state
        outputs = []
        all_states = []
        for i in range(length):
            output, states = self(inputs[i], states)
            outputs.append(output)
            if valid_length is not None:
                all_states.append(states)
        if valid_length is not None:
            states = [F.SequenceLast(F.stack(*ele, axis=0), sequence_length=valid_length,
                                     use_sequence_length=True, axis=0)
                      for ele in zip(*all_states)]
            outputs = _mask_sequence_variable_length(F, outputs, length, valid_length, axis,
                                                     True)
        outputs, _, _, _ = _format_sequence(length, outputs, layout, merge_outputs)
        return outputs, states

    def _get_activation(self, F, inputs, activation, **kwargs):
        if isinstance(activation, str):
            if activation in ("tanh", "relu", "sigmoid", "softsign"):
                return getattr(F, activation)(inputs, **kwargs)
            return F.Activation(inputs, act_type=activation, **kwargs)
        return activation(inputs, **kwargs)

    def __call__(self, inputs: Any, states: Any) -> Any:
        self._counter += 1
        return super().__call__(inputs, states)

    def forward(self, inputs: Any, states: Any) -> Any:
        """One step: ``(output, new_states)``."""
        raise NotImplementedError


class HybridRecurrentCell(RecurrentCell, HybridBlock):
    """A recurrent cell that can be hybridized; implement ``hybrid_forward``."""

    def __init__(self, prefix: str | None = None, params: Any = None) -> None:
        HybridBlock.__init__(self, prefix=prefix, params=params)
        self._modified = False
        self.reset()

    def __call__(self, inputs: Any, states: Any) -> Any:
        self._counter += 1
        return HybridBlock.__call__(self, inputs, states)

    def forward(self, x: Any, *args: Any) -> Any:
        return HybridBlock.forward(self, x, *args)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError


class _BaseCell(HybridRecurrentCell):
    """The shared parameter setup of RNNCell, LSTMCell and GRUCell."""

    _gates = 1

    def __init__(self, hidden_size: int, i2h_weight_initializer: Any,
                 h2h_weight_initializer: Any, i2h_bias_initializer: Any,
                 h2h_bias_initializer: Any, input_size: int, prefix: str | None,
                 params: Any, dtype: Any = "float32") -> None:
        super().__init__(prefix=prefix, params=params)
        self._hidden_size = hidden_size
        self._input_size = input_size
        g = self._gates * hidden_size
        self.i2h_weight = self.params.get("i2h_weight", shape=(g, input_size),
                                          init=i2h_weight_initializer, dtype=dtype,
                                          allow_deferred_init=True)
        self.h2h_weight = self.params.get("h2h_weight", shape=(g, hidden_size),
                                          init=h2h_weight_initializer, dtype=dtype,
                                          allow_deferred_init=True)
        self.i2h_bias = self.params.get("i2h_bias", shape=(g,), init=i2h_bias_initializer,
                                        dtype=dtype, allow_deferred_init=True)
        self.h2h_bias = self.params.get("h2h_bias", shape=(g,), init=h2h_bias_initializer,
                                        dtype=dtype, allow_deferred_init=True)

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def _alias(self) -> str:
        return self._alias_name

    def _projections(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        g = self._gates * self._hidden_size
        i2h = F.FullyConnected(inputs, i2h_weight, i2h_bias, num_hidden=g, name="i2h")
        h2h = F.FullyConnected(states[0], h2h_weight, h2h_bias, num_hidden=g, name="h2h")
        return i2h, h2h

    def __repr__(self) -> str:
        shape = self.i2h_weight.shape
        return (f"{self.__class__.__name__}({shape[1] if shape[1] else None} -> "
                f"{shape[0] // self._gates})")


class RNNCell(_BaseCell):
    """Elman cell: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; output ``h'``, states ``[h']``.

    Args: hidden_size, activation (``'tanh'``, ``'relu'``, ... or a callable),
    i2h/h2h weight and bias initializers, input_size (0 defers), prefix, params.
    """

    _alias_name = "rnn"

    def __init__(self, hidden_size: int, activation: Any = "tanh",
                 i2h_weight_initializer: Any = None, h2h_weight_initializer: Any = None,
                 i2h_bias_initializer: Any = "zeros", h2h_bias_initializer: Any = "zeros",
                 input_size: int = 0, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, input_size, prefix,
                         params)
        self._activation = activation

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        i2h, h2h = self._projections(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                     h2h_bias)
        output = self._get_activation(F, i2h + h2h, self._activation, name="out")
        return output, [output]


class LSTMCell(_BaseCell):
    """LSTM cell, gates ``[i, f, g, o]``: ``c' = f * c + i * g``, ``h' = o * act(c')``.

    Output ``h'``, states ``[h', c']``. ``activation`` (default tanh) is applied to
    ``g`` and ``c'``; ``recurrent_activation`` (default sigmoid) to the gates.
    """

    _alias_name = "lstm"
    _gates = 4

    def __init__(self, hidden_size: int, i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", input_size: int = 0,
                 prefix: str | None = None, params: Any = None, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid") -> None:
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, input_size, prefix,
                         params)
        self._activation = activation
        self._recurrent_activation = recurrent_activation

    def state_info(self, batch_size: int = 0) -> list[dict]:
        info = {"shape": (batch_size, self._hidden_size), "__layout__": "NC"}
        return [info, dict(info)]

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        i2h, h2h = self._projections(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                     h2h_bias)
        gates = F.SliceChannel(i2h + h2h, num_outputs=4, name="slice")
        rec = self._recurrent_activation
        in_gate = self._get_activation(F, gates[0], rec, name="i")
        forget_gate = self._get_activation(F, gates[1], rec, name="f")
        in_transform = self._get_activation(F, gates[2], self._activation, name="c")
        out_gate = self._get_activation(F, gates[3], rec, name="o")
        next_c = forget_gate * states[1] + in_gate * in_transform
        next_h = out_gate * self._get_activation(F, next_c, self._activation, name="out")
        return next_h, [next_h, next_c]


class GRUCell(_BaseCell):
    """GRU cell, gates ``[r, z, n]``: ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
    ``h' = (1 - z) * n + z * h``; output ``h'``, states ``[h']``."""

    _alias_name = "gru"
    _gates = 3

    def __init__(self, hidden_size: int, i2h_weight_initializer: Any = None,
                 h2h_weight_initializer: Any = None, i2h_bias_initializer: Any = "zeros",
                 h2h_bias_initializer: Any = "zeros", input_size: int = 0,
                 prefix: str | None = None, params: Any = None, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid") -> None:
        super().__init__(hidden_size, i2h_weight_initializer, h2h_weight_initializer,
                         i2h_bias_initializer, h2h_bias_initializer, input_size, prefix,
                         params)
        self._activation = activation
        self._recurrent_activation = recurrent_activation

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        prev_h = states[0]
        i2h, h2h = self._projections(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                     h2h_bias)
        i2h_r, i2h_z, i2h = F.SliceChannel(i2h, num_outputs=3, name="i2h_slice")
        h2h_r, h2h_z, h2h = F.SliceChannel(h2h, num_outputs=3, name="h2h_slice")
        rec = self._recurrent_activation
        reset_gate = self._get_activation(F, i2h_r + h2h_r, rec, name="r_act")
        update_gate = self._get_activation(F, i2h_z + h2h_z, rec, name="z_act")
        next_h_tmp = self._get_activation(F, i2h + reset_gate * h2h, self._activation,
                                          name="h_act")
        ones = F.ones_like(update_gate)
        next_h = (ones - update_gate) * next_h_tmp + update_gate * prev_h
        return next_h, [next_h]


class _SequentialBase:
    """Shared by the sequential containers: stack cells, states concatenated in order."""

    def add(self, cell: RecurrentCell) -> None:
        """Append a cell."""
        self.register_child(cell)

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return _cells_state_info(self._children.values(), batch_size)

    def begin_state(self, **kwargs: Any) -> list:
        return _cells_begin_state(self._children.values(), **kwargs)

    def _step(self, inputs, states):
        self._counter += 1
        next_states = []
        p = 0
        for cell in self._children.values():
            n = len(cell.state_info())
            state = states[p:p + n]
            p += n
            inputs, state = cell(inputs, state)
            next_states.append(state)
        return inputs, sum(next_states, [])

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: bool | None = None, valid_length: Any = None):
        self.reset()
        inputs, _, F, batch_size = _format_sequence(length, inputs, layout, None)
        num_cells = len(self._children)
        p = 0
        next_states = []
        for i, cell in enumerate(self._children.values()):
            n = len(cell.state_info())
            # without begin states each cell makes its own zeros from its inputs
            states = None if begin_state is None else begin_state[p:p + n]
            p += n
            inputs, states = cell.unroll(
                length, inputs=inputs, begin_state=states, layout=layout,
                merge_outputs=None if i < num_cells - 1 else merge_outputs,
                valid_length=valid_length)
            next_states.extend(states)
        return inputs, next_states

    def __getitem__(self, i: int) -> Any:
        return list(self._children.values())[i]

    def __len__(self) -> int:
        return len(self._children)


class SequentialRNNCell(_SequentialBase, RecurrentCell):
    """Stacks cells: the output of each is the input of the next."""

    def __call__(self, inputs: Any, states: Any) -> Any:
        return self._step(inputs, states)


class HybridSequentialRNNCell(_SequentialBase, HybridRecurrentCell):
    """Stacks hybrid cells (each child hybridizes itself)."""

    def __call__(self, inputs: Any, states: Any) -> Any:
        return self._step(inputs, states)


class DropoutCell(HybridRecurrentCell):
    """Applies dropout (rate ``rate``, shared along ``axes``) to the input; no states."""

    def __init__(self, rate: float, axes: tuple = (), prefix: str | None = None,
                 params: Any = None) -> None:
        super().__init__(prefix, params)
        if not isinstance(rate, (int, float)):
            raise TypeError("rate must be a number")
        self._rate = rate
        self._axes = tuple(axes)

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return []

    def _alias(self) -> str:
        return "dropout"

    def hybrid_forward(self, F, inputs, states):
        if self._rate > 0:
            inputs = F.Dropout(inputs, p=self._rate, axes=self._axes,
                               name=f"t{self._counter}_fwd")
        return inputs, states

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: bool | None = None, valid_length: Any = None):
        self.reset()
        inputs, _, F, _ = _format_sequence(length, inputs, layout, merge_outputs)
        if isinstance(inputs, (NDArray, Symbol)):
            return self(inputs, begin_state if begin_state else [])
        return super().unroll(length, inputs, begin_state=begin_state, layout=layout,
                              merge_outputs=merge_outputs, valid_length=valid_length)


class ModifierCell(HybridRecurrentCell):
    """Base class of cells that wrap and modify another cell (``base_cell``)."""

    def __init__(self, base_cell: RecurrentCell) -> None:
        if base_cell._modified:
            raise ValueError(f"Cell {base_cell.name} is already modified. One cell cannot be "
                             "modified twice")
        base_cell._modified = True
        super().__init__(prefix=base_cell.prefix + self._alias(), params=None)
        self.base_cell = base_cell

    @property
    def params(self):
        return self.base_cell.params

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return self.base_cell.state_info(batch_size)

    def begin_state(self, func: Any = _nd_mod.zeros, **kwargs: Any) -> list:
        self.base_cell._modified = False
        try:
            return self.base_cell.begin_state(func=func, **kwargs)
        finally:
            self.base_cell._modified = True

    def hybrid_forward(self, F, inputs, states):
        raise NotImplementedError


class ResidualCell(ModifierCell):
    """Adds the input to the base cell's output: ``out = base(x) + x``."""

    def __call__(self, inputs: Any, states: Any) -> Any:
        self._counter += 1
        output, states = self.base_cell(inputs, states)
        return output + inputs, states

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: bool | None = None, valid_length: Any = None):
        self.reset()
        self.base_cell._modified = False
        try:
            outputs, states = self.base_cell.unroll(length, inputs=inputs,
                                                    begin_state=begin_state, layout=layout,
                                                    merge_outputs=merge_outputs,
                                                    valid_length=valid_length)
        finally:
            self.base_cell._modified = True
        merge = isinstance(outputs, (NDArray, Symbol))
        inputs, axis, F, _ = _format_sequence(length, inputs, layout, merge)
        if valid_length is not None:
            inputs = _mask_sequence_variable_length(F, inputs, length, valid_length, axis,
                                                    merge)
        if merge:
            outputs = outputs + inputs
        else:
            outputs = [o + i for o, i in zip(outputs, inputs)]
        return outputs, states


class ZoneoutCell(ModifierCell):
    """Zoneout (Krueger et al. 2016): in training, each output unit keeps its previous
    value with probability ``zoneout_outputs`` and each state unit with probability
    ``zoneout_states``; identity in prediction."""

    def __init__(self, base_cell: RecurrentCell, zoneout_outputs: float = 0.0,
                 zoneout_states: float = 0.0) -> None:
        if isinstance(base_cell, BidirectionalCell):
            raise ValueError("BidirectionalCell doesn't support zoneout since it doesn't "
                             "support step. Please add ZoneoutCell to the cells underneath "
                             "instead.")
        super().__init__(base_cell)
        self.zoneout_outputs = zoneout_outputs
        self.zoneout_states = zoneout_states
        self._prev_output = None

    def reset(self) -> None:
        super().reset()
        self._prev_output = None

    def __call__(self, inputs: Any, states: Any) -> Any:
        # Runs step by step (it keeps the previous output between calls), so it is never
        # compiled as a whole; the base cell still hybridizes on its own.
        self._counter += 1
        F = _sym_mod if isinstance(inputs, Symbol) else _nd_mod
        p_outputs, p_states = self.zoneout_outputs, self.zoneout_states
        next_output, next_states = self.base_cell(inputs, states)

        def mask(p, like):
            return F.Dropout(F.ones_like(like), p=p)

        prev_output = self._prev_output
        if prev_output is None:
            prev_output = F.zeros_like(next_output)
        output = (F.where(mask(p_outputs, next_output), next_output, prev_output)
                  if p_outputs != 0.0 else next_output)
        new_states = ([F.where(mask(p_states, new_s), new_s, old_s)
                       for new_s, old_s in zip(next_states, states)]
                      if p_states != 0.0 else next_states)
        self._prev_output = output
        return output, new_states


class BidirectionalCell(HybridRecurrentCell):
    """Runs ``l_cell`` forward and ``r_cell`` backward over the sequence and
    concatenates their outputs along the channel axis (unroll only)."""

    def __init__(self, l_cell: RecurrentCell, r_cell: RecurrentCell,
                 output_prefix: str = "bi_") -> None:
        super().__init__(prefix="", params=None)
        self.register_child(l_cell, "l_cell")
        self.register_child(r_cell, "r_cell")
        self._output_prefix = output_prefix

    def __call__(self, inputs: Any, states: Any) -> Any:
        raise NotImplementedError("Bidirectional cannot be stepped. Please use unroll")

    def state_info(self, batch_size: int = 0) -> list[dict]:
        return _cells_state_info(self._children.values(), batch_size)

    def begin_state(self, **kwargs: Any) -> list:
        return _cells_begin_state(self._children.values(), **kwargs)

    def unroll(self, length: int, inputs: Any, begin_state: Any = None, layout: str = "NTC",
               merge_outputs: bool | None = None, valid_length: Any = None):
        self.reset()
        inputs, axis, F, batch_size = _format_sequence(length, inputs, layout, False)
        reversed_inputs = list(reversed(inputs)) if valid_length is None else list(
            F.SequenceReverse(F.stack(*inputs, axis=0), sequence_length=valid_length,
                              use_sequence_length=True))
        begin_state = _get_begin_state(self, F, begin_state, inputs, batch_size)
        states = begin_state
        l_cell, r_cell = self._children.values()
        n_l = len(l_cell.state_info(batch_size))
        l_outputs, l_states = l_cell.unroll(length, inputs=inputs, begin_state=states[:n_l],
                                            layout=layout, merge_outputs=merge_outputs,
                                            valid_length=valid_length)
        r_outputs, r_states = r_cell.unroll(length, inputs=reversed_inputs,
                                            begin_state=states[n_l:], layout=layout,
                                            merge_outputs=False, valid_length=valid_length)
        if valid_length is None:
            reversed_r_outputs = list(reversed(r_outputs))
        else:
            reversed_r_outputs = F.SequenceReverse(F.stack(*r_outputs, axis=0),
                                                   sequence_length=valid_length,
                                                   use_sequence_length=True, axis=0)
            reversed_r_outputs = list(F.split(reversed_r_outputs, axis=0, num_outputs=length,
                                              squeeze_axis=True))
        if merge_outputs is None:
            merge_outputs = isinstance(l_outputs, (NDArray, Symbol))
            l_outputs, _, _, _ = _format_sequence(None, l_outputs, layout, merge_outputs)
        if merge_outputs:
            reversed_r_outputs = F.stack(*reversed_r_outputs, axis=axis)
            outputs = F.concat(l_outputs, reversed_r_outputs, dim=2, num_args=2)
        else:
            outputs = [F.concat(lo, ro, dim=1, num_args=2)
                       for lo, ro in zip(l_outputs, reversed_r_outputs)]
        return outputs, l_states + r_states


__all__ = ["RecurrentCell", "HybridRecurrentCell", "RNNCell", "LSTMCell", "GRUCell",
           "SequentialRNNCell", "HybridSequentialRNNCell", "DropoutCell", "ModifierCell",
           "ResidualCell", "ZoneoutCell", "BidirectionalCell"]
