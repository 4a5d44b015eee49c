"""logsumexp and logsoftmax: vs PyTorch and finite differences, and stable for |x| ~ 1e4."""

import numpy as np
import pytest
import torch
from hypothesis import given

import needle as ndl
from strategies import check_op, fast, normal, seeds, shape_and_axes, shape_and_axis, torch_dims


@fast
@given(case=shape_and_axes(), seed=seeds)
def test_logsumexp(case, seed):
    shape, axes = case
    (a,) = normal(seed, shape)
    dims = torch_dims(axes, len(shape))
    check_op(lambda x: ndl.logsumexp(x, axes),
             lambda x: torch.logsumexp(x, dims) if dims else x, a,
             name=f"logsumexp {shape} {axes}")


def test_logsumexp_tensor_method_and_numpy():
    (a,) = normal(2, (3, 5))
    want = np.log(np.exp(a).sum(axis=1))
    np.testing.assert_allclose(ndl.Tensor(a, dtype="float64").logsumexp(1).numpy(), want)


def test_logsumexp_over_an_empty_axis_is_minus_infinity_like_torch():
    x = ndl.Tensor(np.zeros((0, 3)))
    np.testing.assert_array_equal(ndl.logsumexp(x, 0).numpy(),
                                  torch.logsumexp(torch.zeros(0, 3), 0).numpy())


@fast
@given(case=shape_and_axis(), seed=seeds)
def test_logsoftmax(case, seed):
    shape, axis = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.logsoftmax(x, axis), lambda x: torch.log_softmax(x, axis), a,
             name=f"logsoftmax {shape} axis {axis}")


def test_logsoftmax_defaults_to_the_last_axis_of_2d_logits():
    (a,) = normal(3, (4, 6))
    check_op(ndl.logsoftmax, lambda x: torch.log_softmax(x, -1), a, name="logsoftmax")
    want = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(ndl.logsoftmax(ndl.Tensor(a, dtype="float64")).numpy(), want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_large_inputs_give_finite_values_and_gradients(dtype, scale):
    a = (scale + np.random.default_rng(0).standard_normal((4, 5)) * 10).astype(dtype)
    a[0, 0] = -scale  # mixed signs in one row: exp(2e4) would overflow without the shift
    for name, fn, torch_fn in [("logsumexp", lambda x: ndl.logsumexp(x, 1),
                                lambda x: torch.logsumexp(x, 1)),
                               ("logsoftmax", ndl.logsoftmax,
                                lambda x: torch.log_softmax(x, -1))]:
        x = ndl.Tensor(a, dtype=dtype)
        out = fn(x)
        (out * out).sum().backward()
        assert np.isfinite(out.numpy()).all(), name
        assert np.isfinite(x.grad.numpy()).all(), name
        t = torch.tensor(a, requires_grad=True)
        torch_out = torch_fn(t)
        (torch_out * torch_out).sum().backward()
        np.testing.assert_allclose(out.numpy(), torch_out.detach().numpy(), rtol=1e-6,
                                   err_msg=name)
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)
