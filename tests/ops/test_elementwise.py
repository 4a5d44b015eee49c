"""Elementwise ops: forward and backward vs PyTorch (float64) and finite differences."""

import operator

import numpy as np
import pytest
import torch
from hypothesis import given

import needle as ndl
from oracles import check_torch
from strategies import broadcast_pairs, check_op, fast, nonzero, normal, positive, seeds, shapes

BINARY = {  # name: (needle, torch, input maker)
    "add": (ndl.add, torch.add, normal),
    "multiply": (ndl.multiply, torch.mul, normal),
    "divide": (ndl.divide, torch.div, nonzero),
    "power": (ndl.power, torch.pow, positive),
    "maximum": (ndl.maximum, torch.maximum, normal),
}
UNARY = {
    "negate": (ndl.negate, torch.neg, normal),
    "log": (ndl.log, torch.log, positive),
    "exp": (ndl.exp, torch.exp, normal),
    "relu": (ndl.relu, torch.relu, normal),
    "tanh": (ndl.tanh, torch.tanh, normal),
}


@pytest.mark.parametrize("name", sorted(BINARY) + sorted(UNARY))
@fast
@given(pair=broadcast_pairs(min_side=0), seed=seeds)
def test_elementwise_ops(name, pair, seed):
    """Binary ops on two shapes that broadcast together; unary ops on the first shape."""
    ndl_fn, torch_fn, make = BINARY[name] if name in BINARY else UNARY[name]
    inputs = make(seed, *pair) if name in BINARY else make(seed, pair[0])
    check_op(ndl_fn, torch_fn, *inputs, name=f"{name} {pair}")


OPERATORS = {  # Tensor operators on two Tensors
    "a + b": lambda a, b: a + b,
    "a - b": lambda a, b: a - b,
    "a * b": lambda a, b: a * b,
    "a / b": lambda a, b: a / b,
    "a ** b": lambda a, b: a ** b,
    "-a * b": lambda a, b: -a * b,
}


@pytest.mark.parametrize("expr", sorted(OPERATORS))
def test_tensor_operators(expr):
    fn = OPERATORS[expr]
    a, b = positive(0, (3, 4), (3, 4))
    check_op(fn, fn, a, b, name=expr)


SCALAR = {  # name: (needle op(a, c), torch equivalent, input maker, scalars to try)
    "add_scalar": (ndl.add_scalar, torch.add, normal, (2.5, -1)),
    "mul_scalar": (ndl.mul_scalar, torch.mul, normal, (2.5, -3, 0)),
    "divide_scalar": (ndl.divide_scalar, torch.div, normal, (2.5, -4)),
    "power_scalar": (ndl.power_scalar, torch.pow, positive, (2, 3, 0.5, -1.5, 1, 0)),
    "scalar - a": (lambda a, c: c - a, lambda a, c: c - a, normal, (2.5,)),
    "scalar / a": (lambda a, c: c / a, lambda a, c: c / a, nonzero, (2.5, -1)),
    "scalar ** a": (lambda a, c: c ** a, lambda a, c: c ** a, normal, (2.5, 0.5)),
}


@pytest.mark.parametrize("name", sorted(SCALAR))
@fast
@given(shape=shapes(), seed=seeds)
def test_scalar_ops(name, shape, seed):
    ndl_fn, torch_fn, make, scalars = SCALAR[name]
    (a,) = make(seed, shape)
    for c in scalars:
        check_op(lambda x: ndl_fn(x, c), lambda x: torch_fn(x, c), a, name=f"{name} c={c}")


def test_integer_powers_of_negative_bases():
    (a,) = normal(3, (4, 3))
    for c in (2, 3, -1):
        check_op(lambda x: x ** c, lambda x: x ** c, a, name=f"a ** {c}")


def test_power_scalar_zero_has_zero_gradient_at_zero():
    x = ndl.Tensor(np.array([0.0, 2.0]))
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


def test_unary_ops_match_numpy_in_float32():
    (a,) = positive(4, (5, 3))
    numpy_fns = {"negate": np.negative, "log": np.log, "exp": np.exp, "tanh": np.tanh,
                 "relu": lambda v: np.maximum(v, 0)}
    x = ndl.Tensor(a.astype(np.float32))
    for name, fn in numpy_fns.items():
        out = UNARY[name][0](x)
        assert out.dtype == np.float32, name
        np.testing.assert_allclose(out.numpy(), fn(a.astype(np.float32)), rtol=1e-6,
                                   err_msg=name)


def test_maximum_splits_the_gradient_on_ties_like_torch():
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    b = np.array([[1.0, 0.0, 3.0], [0.0, 2.0, 4.0]])
    check_torch(ndl.maximum, torch.maximum, a, b, name="maximum with ties")


def test_maximum_with_a_number():
    (a,) = normal(5, (3, 4))
    check_op(lambda x: ndl.maximum(x, 0.25), lambda x: torch.clamp(x, min=0.25), a,
             name="maximum(a, 0.25)")


def test_relu_gradient_at_zero_is_zero_like_torch():
    check_torch(ndl.relu, torch.relu, np.array([-1.0, 0.0, 2.0]), name="relu at 0")


def test_astype_casts_forward_and_gradient_back():
    x = ndl.Tensor(np.arange(4.0), dtype="float64")
    y = ndl.astype(x, "float32")
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.arange(4.0))
    assert ndl.astype(x, "float64") is x


COMPARISONS = {  # name: (needle function, numpy function, Tensor operator)
    "equal": (ndl.equal, np.equal, operator.eq),
    "not_equal": (ndl.not_equal, np.not_equal, operator.ne),
    "less": (ndl.less, np.less, operator.lt),
    "less_equal": (ndl.less_equal, np.less_equal, operator.le),
    "greater": (ndl.greater, np.greater, operator.gt),
    "greater_equal": (ndl.greater_equal, np.greater_equal, operator.ge),
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
@fast
@given(pair=broadcast_pairs(), seed=seeds)
def test_comparisons_match_numpy_and_carry_no_gradient(name, pair, seed):
    ndl_fn, np_fn, tensor_operator = COMPARISONS[name]
    a, b = (np.round(v) for v in normal(seed, *pair))  # rounding makes ties likely
    x, y = ndl.Tensor(a), ndl.Tensor(b)
    for out, want in [(ndl_fn(x, y), np_fn(a, b)), (ndl_fn(x, 0.0), np_fn(a, 0.0)),
                      (tensor_operator(x, y), np_fn(a, b)),
                      (tensor_operator(1.0, y), np_fn(1.0, b))]:
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), want)


def test_logical_not_and_invert():
    x = ndl.Tensor(np.array([1.0, -2.0, 3.0]))
    mask = x > 0
    np.testing.assert_array_equal((~mask).numpy(), [False, True, False])
    np.testing.assert_array_equal(ndl.logical_not(mask).numpy(), [False, True, False])


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_keep_float32(name):
    ndl_fn, _, make = BINARY[name]
    a, b = (ndl.Tensor(v.astype(np.float32)) for v in make(6, (2, 3), (3,)))
    out = ndl_fn(a, b)
    out.sum().backward()
    assert out.dtype == a.grad.dtype == b.grad.dtype == np.float32
    assert ndl_fn(a, 2.0).dtype == np.float32
