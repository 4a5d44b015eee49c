"""ExponentialLR, MultiStepLR and ReduceLROnPlateau against torch.optim.lr_scheduler."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle import optim


def _pair(lr: float = 0.1):
    ours = optim.SGD([ndl.nn.Parameter(ndl.Tensor([1.0]))], lr=lr)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.tensor([1.0]))], lr=lr)
    return ours, theirs


@pytest.mark.parametrize("make", [
    lambda o, m: m.ExponentialLR(o, gamma=0.8),
    lambda o, m: m.MultiStepLR(o, milestones=[2, 5, 6], gamma=0.5),
])
def test_epoch_schedulers_match_torch(make):
    ours, theirs = _pair()
    ours_s, theirs_s = make(ours, optim), make(theirs, torch.optim.lr_scheduler)
    for _ in range(8):
        assert isinstance(ours_s.get_last_lr(), list)
        np.testing.assert_allclose(ours_s.get_last_lr(), theirs_s.get_last_lr(), rtol=1e-12)
        theirs.step()
        ours_s.step()
        theirs_s.step()


@pytest.mark.parametrize("options", [
    dict(), dict(mode="max", factor=0.5, patience=1), dict(patience=0, cooldown=2, min_lr=0.02),
    dict(threshold=0.1, threshold_mode="abs", patience=1)])
def test_reduce_lr_on_plateau_matches_torch(options):
    ours, theirs = _pair()
    ours_s = optim.ReduceLROnPlateau(ours, **options)
    theirs_s = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **options)
    metrics = [1.0, 0.9, 0.95, 0.92, 0.91, 0.91, 0.5, 0.6, 0.7, 0.8, 0.4, 0.45, 0.46, 0.47]
    for metric in metrics:
        ours_s.step(metric)
        theirs_s.step(metric)
        np.testing.assert_allclose(ours_s.get_last_lr(), theirs_s.get_last_lr(), rtol=1e-12)
    assert ours.lr == ours_s.get_last_lr()[0]


def test_scheduler_arguments_are_checked():
    ours, _ = _pair()
    with pytest.raises(ValueError, match="increasing"):
        optim.MultiStepLR(ours, milestones=[3, 1])
    with pytest.raises(ValueError, match="factor"):
        optim.ReduceLROnPlateau(ours, factor=2.0)
    with pytest.raises(ValueError, match="mode"):
        optim.ReduceLROnPlateau(ours, mode="up")
