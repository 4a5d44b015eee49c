"""A word-level language model: Embedding -> RNN, LSTM or Transformer -> Linear."""

from __future__ import annotations

from typing import Any

from .. import nn
from ..autograd import Tensor
from ..backend_ndarray import Device

SEQ_MODELS = ("rnn", "lstm", "gru", "transformer")


class LanguageModel(nn.Module):
    """ids (seq_len, batch) -> (logits (seq_len * batch, output_size), state).

    Embedding(output_size, embedding_size), then the sequence model, then
    Linear(hidden_size, output_size) (hidden_size is embedding_size for the Transformer,
    whose positions go up to ``seq_len``). Extras: ``dropout`` (off by default) on the
    embeddings and on the sequence model's output (and inside the Transformer);
    ``num_head`` and ``dim_head`` shape the Transformer's attention. With ``dropout`` 0 (the
    course's model, which has none) the forward draws no random numbers."""

    def __init__(self, embedding_size: int, output_size: int, hidden_size: int,
                 num_layers: int = 1, seq_model: str = "rnn", seq_len: int = 40, *,
                 num_head: int = 8, dim_head: int = 32, dropout: float = 0.0,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        if seq_model not in SEQ_MODELS:
            raise ValueError(f"seq_model must be one of {SEQ_MODELS}, got {seq_model!r}")
        self.seq_model_name = seq_model
        self.embedding_size = embedding_size
        self.output_size = output_size
        self.embedding = nn.Embedding(output_size, embedding_size, device=device, dtype=dtype)
        self.seq_model: nn.Module
        if seq_model == "transformer":
            self.seq_model = nn.Transformer(embedding_size, hidden_size, num_layers,
                                            num_head=num_head, dim_head=dim_head,
                                            dropout=dropout, device=device, dtype=dtype,
                                            sequence_len=seq_len)
            hidden_size = embedding_size
        else:
            network = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[seq_model]
            self.seq_model = network(embedding_size, hidden_size, num_layers, device=device,
                                     dtype=dtype)
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, output_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, h: Any = None) -> tuple[Tensor, Any]:
        if x.ndim != 2:
            raise ValueError(f"LanguageModel expects token ids (seq_len, batch), got shape "
                             f"{x.shape}")
        seq_len, batch_size = x.shape
        out, h = self.seq_model(self._dropout(self.embedding(x)), h)
        out = self._dropout(out).reshape((seq_len * batch_size, self.hidden_size))
        return self.linear(out), h

    def _dropout(self, x: Tensor) -> Tensor:
        """x through ``self.dropout``, or x itself when its p is 0: no mask, no draw."""
        return self.dropout(x) if self.dropout.p else x
