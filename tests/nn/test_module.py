"""Module: parameter discovery, modes, state dicts (with BatchNorm's running statistics)."""

import numpy as np
import pytest

import needle as ndl
from needle import nn


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
        self.heads = [nn.Linear(3, 2), nn.Linear(3, 1, bias=False)]
        self.scale = nn.Parameter(np.ones(1, np.float32))

    def forward(self, x):
        h = self.body(x)
        return self.heads[0](h) * self.scale, self.heads[1](h)


def test_parameters_are_found_recursively_in_definition_order():
    net = _Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["body.modules.0.weight", "body.modules.0.bias", "body.modules.1.weight",
                     "body.modules.1.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight",
                     "scale"]
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in net.named_parameters()]
    assert len(net.children()) == 3 and len(net.submodules()) == 7


def test_train_and_eval_reach_every_module():
    net = _Net().eval()
    assert not any(m.training for m in net.submodules())
    net.train()
    assert all(m.training for m in net.submodules())


def test_state_dict_includes_running_statistics_and_round_trips():
    np.random.seed(0)
    net = _Net()
    net(ndl.Tensor(np.random.randn(5, 4).astype(np.float32)))  # moves the running stats
    state = net.state_dict()
    assert "body.modules.1.running_mean" in state and "body.modules.1.running_var" in state
    assert not np.allclose(state["body.modules.1.running_mean"], 0)
    np.random.seed(1)
    other = _Net()
    other.load_state_dict(state)
    for (name, a), (_, b) in zip(net.named_tensors(), other.named_tensors()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    state["scale"][0] = 5.0  # a copy: changing it leaves the module alone
    assert net.scale.numpy()[0] == 1.0


def test_load_state_dict_lists_missing_unexpected_and_misshaped_entries():
    net = _Net()
    state = net.state_dict()
    del state["heads.0.bias"]
    state["extra.weight"] = np.zeros(2, np.float32)
    state["scale"] = np.ones(3, np.float32)
    before = net.heads[0].weight.numpy().copy()
    state["heads.0.weight"] = before + 1
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    message = str(error.value)
    assert "missing: ['heads.0.bias']" in message
    assert "unexpected: ['extra.weight']" in message
    assert "scale: expected (1,), got (3,)" in message
    np.testing.assert_array_equal(net.heads[0].weight.numpy(), before)  # nothing changed


def test_load_state_dict_non_strict_ignores_missing_and_unexpected():
    net = _Net()
    state = {"scale": np.full(1, 2.0, np.float32), "other": np.zeros(1)}
    net.load_state_dict(state, strict=False)
    assert net.scale.numpy()[0] == 2.0 and net.scale.dtype == np.float32
