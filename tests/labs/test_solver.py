"""The solver lab: cs231n's update-rule checks, overfitting 50 images, MNIST accuracy."""

import numpy as np
import pytest
import torch

from needle import labs
from needle.labs import solver as lab


def test_expected_update_values_are_what_torch_optim_computes():
    """The lab's expected arrays (cs231n's) come from an independent implementation."""
    w, dw = lab.ramp(-0.4, 0.6), lab.ramp(-0.6, 0.4)
    p = torch.tensor(w, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-2)
    p.grad = torch.tensor(dw)
    opt.step()  # creates the state, then replace it with cs231n's m, v, t = 5
    opt.state[p].update(exp_avg=torch.tensor(lab.ramp(0.6, 0.9)),
                        exp_avg_sq=torch.tensor(lab.ramp(0.7, 0.5)), step=torch.tensor(5.0))
    p.data = torch.tensor(w)
    opt.step()
    np.testing.assert_allclose(lab.EXPECTED["adam_next_w"], p.detach().numpy(), atol=1e-9)
    v, lr = lab.ramp(0.6, 0.9), 1e-3
    p = torch.tensor(w, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=0.9)
    opt.state[p]["momentum_buffer"] = torch.tensor(-v / lr)  # torch's buffer is -v / lr
    p.grad = torch.tensor(dw)
    opt.step()
    np.testing.assert_allclose(lab.EXPECTED["sgd_momentum_next_w"], p.detach().numpy(),
                               atol=1e-9)


@pytest.mark.lab
@pytest.mark.slow
def test_solver_lab(tmp_path):
    results = labs.run_lab("solver", quick=True, out=str(tmp_path))
    for name in ("sgd_momentum_next_w", "sgd_momentum_velocity", "rmsprop_next_w",
                 "rmsprop_cache", "adam_next_w", "adam_m", "adam_v"):
        assert results[f"{name}_error"] < 1e-8, name
    assert results["overfit_train_acc"] == 1.0 and results["overfit_epochs"] <= 20
    assert results["mnist_val_acc"] >= 0.95
    assert (tmp_path / "solver_mnist.png").exists()
