"""The fused whole-sequence LSTM (ops.lstm_sequence) equals the per-step composition."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import needle as ndl
from needle import nn


def run(fused: bool, layers: int, with_state: bool, dtype: str = "float64"):
    np.random.seed(0)
    lstm = nn.LSTM(7, 5, num_layers=layers, dtype=dtype, fused=fused)
    x = ndl.Tensor(np.random.randn(6, 3, 7), dtype=dtype, requires_grad=True)
    state = None
    if with_state:
        state = (ndl.Tensor(np.random.randn(layers, 3, 5), dtype=dtype, requires_grad=True),
                 ndl.Tensor(np.random.randn(layers, 3, 5), dtype=dtype, requires_grad=True))
    out, (h_n, c_n) = lstm(x, state)
    weights = [ndl.Tensor(np.random.randn(*t.shape), dtype=dtype) for t in (out, h_n, c_n)]
    loss = sum(((t * w).sum() for t, w in zip((out, h_n, c_n), weights)), ndl.Tensor(0.0))
    loss.backward()
    values = [out.numpy(), h_n.numpy(), c_n.numpy(), x.grad.numpy()]
    values += [p.grad.numpy() for p in lstm.parameters()]
    if with_state:
        values += [state[0].grad.numpy(), state[1].grad.numpy()]
    return values


@pytest.mark.parametrize("layers, with_state", [(1, False), (2, True), (3, False)])
def test_fused_equals_per_step_composition(layers, with_state):
    for fused, plain in zip(run(True, layers, with_state), run(False, layers, with_state)):
        np.testing.assert_allclose(fused, plain, rtol=1e-10, atol=1e-12)


def test_fused_float32_close_to_composition():
    for fused, plain in zip(run(True, 2, True, "float32"), run(False, 2, True, "float32")):
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturated_gates_match_numpy_and_warn_nothing(dtype):
    # pre-activations far beyond e^x's range: sigmoid 0 or 1, tanh -1 or 1, no overflow
    rng = np.random.default_rng(1)
    x_gates = rng.standard_normal((4, 3, 8)) * 400
    w_hh = rng.standard_normal((2, 8))
    zeros = np.zeros((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ndl.ops.lstm_sequence(*(ndl.Tensor(a, dtype=dtype)
                                      for a in (x_gates, w_hh, zeros, zeros))).numpy()
    h, c = zeros, zeros
    for t in range(4):  # the recurrence in float64 numpy, with numpy's own tanh
        z = x_gates[t] + h @ w_hh
        i, f, o = (1 / (1 + np.exp(-np.clip(z[:, 2 * k:2 * k + 2], -700, 700)))
                   for k in (0, 1, 3))
        c = f * c + i * np.tanh(z[:, 4:6])
        h = o * np.tanh(c)
        np.testing.assert_allclose(out[t], np.concatenate([h, c], axis=1), rtol=1e-5,
                                   atol=1e-6)


def test_one_op_instance_called_twice_keeps_each_calls_gradient():
    rng = np.random.default_rng(0)
    op = ndl.ops.LSTMSequence()

    def inputs():
        return [ndl.Tensor(rng.standard_normal(s), dtype="float64", requires_grad=True)
                for s in [(3, 2, 8), (2, 8), (2, 2), (2, 2)]]

    first, second = inputs(), inputs()
    out_first, out_second = op(*first), op(*second)
    out_first.sum().backward()
    reference = inputs()
    for t, value in zip(reference, first):
        t.cached_data = value.cached_data
    ndl.ops.lstm_sequence(*reference).sum().backward()
    for got, expected in zip(first, reference):
        np.testing.assert_allclose(got.grad.numpy(), expected.grad.numpy(), rtol=1e-12)


def test_second_derivatives_say_how():
    args = [ndl.Tensor(np.zeros(s), requires_grad=True) for s in [(2, 1, 8), (2, 8), (1, 2),
                                                                      (1, 2)]]
    out = ndl.ops.lstm_sequence(*args)
    out.sum().backward(create_graph=True)
    with pytest.raises(NotImplementedError, match="fused=False"):
        args[1].grad.sum().backward()


@ndl.reference_mode(False)  # the fused op (reference mode runs the composition)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-4)])
def test_fused_with_mkl_packed_weights_equals_composition(monkeypatch, dtype, tol):
    # the recurrent products by MKL with W_hh (forward) and W_hh^T (backward) packed once
    from needle.backend_ndarray import blas

    mkl = blas._MKL or blas.open_mkl(sequential=True)
    if mkl is None or not mkl.packing:
        pytest.skip("MKL (the mkl extra) not installed")
    monkeypatch.setattr(blas, "_MKL", mkl)
    monkeypatch.setattr(blas, "ENABLED", True)
    monkeypatch.setattr(blas, "MIN_FLOPS", 1)  # pack these small weights too
    products = []
    real_call = blas.Packed.__call__
    monkeypatch.setattr(blas.Packed, "__call__",
                        lambda self, a: products.append(self.is_packed) or real_call(self, a))
    fused = run(True, 2, True, dtype)
    assert len(products) == 2 * 2 * 6 and all(products)  # 2 layers x (fwd, bwd) x 6 steps
    monkeypatch.undo()
    for got, plain in zip(fused, run(False, 2, True, dtype)):
        np.testing.assert_allclose(got, plain, rtol=tol, atol=tol / 10)
