"""Initialisers: the exact numbers of the contract's numpy formulas for a seed, and the
scales, shapes, dtypes and flags they promise."""

import math

import numpy as np
import pytest

import needle as ndl
from needle import init


def _seeded(fn, seed=5):
    np.random.seed(seed)
    return fn()


@pytest.mark.parametrize("make, reference", [
    (lambda: init.rand(3, 4, low=-2, high=5), lambda: -2 + 7 * np.random.rand(3, 4)),
    (lambda: init.randn(2, 5, mean=1, std=3), lambda: 3 * np.random.randn(2, 5) + 1),
    (lambda: init.randb(4, 6, p=0.3), lambda: np.random.rand(4, 6) <= 0.3),
    (lambda: init.xavier_uniform(3, 5, gain=2),
     lambda: -2 * math.sqrt(6 / 8) + 4 * math.sqrt(6 / 8) * np.random.rand(3, 5)),
    (lambda: init.xavier_normal(3, 5, gain=0.5),
     lambda: 0.5 * math.sqrt(2 / 8) * np.random.randn(3, 5)),
    (lambda: init.kaiming_uniform(6, 2),
     lambda: -math.sqrt(2) * math.sqrt(3 / 6) + 2 * math.sqrt(2) * math.sqrt(3 / 6)
     * np.random.rand(6, 2)),
    (lambda: init.kaiming_uniform(6, 2, shape=(3, 3, 2, 2)),
     lambda: -math.sqrt(2) * math.sqrt(3 / 6) + 2 * math.sqrt(2) * math.sqrt(3 / 6)
     * np.random.rand(3, 3, 2, 2)),
    (lambda: init.kaiming_normal(6, 2),
     lambda: math.sqrt(2) / math.sqrt(6) * np.random.randn(6, 2)),
])
def test_random_initialisers_give_the_contract_numbers(make, reference):
    got, want = _seeded(make), _seeded(reference)
    assert got.shape == want.shape
    if want.dtype == np.bool_:
        np.testing.assert_array_equal(got.numpy(), want)
    else:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), want.astype(np.float32), rtol=1e-6, atol=1e-6)
    assert not got.requires_grad
    np.random.seed(5)
    make()
    assert np.random.rand() == _seeded(lambda: (reference(), np.random.rand())[1])  # same draws


def test_initialiser_flags_dtypes_and_constants():
    t = init.randn(2, 2, dtype="float64", requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad
    np.testing.assert_array_equal(init.constant(2, 3, c=2.5).numpy(), np.full((2, 3), 2.5))
    np.testing.assert_array_equal(init.ones(2).numpy(), [1, 1])
    np.testing.assert_array_equal(init.zeros_like(t).numpy(), np.zeros((2, 2)))
    assert init.ones_like(t).dtype == np.float64
    np.testing.assert_array_equal(init.one_hot(4, [3, 0]).numpy(), np.eye(4)[[3, 0]])
    assert init.rand(2, device=ndl.cpu()).device == ndl.cpu()


def test_kaiming_scale_and_gain_choices():
    np.random.seed(0)
    w = init.kaiming_uniform(400, 300).numpy()
    bound = math.sqrt(2) * math.sqrt(3 / 400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    linear = init.kaiming_normal(400, 300, nonlinearity="linear").numpy()
    assert abs(linear.std() - 1 / 20) < 0.001
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        init.kaiming_uniform(3, 3, nonlinearity="swish")
