"""nn.init.lsuv: every layer's output (or the activation after it) ends with |mean| and
|std - 1| below the tolerance, measured independently of lsuv's own hooks; errors."""

import numpy as np
import pytest

import needle as ndl
from needle import nn


def outputs(model, x, modules):
    """Each module's output on x, recorded by fresh forward hooks."""
    seen = {}
    handles = [m.register_forward_hook(lambda mod, a, out: seen.__setitem__(id(mod),
                                                                              out.numpy()))
               for m in modules]
    with ndl.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [seen[id(m)].astype(np.float64) for m in modules]


def test_lsuv_gives_unit_variance_zero_mean_layer_outputs():
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(20, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(),
                          nn.Linear(50, 10))
    x = ndl.Tensor(3 * np.random.rand(256, 20).astype(np.float32) + 1)
    linears = [m for m in model.submodules() if isinstance(m, nn.Linear)]
    before = outputs(model, x, linears)
    assert max(abs(o.std() - 1) for o in before) > 0.1
    stats = nn.init.lsuv(model, x)
    assert list(stats) == ["0:Linear", "1:Linear", "2:Linear"]
    for out in outputs(model, x, linears):
        assert abs(out.mean()) < 1e-3 and abs(out.std() - 1) < 1e-3
    assert model.training


def test_lsuv_measured_after_general_relu_in_a_cnn():
    np.random.seed(1)
    convs = [nn.Conv(1, 8, 3, stride=2), nn.Conv(8, 16, 3, stride=2)]
    acts = [nn.GeneralRelu(0.1, 0.4), nn.GeneralRelu(0.1, 0.4)]
    model = nn.Sequential(convs[0], acts[0], convs[1], acts[1], nn.Flatten(),
                          nn.Linear(16 * 4 * 4, 10))
    x = ndl.Tensor(np.random.rand(64, 1, 16, 16).astype(np.float32))
    nn.init.lsuv(model, x, layers=list(zip(convs, acts)))
    for out in outputs(model, x, acts):
        assert abs(out.mean()) < 1e-3 and abs(out.std() - 1) < 1e-3


def test_lsuv_that_cannot_converge_says_which_layer():
    np.random.seed(2)
    linear, relu = nn.Linear(4, 8), nn.ReLU()
    model = nn.Sequential(linear, relu)
    x = ndl.Tensor(np.random.rand(32, 4).astype(np.float32))
    with pytest.raises(RuntimeError, match=r"lsuv: ReLU did not reach \|mean\| < 0.001"):
        nn.init.lsuv(model, x, layers=[(linear, relu)], max_iter=10)
    with pytest.raises(ValueError, match="lsuv: ReLU has no weight to rescale"):
        nn.init.lsuv(model, x, layers=[relu])
