"""PyTorch's Module idioms and containers (issue 10), against torch.nn where it has them."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn


def _mlp() -> nn.Module:
    np.random.seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


class WithBuffer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("scale", ndl.Tensor([2.0, 3.0]))
        self.register_buffer("cache", ndl.Tensor([0.0]), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


class TorchWithBuffer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.register_buffer("scale", torch.tensor([2.0, 3.0]))
        self.register_buffer("cache", torch.tensor([0.0]), persistent=False)


def test_register_buffer_is_state_not_parameter_like_torch():
    ours, theirs = WithBuffer(), TorchWithBuffer()
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert len(ours.parameters()) == len(list(theirs.parameters())) == 2
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert not ours.scale.requires_grad
    WithBuffer().load_state_dict(ours.state_dict())  # strict: the non-persistent one is not missing
    with pytest.raises(TypeError, match="Parameter"):
        ours.register_buffer("w", nn.Parameter(ndl.Tensor([1.0])))


def test_named_parameters_apply_add_module_and_zero_grad():
    model = _mlp()
    np.random.seed(0)
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                      torch.nn.Linear(4, 2))
    assert [n.split(".", 1)[1] for n, _ in model.named_parameters()] == \
        [n for n, _ in torch_model.named_parameters()]  # "layers." is needle's container name
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    torch_seen = []
    torch_model.apply(lambda m: torch_seen.append(type(m).__name__))
    assert seen == torch_seen
    model.add_module("head", nn.Linear(2, 1))
    assert "head.weight" in model.state_dict()
    model(ndl.Tensor(np.ones((2, 3), "float32"))).sum().backward()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model(ndl.Tensor(np.ones((2, 3), "float32"))).sum().backward()
    model.zero_grad(set_to_none=False)  # zeros where there was a grad; None stays (as torch)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model[0].parameters())
    assert model.head.weight.grad is None


def test_requires_grad_freezes_parameters():
    model = _mlp()
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    assert not model(ndl.Tensor(np.ones((1, 3), "float32"), requires_grad=False)).requires_grad
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


def test_to_double_float_convert_parameters_and_buffers_in_place():
    model = WithBuffer()
    weight = model.fc.weight
    assert model.double() is model and weight.dtype == np.float64 and \
        model.scale.dtype == np.float64
    out = model(ndl.Tensor(np.ones((1, 2)), dtype="float64"))
    assert out.dtype == np.float64
    model.float()
    assert weight.dtype == np.float32 and model.to(ndl.cpu()) is model
    assert model.to("cpu").fc.weight.device == ndl.cpu()


def test_module_list_and_dict_name_parameters_like_torch():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})

    class TorchNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(2)])
            self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(2, 1),
                                              "b": torch.nn.Linear(2, 3)})

    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.blocks.append(nn.Linear(2, 2))
    assert len(ours.blocks) == 3 and isinstance(ours.blocks[1:], nn.ModuleList)
    assert list(ours.heads) == ["a", "b"] and "a" in ours.heads
    assert ours.heads["b"].out_features == 3
    with pytest.raises(TypeError, match="holds Modules"):
        ours.blocks.append(3)


def test_sequential_from_ordered_dict_and_slicing():
    layers = OrderedDict(fc1=nn.Linear(3, 4), act=nn.ReLU(), fc2=nn.Linear(4, 2))
    model = nn.Sequential(layers)
    torch_model = torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(3, 4), act=torch.nn.ReLU(),
                                                  fc2=torch.nn.Linear(4, 2)))
    assert list(model.state_dict()) == list(torch_model.state_dict())
    assert model.fc1 is layers["fc1"]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head.act is layers["act"]
    x = ndl.Tensor(np.ones((1, 3), "float32"))
    np.testing.assert_allclose(model[2](head(x)).numpy(), model(x).numpy())
    plain = _mlp()
    assert isinstance(plain[1:], nn.Sequential) and len(plain[1:]) == 2


def test_flatten_start_and_end_dim_match_torch():
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for start, end in [(1, -1), (0, 1), (1, 2), (2, 3), (0, -1)]:
        got = nn.Flatten(start, end)(ndl.Tensor(a))
        want = torch.nn.Flatten(start, end)(torch.tensor(a))
        assert got.shape == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
