"""Self-attention and the Transformer: Softmax, MultiHeadAttention, AttentionLayer,
TransformerLayer and Transformer (a decoder-only stack with learned positions).

Shapes: attention works on (batch, heads, len, dim_head); the layers on batch-first
(batch, len, features); ``Transformer`` takes time-major (len, batch, features) like the
recurrent networks unless ``batch_first``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import init, ops
from ..autograd import Tensor
from ..backend_ndarray import Device
from .basic import Dropout, LayerNorm1d, Linear, ReLU, Sequential
from .module import Module
from .sequence import Embedding


class Softmax(Module):
    """softmax(x)_i = e^{x_i} / sum_j e^{x_j} along ``dim``, with the max subtracted first
    (``ops.softmax``): large logits neither overflow nor lose precision."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return ops.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def causal_mask(queries_len: int, keys_len: int, dtype: Any) -> np.ndarray:
    """(1, 1, queries_len, keys_len): 0 where query i may see key j (j <= i + keys_len -
    queries_len), a large negative number elsewhere (added to the logits before softmax)."""
    blocked = np.triu(np.ones((queries_len, keys_len), dtype=bool), keys_len - queries_len + 1)
    # half the largest float: far below any logit, yet logit + mask cannot overflow to -inf
    return np.where(blocked, -np.finfo(dtype).max / 2, 0).astype(dtype)[None, None]


class MultiHeadAttention(Module):
    """Scaled dot-product attention over heads: for q (batch, heads, Lq, d), k and v
    (batch, heads, Lk, d), probs = dropout(softmax(q k^T / sqrt(d) [+ causal mask])) and
    result = probs v (batch, heads, Lq, d). ``forward`` returns (result, probs)."""

    def __init__(self, *, dropout: float = 0.0, causal: bool = False,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.causal = causal
        self.dropout = Dropout(dropout)
        self.softmax = Softmax(dim=-1)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if not (q.ndim == k.ndim == v.ndim == 4 and q.shape[-1] == k.shape[-1]
                and k.shape[:3] == v.shape[:3] and q.shape[:2] == k.shape[:2]):
            raise ValueError(f"attention expects q (batch, heads, Lq, d), k (batch, heads, Lk, "
                             f"d) and v (batch, heads, Lk, dv), got {q.shape}, {k.shape}, "
                             f"{v.shape}")
        logits = (q @ ops.transpose(k)) * (1 / math.sqrt(q.shape[-1]))
        if self.causal:
            mask = causal_mask(q.shape[2], k.shape[2], logits.dtype)
            logits = logits + Tensor(mask, device=logits.device, dtype=logits.dtype,
                                     requires_grad=False)
        probs = self.dropout(self.softmax(logits))
        return probs @ v, probs

    def extra_repr(self) -> str:
        return f"dropout={self.dropout.p}, causal={self.causal}"


class AttentionLayer(Module):
    """Multi-head attention with pre-LayerNorm on q, k and v and bias-free projections:
    q (batch, Lq, q_features), k and v (batch, Lk, k/v_features; default q) ->
    (batch, Lq, out_features). Created in order: prenorm_q, prenorm_k, prenorm_v,
    q/k/v_projection (features, heads*dim_head), out_projection (heads*dim_head, out)."""

    def __init__(self, q_features: int, num_head: int, dim_head: int, *,
                 k_features: int | None = None, v_features: int | None = None,
                 out_features: int | None = None, dropout: float = 0.0, causal: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        k_features = k_features or q_features
        v_features = v_features or q_features
        out_features = out_features or q_features
        self.num_head = num_head
        self.dim_head = dim_head
        self.prenorm_q = LayerNorm1d(q_features, device=device, dtype=dtype)
        self.prenorm_k = LayerNorm1d(k_features, device=device, dtype=dtype)
        self.prenorm_v = LayerNorm1d(v_features, device=device, dtype=dtype)
        inner = num_head * dim_head
        self.q_projection = Linear(q_features, inner, bias=False, device=device, dtype=dtype)
        self.k_projection = Linear(k_features, inner, bias=False, device=device, dtype=dtype)
        self.v_projection = Linear(v_features, inner, bias=False, device=device, dtype=dtype)
        self.attn = MultiHeadAttention(dropout=dropout, causal=causal, device=device,
                                       dtype=dtype)
        self.out_projection = Linear(inner, out_features, bias=False, device=device,
                                     dtype=dtype)

    def split_heads(self, x: Tensor) -> Tensor:
        """(batch, len, heads*dim_head) -> (batch, heads, len, dim_head), a view."""
        batch, length, _ = x.shape
        return x.reshape((batch, length, self.num_head, self.dim_head)).permute((0, 2, 1, 3))

    def forward(self, q: Tensor, k: Tensor | None = None, v: Tensor | None = None) -> Tensor:
        k = q if k is None else k
        v = q if v is None else v
        if q.ndim != 3 or k.ndim != 3 or v.ndim != 3 or k.shape[:2] != v.shape[:2] \
                or q.shape[0] != k.shape[0]:
            raise ValueError(f"AttentionLayer expects q (batch, Lq, features), k and v (batch, "
                             f"Lk, features), got {q.shape}, {k.shape}, {v.shape}")
        batch, queries_len, _ = q.shape
        result, _ = self.attn(self.split_heads(self.q_projection(self.prenorm_q(q))),
                              self.split_heads(self.k_projection(self.prenorm_k(k))),
                              self.split_heads(self.v_projection(self.prenorm_v(v))))
        result = result.permute((0, 2, 1, 3)).reshape((batch, queries_len, -1))
        return self.out_projection(result)


class TransformerLayer(Module):
    """A pre-norm decoder block on x (batch, len, q_features):
    x = x + dropout(attention(x));  x = x + dropout(W2 dropout(relu(W1 LayerNorm(x)))),
    with W1 (q_features, hidden_size) and W2 (hidden_size, q_features) biased Linears."""

    def __init__(self, q_features: int, num_head: int, dim_head: int, hidden_size: int, *,
                 dropout: float = 0.0, causal: bool = True, device: Device | None = None,
                 dtype: str = "float32"):
        super().__init__()
        self.attn = AttentionLayer(q_features, num_head, dim_head, dropout=dropout,
                                   causal=causal, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.layernorm = LayerNorm1d(q_features, device=device, dtype=dtype)
        self.linear1 = Linear(q_features, hidden_size, device=device, dtype=dtype)
        self.linear2 = Linear(hidden_size, q_features, device=device, dtype=dtype)
        self.relu = ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.dropout(self.attn(x))
        hidden = self.dropout(self.relu(self.linear1(self.layernorm(x))))
        return x + self.dropout(self.linear2(hidden))


class Transformer(Module):
    """A stack of ``num_layers`` TransformerLayers after a learned positional embedding
    (Embedding(sequence_len, embedding_size), created first). x (len, batch, embedding_size)
    (batch-first if ``batch_first``) -> (x, zeros_like(x)): the second output stands where
    recurrent networks return their state."""

    def __init__(self, embedding_size: int, hidden_size: int, num_layers: int, *,
                 num_head: int = 8, dim_head: int = 32, dropout: float = 0.0,
                 causal: bool = True, device: Device | None = None, dtype: str = "float32",
                 batch_first: bool = False, sequence_len: int = 2048):
        super().__init__()
        self.batch_first = batch_first
        self.sequence_len = sequence_len
        self.embedding_size = embedding_size
        self.positional_embedding = Embedding(sequence_len, embedding_size, device=device,
                                              dtype=dtype)
        self.layers = Sequential(*[
            TransformerLayer(embedding_size, num_head, dim_head, hidden_size, dropout=dropout,
                             causal=causal, device=device, dtype=dtype)
            for _ in range(num_layers)])

    def forward(self, x: Tensor, h: Any = None) -> tuple[Tensor, Tensor]:
        if x.ndim != 3 or x.shape[2] != self.embedding_size:
            layout = "batch, len" if self.batch_first else "len, batch"
            raise ValueError(f"Transformer expects input ({layout}, {self.embedding_size}), "
                             f"got shape {x.shape}")
        if not self.batch_first:
            x = ops.transpose(x, (0, 1))
        length = x.shape[1]
        if length > self.sequence_len:
            raise ValueError(f"sequence of length {length} is longer than the Transformer's "
                             f"sequence_len {self.sequence_len}")
        x = x + self.positional_embedding(np.arange(length)[None, :])
        x = self.layers(x)
        if not self.batch_first:
            x = ops.transpose(x, (0, 1))
        return x, init.zeros_like(x)
