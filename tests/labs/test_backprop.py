"""The backprop lab: hand-written gradients equal needle's autograd and PyTorch's."""

import numpy as np
import pytest

from needle import labs
from needle.labs import backprop


def test_hand_written_gradients_on_random_data():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 784)), rng.standard_normal(6)
    arrays = {"w1": rng.standard_normal((784, 50)) * 0.05, "b1": rng.standard_normal(50),
              "w2": rng.standard_normal((50, 1)), "b2": rng.standard_normal(1)}
    _, autograd = backprop.backward_by_autograd(x, arrays, y)
    torch_grads = backprop.backward_by_torch(x, arrays, y)
    assert backprop.max_diff(autograd, torch_grads) < 1e-12


@pytest.mark.lab
def test_backprop_lab_thresholds(tmp_path):
    results = labs.run_lab("backprop", quick=True, out=str(tmp_path))
    assert results["max_grad_diff"] <= 1e-6
    assert results["max_grad_diff_torch"] <= 1e-6
    assert results["num_images"] == 1000 and results["loss"] > 1.0  # digits 0-9 vs ~0 output
