"""Schedules: the annealers' formulas, combine_scheds' phases and errors, and OneCycleLR's
learning rates and momenta step by step against PyTorch's OneCycleLR."""

import math

import numpy as np
import pytest
import torch

import needle as ndl
from needle.schedules import (OneCycleLR, combine_scheds, sched_cos, sched_exp, sched_lin,
                              sched_no)

POSITIONS = np.linspace(0, 1, 11)


def test_annealers_follow_their_formulas():
    for pos in POSITIONS:
        assert sched_lin(2.0, 4.0)(pos) == pytest.approx(2.0 + 2.0 * pos)
        assert sched_cos(2.0, 4.0)(pos) == pytest.approx(3.0 - math.cos(math.pi * pos))
        assert sched_exp(0.01, 1.0)(pos) == pytest.approx(0.01 * 100 ** pos)
        assert sched_no(2.0, 4.0)(pos) == 2.0
    with pytest.raises(ValueError, match="start and end > 0, got 0.0 and 1.0"):
        sched_exp(0.0, 1.0)


def test_combine_scheds_runs_each_phase_from_its_own_start():
    f = combine_scheds([0.25, 0.75], [sched_lin(0.0, 1.0), sched_cos(1.0, 0.0)])
    for pos in POSITIONS:
        want = pos / 0.25 if pos < 0.25 else sched_cos(1.0, 0.0)((pos - 0.25) / 0.75)
        assert f(pos) == pytest.approx(want)
    assert f(1.0) == pytest.approx(0.0)


@pytest.mark.parametrize("pcts, message", [([0.3, 0.6], r"sum to 1, got \[0.3, 0.6\] \(sum 0.9\)"),
                                           ([1.2, -0.2], "must be positive"),
                                           ([1.0], "one percentage per schedule, got 1")])
def test_combine_scheds_rejects_bad_percentages(pcts, message):
    with pytest.raises(ValueError, match=message):
        combine_scheds(pcts, [sched_no(1, 1), sched_no(2, 2)])


def _params():
    return [ndl.nn.Parameter(np.zeros(3, np.float32))]


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_one_cycle_matches_torch_step_by_step(anneal, kind):
    total, kwargs = 37, dict(max_lr=0.4, total_steps=37, pct_start=0.25, anneal_strategy=anneal,
                             div_factor=10.0, final_div_factor=100.0)
    t_param = [torch.zeros(3, requires_grad=True)]
    if kind == "sgd":
        opt = ndl.optim.SGD(_params(), lr=0.1, momentum=0.9)
        t_opt = torch.optim.SGD(t_param, lr=0.1, momentum=0.9)
        name, read = "momentum", lambda g: g["momentum"]
    else:
        opt = ndl.optim.Adam(_params(), lr=0.1)
        t_opt = torch.optim.Adam(t_param, lr=0.1)
        name, read = "beta1", lambda g: g["betas"][0]
    sched = OneCycleLR(opt, **kwargs)
    t_sched = torch.optim.lr_scheduler.OneCycleLR(t_opt, **kwargs)
    for step in range(total):
        group = t_opt.param_groups[0]
        assert opt.lr == pytest.approx(group["lr"], rel=1e-12), f"lr at step {step}"
        assert getattr(opt, name) == pytest.approx(read(group), rel=1e-12), f"{name} at {step}"
        t_opt.step()
        t_sched.step()
        sched.step()
    with pytest.raises(ValueError, match="stepped 38 times, but total_steps is 37"):
        sched.step()


def test_one_cycle_resumes_from_its_state():
    opt = ndl.optim.SGD(_params(), lr=0.1)
    sched = OneCycleLR(opt, max_lr=1.0, epochs=3, steps_per_epoch=10, cycle_momentum=False)
    for _ in range(12):
        sched.step()
    other = ndl.optim.SGD(_params(), lr=0.1)
    resumed = OneCycleLR(other, max_lr=1.0, total_steps=30, cycle_momentum=False)
    resumed.load_state_dict(sched.state_dict())
    assert other.lr == opt.lr and other.momentum == 0.0


def test_one_cycle_bad_arguments():
    opt = ndl.optim.SGD(_params(), lr=0.1)
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="step")
