"""Sequence layers: Embedding and the recurrent networks RNN, LSTM and GRU.

Shapes are time-major: a sequence x is (seq_len, batch, input_size), its hidden states
(num_layers, batch, hidden_size). Weights keep needle's layout (in, out), the transpose of
PyTorch's ``weight_ih_l{k}``, so ``x @ W_ih`` needs no transpose. A multi-layer network
projects the whole input sequence of a layer with one matrix product and runs only the
recurrent product ``h @ W_hh`` step by step.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import init, ops
from ..autograd import Tensor, no_grad
from ..reference import is_reference_mode
from ..backend_ndarray import Device
from .basic import dropout_mask
from .module import Module, Parameter

State = Any  # h (batch, hidden) for RNN and GRU cells, (h, c) for LSTM cells


def token_ids(x: Any, num_embeddings: int) -> np.ndarray:
    """``x`` (a Tensor or array of token ids) as int64, each checked to lie in the vocabulary."""
    return ops.class_ids(x, num_embeddings, "token ids")


class Embedding(Module):
    """Rows of a lookup table: ids (seq_len, batch) -> vectors (seq_len, batch, embedding_dim).

    weight (num_embeddings, embedding_dim) from randn. The lookup is a gather (``getitem``),
    so its gradient is a scatter-add into the rows used, not a one-hot matrix product."""

    def __init__(self, num_embeddings: int, embedding_dim: int, device: Device | None = None,
                 dtype: str = "float32", padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = Parameter(init.randn(num_embeddings, embedding_dim, device=device,
                                           dtype=dtype))
        self.padding_idx = self._padding_index(padding_idx)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def _padding_index(self, padding_idx: int | None) -> int | None:
        """``padding_idx`` counted from 0 (negative counts from the end), checked."""
        if padding_idx is None:
            return None
        if not -self.num_embeddings <= padding_idx < self.num_embeddings:
            raise ValueError(f"padding_idx must lie in [-{self.num_embeddings}, "
                             f"{self.num_embeddings}), got {padding_idx}")
        return padding_idx % self.num_embeddings

    def forward(self, x: Any) -> Tensor:
        ids = token_ids(x, self.num_embeddings)
        rows = self.weight[ids]
        if self.padding_idx is None:
            return rows
        # the padding row is looked up as a constant: it never receives a gradient
        pad = Tensor((ids == self.padding_idx)[..., None], device=rows.device,
                     requires_grad=False)
        return ops.where(pad, Tensor.make_const(rows.cached_data), rows)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def _uniform(*shape: int, bound: float, device: Device | None, dtype: str) -> Parameter:
    return Parameter(init.uniform(*shape, bound=bound, device=device, dtype=dtype))


def check_state_shape(name: str, got: Sequence[int], expected: Sequence[int]) -> None:
    """A clear error naming both shapes when a hidden state has the wrong shape."""
    if tuple(got) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(got)}, expected {tuple(expected)}")


class _RecurrentCell(Module):
    """The weights shared by every recurrent cell, for ``gates`` gate blocks:
    W_ih (input, gates*hidden), W_hh (hidden, gates*hidden), bias_ih, bias_hh
    (gates*hidden,), created in that order, all U(-k, k) with k = sqrt(1/hidden_size)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dtype = dtype
        self.device = device
        bound = math.sqrt(1 / hidden_size)
        width = self.gates * hidden_size
        self.W_ih = _uniform(input_size, width, bound=bound, device=device, dtype=dtype)
        self.W_hh = _uniform(hidden_size, width, bound=bound, device=device, dtype=dtype)
        self.bias_ih = _uniform(width, bound=bound, device=device, dtype=dtype) if bias else None
        self.bias_hh = _uniform(width, bound=bound, device=device, dtype=dtype) if bias else None

    def input_bias(self) -> Tensor | None:
        """The bias added to the input projection (both biases, where they commute)."""
        if self.bias_ih is None or self.bias_hh is None:
            return None
        return self.bias_ih + self.bias_hh

    def project_input(self, x: Tensor) -> Tensor:
        """x W_ih (+ bias) for x (rows, input): one product for a whole sequence."""
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects inputs with {self.input_size} "
                             f"features on the last axis, got shape {x.shape}")
        return ops.linear(x, self.W_ih, self.input_bias())

    def zero_state(self, batch_size: int) -> State:
        return init.zeros(batch_size, self.hidden_size, device=self.device, dtype=self.dtype)

    def check_state(self, h: State, batch_size: int) -> State:
        if h is None:
            return self.zero_state(batch_size)
        check_state_shape("hidden state h", h.shape, (batch_size, self.hidden_size))
        return h

    def step(self, x_projected: Tensor, state: State) -> State:
        """The next state from the projected input of one time step and the last state."""
        raise NotImplementedError

    def forward(self, x: Tensor, h: State = None) -> State:
        """One step: x (batch, input) and the state (zeros when None) -> the next state."""
        return self.step(self.project_input(x), self.check_state(h, x.shape[0]))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class RNNCell(_RecurrentCell):
    """h' = tanh(x W_ih + b_ih + h W_hh + b_hh) (or relu) for x (batch, input), h (batch,
    hidden). W_ih (input, hidden), W_hh (hidden, hidden), bias_ih, bias_hh (hidden,), created
    in that order, all U(-k, k) with k = sqrt(1/hidden_size)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Device | None = None,
                 dtype: str = "float32"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def step(self, x_projected: Tensor, state: Tensor) -> Tensor:
        pre = x_projected + state @ self.W_hh
        return ops.tanh(pre) if self.nonlinearity == "tanh" else ops.relu(pre)


class LSTMCell(_RecurrentCell):
    """Gates i, f, g, o = split(x W_ih + b_ih + h W_hh + b_hh) (in that order);
    c' = sigmoid(f) c + sigmoid(i) tanh(g);  h' = sigmoid(o) tanh(c').

    W_ih (input, 4 hidden), W_hh (hidden, 4 hidden), bias_ih, bias_hh (4 hidden,), created in
    that order, all U(-k, k) with k = sqrt(1/hidden_size). The state is a tuple (h, c)."""

    gates = 4

    def zero_state(self, batch_size: int) -> State:
        return super().zero_state(batch_size), super().zero_state(batch_size)

    def check_state(self, h: State, batch_size: int) -> State:
        if h is None:
            return self.zero_state(batch_size)
        expected = (batch_size, self.hidden_size)
        check_state_shape("hidden state h", h[0].shape, expected)
        check_state_shape("cell state c", h[1].shape, expected)
        return h

    def step(self, x_projected: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        gates = x_projected + h @ self.W_hh
        i, f, g, o = ops.split(gates.reshape((h.shape[0], 4, self.hidden_size)), 1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c), c


class GRUCell(_RecurrentCell):
    """PyTorch's GRU: with x W_ih + b_ih and h W_hh + b_hh split into (r, z, n) blocks,
    r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r h_n),
    h' = (1 - z) n + z h. Weights as for LSTMCell with 3 gate blocks."""

    gates = 3

    def input_bias(self) -> Tensor | None:
        return self.bias_ih  # b_hh sits inside r * (h W_hn + b_hn): it cannot move here

    def step(self, x_projected: Tensor, state: Tensor) -> Tensor:
        batch, hidden = state.shape
        hh = state @ self.W_hh
        if self.bias_hh is not None:
            hh = hh + self.bias_hh
        x_r, x_z, x_n = ops.split(x_projected.reshape((batch, 3, hidden)), 1)
        h_r, h_z, h_n = ops.split(hh.reshape((batch, 3, hidden)), 1)
        r = ops.sigmoid(x_r + h_r)
        z = ops.sigmoid(x_z + h_z)
        n = ops.tanh(x_n + r * h_n)
        return n + z * (state - n)


def _hidden(state: State) -> Tensor:
    return state[0] if isinstance(state, tuple) else state


class _RecurrentNetwork(Module):
    """Stacked recurrent cells over time-major sequences (seq_len, batch, features), or
    batch-major ones (batch, seq_len, features) with ``batch_first`` (hidden states stay
    (num_layers, batch, hidden), as in PyTorch). In training, ``dropout`` p drops the
    outputs of every layer but the last (PyTorch's inter-layer dropout)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int,
                 batch_first: bool = False, dropout: float = 0.0):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.batch_first = batch_first
        self.dropout = dropout

    cells_name = ""  # the attribute that holds the cells, under its needle name

    @property
    def cells(self) -> list[_RecurrentCell]:
        """The cells, layer by layer."""
        return list(getattr(self, self.cells_name))

    def make_cells(self, cell: type[_RecurrentCell], **kwargs: Any) -> list[_RecurrentCell]:
        """One cell per layer: the first reads the input, the others the layer below."""
        sizes = [self.input_size] + [self.hidden_size] * (self.num_layers - 1)
        return [cell(size, self.hidden_size, **kwargs) for size in sizes]

    def split_state(self, h: Any, batch_size: int) -> list[State]:
        """The initial state of each layer: zeros when ``h`` is None."""
        if h is None:
            return [cell.zero_state(batch_size) for cell in self.cells]
        check_state_shape("h0", h.shape, (self.num_layers, batch_size, self.hidden_size))
        return list(ops.split(h, 0))

    def join_state(self, finals: list[State]) -> Any:
        return ops.stack(finals, 0)

    def forward(self, x: Tensor, h: Any = None) -> tuple[Tensor, Any]:
        """x (seq_len, batch, input), h (num_layers, batch, hidden) or None ->
        (output (seq_len, batch, hidden) of the last layer, final state of every layer);
        x and output are (batch, seq_len, ...) with ``batch_first``."""
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "batch, seq_len" if self.batch_first else "seq_len, batch"
            raise ValueError(f"{type(self).__name__} expects input ({layout}, "
                             f"{self.input_size}), got shape {x.shape}")
        if self.batch_first:
            output, state = self._time_major(ops.permute(x, (1, 0, 2)), h)
            return ops.permute(output, (1, 0, 2)), state
        return self._time_major(x, h)

    def _time_major(self, x: Tensor, h: Any) -> tuple[Tensor, Any]:
        seq_len, batch_size, _ = x.shape
        finals = []
        for layer, (cell, state) in enumerate(zip(self.cells, self.split_state(h, batch_size))):
            x = self._inter_layer_dropout(x, layer)
            projected = cell.project_input(x.reshape((seq_len * batch_size, x.shape[2])))
            outputs = []
            for x_t in ops.split(projected.reshape((seq_len, batch_size, -1)), 0):
                state = cell.step(x_t, state)
                outputs.append(_hidden(state))
            x = ops.stack(outputs, 0)
            finals.append(state)
        return x, self.join_state(finals)

    def _inter_layer_dropout(self, x: Tensor, layer: int) -> Tensor:
        """The input of ``layer``: the layer below's output with dropout in training."""
        if not (layer and self.dropout and self.training):
            return x
        return x * dropout_mask(x, self.dropout)

    def extra_repr(self) -> str:
        extra = (", batch_first=True" if self.batch_first else "") + \
            (f", dropout={self.dropout}" if self.dropout else "")
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}{extra}"


class RNN(_RecurrentNetwork):
    """Elman RNN of ``num_layers`` RNNCells (tanh or relu): input (seq_len, batch, input),
    h0 (num_layers, batch, hidden) or None (zeros); returns (output (seq_len, batch, hidden),
    h_n (num_layers, batch, hidden)). Cells are created layer by layer (``rnn_cells``)."""

    cells_name = "rnn_cells"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, nonlinearity: str = "tanh", device: Device | None = None,
                 dtype: str = "float32", batch_first: bool = False, dropout: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout)
        self.rnn_cells = self.make_cells(RNNCell, bias=bias, nonlinearity=nonlinearity,
                                         device=device, dtype=dtype)


class GRU(_RecurrentNetwork):
    """Multi-layer GRU with PyTorch's gate equations (see GRUCell); shapes as for RNN."""

    cells_name = "gru_cells"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, device: Device | None = None, dtype: str = "float32",
                 batch_first: bool = False, dropout: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout)
        self.gru_cells = self.make_cells(GRUCell, bias=bias, device=device, dtype=dtype)


class LSTM(_RecurrentNetwork):
    """Multi-layer LSTM: input (seq_len, batch, input), h = (h0, c0) each (num_layers, batch,
    hidden) or None (zeros); returns (output (seq_len, batch, hidden), (h_n, c_n)).

    With ``fused`` (the default) each layer runs as one ``ops.lstm_sequence`` node instead of
    seq_len compositions of ``LSTMCell.step``: the same values, far fewer graph nodes.
    ``fused=False`` (or reference mode) keeps the per-step composition (needed for second
    derivatives)."""

    cells_name = "lstm_cells"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, device: Device | None = None, dtype: str = "float32",
                 batch_first: bool = False, dropout: float = 0.0, fused: bool = True):
        super().__init__(input_size, hidden_size, num_layers, batch_first, dropout)
        self.fused = fused
        self.lstm_cells = self.make_cells(LSTMCell, bias=bias, device=device, dtype=dtype)

    def _time_major(self, x: Tensor, h: Any) -> tuple[Tensor, Any]:
        if not self.fused or is_reference_mode():
            return super()._time_major(x, h)
        seq_len, batch_size, _ = x.shape
        hidden, finals = self.hidden_size, []
        for layer, (cell, (h0, c0)) in enumerate(zip(self.cells,
                                                     self.split_state(h, batch_size))):
            x = self._inter_layer_dropout(x, layer)
            projected = cell.project_input(x.reshape((seq_len * batch_size, x.shape[2])))
            states = ops.lstm_sequence(projected.reshape((seq_len, batch_size, 4 * hidden)),
                                       cell.W_hh, h0.reshape((batch_size, hidden)),
                                       c0.reshape((batch_size, hidden)))
            x = states[:, :, :hidden]
            finals.append((states[seq_len - 1, :, :hidden], states[seq_len - 1, :, hidden:]))
        return x, self.join_state(finals)

    def split_state(self, h: Any, batch_size: int) -> list[State]:
        if h is None:
            return super().split_state(None, batch_size)
        if not isinstance(h, (tuple, list)) or len(h) != 2:
            raise ValueError("LSTM state must be a tuple (h0, c0) of tensors (num_layers, "
                             f"batch, hidden), got {type(h).__name__}")
        expected = (self.num_layers, batch_size, self.hidden_size)
        check_state_shape("h0", h[0].shape, expected)
        check_state_shape("c0", h[1].shape, expected)
        return list(zip(ops.split(h[0], 0), ops.split(h[1], 0)))

    def join_state(self, finals: list[State]) -> Any:
        return ops.stack([h for h, _ in finals], 0), ops.stack([c for _, c in finals], 0)
