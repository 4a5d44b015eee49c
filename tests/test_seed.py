"""ndl.manual_seed: two runs from one seed are bit-identical; numpy's contract order holds."""

import random

import numpy as np
import pytest

import needle as ndl
from needle import nn


def _train_twice_the_same_way(seed):
    ndl.manual_seed(seed)
    x = np.random.randn(64, 6).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(x, y), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = ndl.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(3):
        for xb, yb in loader:
            loss = nn.SoftmaxLoss()(model(xb), yb)
            opt.reset_grad()
            loss.backward()
            opt.step()
            losses.append(loss.numpy())
    return np.array(losses), [p.numpy().copy() for p in model.parameters()], random.random()


def test_manual_seed_twice_gives_bit_identical_training_runs():
    losses_a, params_a, draw_a = _train_twice_the_same_way(7)
    losses_b, params_b, draw_b = _train_twice_the_same_way(7)
    assert losses_a.tobytes() == losses_b.tobytes()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(params_a, params_b))
    assert draw_a == draw_b
    losses_c, _, draw_c = _train_twice_the_same_way(8)
    assert losses_c.tobytes() != losses_a.tobytes() and draw_c != draw_a


def test_manual_seed_is_numpy_seed_in_the_contracts_order():
    ndl.manual_seed(3)
    ours = [ndl.init.rand(2, 3).numpy(), ndl.init.randn(4).numpy(),
            ndl.init.randb(5, p=0.3).numpy()]
    np.random.seed(3)
    want = [np.random.rand(2, 3), np.random.randn(4), np.random.rand(5) <= 0.3]
    for got, expected in zip(ours, want):
        np.testing.assert_array_equal(got, expected.astype(got.dtype))
    ndl.manual_seed(3)
    order = list(ndl.data.DataLoader(ndl.data.NDArrayDataset(np.arange(10)), batch_size=10,
                                     shuffle=True))[0][0].numpy()
    np.random.seed(3)
    np.testing.assert_array_equal(order, np.random.permutation(10))


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**32, ValueError),
                                         (1.5, TypeError), ("0", TypeError)])
def test_bad_seeds_are_clear_errors(seed, error):
    with pytest.raises(error, match="manual_seed expects"):
        ndl.manual_seed(seed)
