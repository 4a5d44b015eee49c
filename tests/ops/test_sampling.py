"""ndl.multinomial / Tensor.multinomial: torch.multinomial's shapes and rules, frequencies
against the probabilities (a chi-square bound), and numpy's RNG for reproducibility."""

import numpy as np
import pytest
import torch

import needle as ndl


def test_shapes_and_dtype_follow_torch():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], dtype=np.float32)
    for num, replacement in [(1, False), (2, False), (5, True)]:
        ours = ndl.multinomial(ndl.Tensor(probs), num, replacement)
        theirs = torch.multinomial(torch.tensor(probs), num, replacement)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == np.int64
        assert not ours.requires_grad
    assert ndl.Tensor(probs[0]).multinomial(2).shape == (2,)


def test_frequencies_follow_the_weights_and_zero_weights_are_never_drawn():
    np.random.seed(0)
    weights = np.array([1.0, 3.0, 0.0, 6.0])  # unnormalised, as torch allows
    draws = ndl.multinomial(ndl.Tensor(weights), 20000, replacement=True).numpy()
    counts = np.bincount(draws, minlength=4)
    assert counts[2] == 0
    expected = 20000 * weights / weights.sum()
    chi2 = (((counts - expected) ** 2)[[0, 1, 3]] / expected[[0, 1, 3]]).sum()
    assert chi2 < 13.8  # 99.9% quantile of chi-square with 2 degrees of freedom


def test_without_replacement_draws_distinct_categories_and_seeds_reproduce():
    np.random.seed(1)
    first = ndl.multinomial(ndl.Tensor(np.ones((3, 5))), 5).numpy()
    assert all(sorted(row) == list(range(5)) for row in first)
    np.random.seed(1)
    np.testing.assert_array_equal(ndl.multinomial(ndl.Tensor(np.ones((3, 5))), 5).numpy(), first)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="without replacement"):
        ndl.multinomial(ndl.Tensor([0.5, 0.5]), 3)
    with pytest.raises(ValueError, match="non-negative"):
        ndl.multinomial(ndl.Tensor([-0.5, 0.5]), 1)
    with pytest.raises(ValueError, match=r"\(C,\) or \(N, C\)"):
        ndl.multinomial(ndl.Tensor(np.ones((2, 2, 2))), 1)
