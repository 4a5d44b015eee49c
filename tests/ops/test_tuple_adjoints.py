"""Adjoints of TensorTuple elements: summed per element, zeros only where none arrived."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import autograd
from oracles import check_finite_differences, check_torch


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), axis=st.integers(0, 1), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_split_with_some_elements_used_twice_or_never(n, axis, data, seed):
    picks = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6))
    shape = (n, 3) if axis == 0 else (3, n)
    x = np.random.default_rng(seed).standard_normal(shape)

    def ndl_fn(a):
        parts = ndl.split(a, axis)
        return ndl.stack([parts[i] * (k + 1) for k, i in enumerate(picks)], 0)

    def torch_fn(a):
        parts = torch.unbind(a, axis)
        return torch.stack([parts[i] * (k + 1) for k, i in enumerate(picks)], 0)

    check_torch(ndl_fn, torch_fn, x, name=f"split picks {picks}")
    check_finite_differences(ndl_fn, x, name=f"split picks {picks}")


@ndl.reference_mode(False)  # the fast path's deferred adjoints
def test_taking_every_element_materialises_no_zeros(monkeypatch):
    x = ndl.Tensor(np.ones((50, 4), np.float32))
    out = ndl.stack([p * p for p in ndl.split(x, 0)], 0).sum()
    calls = []
    real_full = autograd.nd.full

    def counting_full(shape, fill_value, *args, **kwargs):
        if fill_value == 0:
            calls.append(shape)
        return real_full(shape, fill_value, *args, **kwargs)

    monkeypatch.setattr(autograd.nd, "full", counting_full)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.ones((50, 4)))
    assert calls == [], f"zeros were materialised for {len(calls)} tuple elements"


def test_second_derivative_through_split():
    x = ndl.Tensor(np.array([0.5, -1.0, 2.0]))
    y = sum(p ** 3 for p in ndl.split(x, 0))
    y.backward(create_graph=True)
    x.grad.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.array([0.5, -1.0, 2.0]), rtol=1e-6)
