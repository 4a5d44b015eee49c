"""erf against PyTorch and finite differences."""

import numpy as np
import torch

from needle import ops
from oracles import check_finite_differences, check_torch


def test_erf_matches_torch_and_finite_differences():
    x = np.linspace(-4, 4, 41)
    check_torch(ops.erf, torch.erf, x.astype(np.float32), rtol=1e-6, atol=1e-7, name="erf")
    check_finite_differences(ops.erf, x, name="erf")
