"""One LSTM layer over a whole sequence as one graph node: a speed primitive.

It replaces the composition that ``nn.LSTMCell.step`` records at every time step,

    gates = x_gates[t] + h @ W_hh;  i, f, g, o = split(gates)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g);  h = sigmoid(o) * tanh(c)

about a dozen nodes forward and more backward per step, 35 steps per batch in a language
model. Here the forward is one loop of one GEMM and in-place gate updates per step, and the
backward runs through time with one GEMM per step (``d_gates @ W_hh^T``), then one large
GEMM for ``W_hh``'s gradient over all steps. The input projection ``x W_ih + b`` stays
outside as one product for the whole sequence, so its two gradient products are large GEMMs
too. ``nn.LSTM`` uses this op unless built with ``fused=False``; tests check that both give
the same values and gradients.

Shapes: x_gates (T, B, 4H) ordered (i, f, g, o) like PyTorch, W_hh (H, 4H), h0 and c0 (B, H);
the output (T, B, 2H) holds [h_t, c_t] for every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import NDArray, Tensor, TensorOp, TensorTuple, TensorTupleOp
from ...backend_ndarray import blas
from ...backend_ndarray.ndarray import _wrap
from ..tuple import tuple_get_item


#: Each gate's pre-activation z enters the loop as -z (i, f, o) or -2z (g), so that one e^x
#: over the whole (B, 4H) row block turns into sigmoid(z) = 1 / (1 + e^-z) and
#: tanh(z) = 2 sigmoid(2z) - 1. The factors are powers of two: scaling x_gates and W_hh by
#: them changes no bit of the product.
_GATE_SCALE = (-1.0, -1.0, -2.0, -1.0)


def _activate_(xp: Any, gates: Any, hidden: int) -> None:
    """-z (i, f, o) and -2z (g), (B, 4H), <- sigmoid(z) and tanh(z) in place. One e^x over
    the block instead of numpy's tanh per gate (on AVX2 its float32 tanh costs twice e^x:
    21.6 against 10.6 us for 8,192 elements); e^x overflowing to inf gives sigmoid 0."""
    with np.errstate(over="ignore"):
        xp.exp(gates, out=gates)
    gates += 1
    xp.reciprocal(gates, out=gates)
    g = gates[:, 2 * hidden:3 * hidden]
    g *= 2
    g -= 1


class LSTMSequence(TensorOp):
    """f(x_gates, W_hh, h0, c0) = [h_t, c_t] for t = 1..T, (T, B, 2H): the LSTM recurrence
    above; df by backpropagation through time (``LSTMSequenceGrad``).

    Saves the gate activations (T, B, 4H) and tanh(c_t) (T, B, H) on the output node."""

    saves = True

    def compute(self, x_gates: NDArray, w_hh: NDArray, h0: NDArray,
                c0: NDArray) -> tuple[NDArray, tuple[Any, Any]]:
        xp = x_gates.device.module()
        steps, batch, four_h = x_gates.shape
        hidden = four_h // 4
        scale = xp.repeat(xp.asarray(_GATE_SCALE, dtype=x_gates.dtype), hidden)  # (4H,)
        acts = xp.multiply(x_gates.compact()._array, scale)     # becomes i, f, g, o
        out = xp.empty((steps, batch, 2 * hidden), dtype=acts.dtype)
        tanh_c = xp.empty((steps, batch, hidden), dtype=acts.dtype)
        h, c = h0._array, c0._array
        with blas.Packed(xp, w_hh._array * scale, batch) as times_w:  # packed once
            for t in range(steps):
                gates = acts[t]
                gates += times_w(h)
                _activate_(xp, gates, hidden)
                i, f, g, o = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
                c_t, h_t = out[t, :, hidden:], out[t, :, :hidden]
                xp.multiply(f, c, out=c_t)
                c_t += i * g
                xp.tanh(c_t, out=tanh_c[t])
                xp.multiply(o, tanh_c[t], out=h_t)
                h, c = h_t, c_t
        return _wrap(out, x_gates.device), (acts, tanh_c)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, ...]:
        grads = LSTMSequenceGrad(node.saved)(out_grad, node, *node.inputs[1:])
        return tuple(tuple_get_item(grads, k) for k in range(4))


class LSTMSequenceGrad(TensorTupleOp):
    """f(g, out, W_hh, h0, c0) = the adjoints (x_gates, W_hh, h0, c0) of LSTMSequence for the
    adjoint g of its output ``out``, by backpropagation through time. First derivatives only:
    build ``nn.LSTM(..., fused=False)`` to differentiate twice."""

    def __init__(self, saved: tuple[Any, Any]):
        self.saved = saved

    def compute(self, g: NDArray, out: NDArray, w_hh: NDArray, h0: NDArray,
                c0: NDArray) -> tuple[NDArray, ...]:
        xp, (acts, tanh_c) = g.device.module(), self.saved
        steps, batch, four_h = acts.shape
        hidden = four_h // 4
        g_h, g_c = g._array[:, :, :hidden], g._array[:, :, hidden:]
        states = out._array
        d_gates, from_d_h = _local_derivatives(xp, acts, tanh_c, states, c0._array)
        by_gate = d_gates.reshape(steps, batch, 4, hidden)
        f = acts[:, :, hidden:2 * hidden]
        d_h, d_c = xp.zeros_like(h0._array), xp.zeros_like(c0._array)
        w = w_hh._array
        with blas.Packed(xp, w.T, batch) as times_w_t:  # d_gates @ W^T, W^T packed once
            for t in reversed(range(steps)):
                d_h += g_h[t]
                d_c += g_c[t]
                d_c += d_h * from_d_h[t]
                xp.multiply(d_c[:, None], by_gate[t, :, :3], out=by_gate[t, :, :3])  # i, f, g
                xp.multiply(d_h, by_gate[t, :, 3], out=by_gate[t, :, 3])            # o
                if times_w_t.is_packed:
                    d_h = times_w_t(d_gates[t])
                else:  # as (H, 4H) @ (4H, B): on OpenBLAS 1.6x faster than (B, 4H) @ W^T
                    d_h = blas.matmul(xp, w, d_gates[t].T).T
                d_c *= f[t]
        h_prev = xp.concatenate([h0._array[None], states[:-1, :, :hidden]], axis=0)
        d_w = blas.matmul(xp, h_prev.reshape(-1, hidden).T, d_gates.reshape(-1, four_h))
        device = g.device
        return tuple(_wrap(a, device) for a in (d_gates, d_w, d_h, d_c))

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> Any:
        raise NotImplementedError("second derivatives through the fused LSTM sequence are not "
                                  "implemented: build nn.LSTM(..., fused=False), whose steps "
                                  "are compositions of differentiable ops")


def _local_derivatives(xp: Any, acts: Any, tanh_c: Any, states: Any,
                       c0: Any) -> tuple[Any, Any]:
    """The factors of backpropagation through time that do not depend on the recurrence,
    for all steps at once, as a few passes over whole arrays instead of a dozen small ones a
    step. With d_c and d_h the adjoints of c_t and h_t (d_c including d_h's share),

        d_i, d_f, d_g = d_c * [g i(1 - i), c_(t-1) f(1 - f), i (1 - g^2)]
        d_o = d_h * tanh(c_t) o (1 - o),  and d_c gains d_h * o (1 - tanh(c_t)^2)

    Returns m (T, B, 4H), the bracket and o's factor (the backward overwrites it with
    d_gates), and k (T, B, H), the factor of d_h in d_c."""
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    a = acts.reshape(steps, batch, 4, hidden)
    i, g, o = a[:, :, 0], a[:, :, 2], a[:, :, 3]
    m = xp.subtract(1, a)
    m *= a                                   # sigmoid' = s (1 - s) for i, f and o
    m_i, m_f, m_g, m_o = (m[:, :, k] for k in range(4))
    xp.multiply(g, g, out=m_g)
    xp.subtract(1, m_g, out=m_g)             # tanh' = 1 - g^2
    m_i *= g
    m_f[1:] *= states[:-1, :, hidden:]       # c_(t-1)
    m_f[0] *= c0
    m_g *= i
    m_o *= tanh_c
    k = xp.multiply(tanh_c, tanh_c)
    xp.subtract(1, k, out=k)
    k *= o
    return m.reshape(steps, batch, four_h), k


def lstm_sequence(x_gates: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor) -> Tensor:
    """[h_t, c_t] for every step (T, B, 2H) of one LSTM layer; see the module docstring."""
    return LSTMSequence()(x_gates, w_hh, h0, c0)
