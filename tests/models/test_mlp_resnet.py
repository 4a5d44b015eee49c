"""MLPResNet: structure and gradients against a PyTorch copy; accuracy on real digits."""

import os

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn
from needle.models import MLPResNet, ResidualBlock


class _TorchResidual(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


def _torch_mlp_resnet(dim, hidden, blocks, classes):
    def block(d, h):
        return torch.nn.Sequential(_TorchResidual(torch.nn.Sequential(
            torch.nn.Linear(d, h), torch.nn.BatchNorm1d(h), torch.nn.ReLU(), torch.nn.Dropout(0),
            torch.nn.Linear(h, d), torch.nn.BatchNorm1d(d))), torch.nn.ReLU())
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(dim, hidden), torch.nn.ReLU(),
                               *[block(hidden, hidden // 2) for _ in range(blocks)],
                               torch.nn.Linear(hidden, classes))


def _copy_weights(model, ref):
    """needle -> torch; Linear weights transposed, biases (1, out) flattened."""
    ours = [m for m in model.submodules() if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    theirs = [m for m in ref.modules()
              if isinstance(m, (torch.nn.Linear, torch.nn.BatchNorm1d))]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            weight = a.weight.numpy()
            b.weight.copy_(torch.tensor(weight.T if isinstance(a, nn.Linear) else weight))
            b.bias.copy_(torch.tensor(a.bias.numpy().reshape(-1)))
    return ours, theirs


def test_structure_follows_seed_002():
    model = MLPResNet(784, hidden_dim=100, num_blocks=3, num_classes=10)
    layers = model.layers
    assert [type(m).__name__ for m in layers] == ["Flatten", "Linear", "ReLU", "Sequential",
                                                  "Sequential", "Sequential", "Linear"]
    block = ResidualBlock(100, 50, nn.BatchNorm1d, 0.1)
    assert [type(m).__name__ for m in block.layers] == ["Residual", "ReLU"]
    assert [type(m).__name__ for m in block.layers[0].fn.layers] == [
        "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d"]
    assert sum(p.size for p in model.parameters()) == sum(
        p.numel() for p in _torch_mlp_resnet(784, 100, 3, 10).parameters())
    norm = MLPResNet(20, hidden_dim=8, num_blocks=1, norm=nn.LayerNorm1d)
    assert any(isinstance(m, nn.LayerNorm1d) for m in norm.submodules())


@pytest.mark.parametrize("training", [True, False])
def test_forward_and_gradients_match_torch_with_copied_weights(training):
    np.random.seed(0)
    model = MLPResNet(12, hidden_dim=10, num_blocks=2, num_classes=4, drop_prob=0.0)
    ref = _torch_mlp_resnet(12, 10, 2, 4)
    ours, theirs = _copy_weights(model, ref)
    model.train(training)
    ref.train(training)
    x = np.random.default_rng(1).standard_normal((6, 3, 4, 1)).astype(np.float32)
    y = np.array([0, 3, 1, 2, 2, 0])
    loss = nn.SoftmaxLoss()(model(ndl.Tensor(x, requires_grad=False)), ndl.Tensor(y))
    tloss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
    assert abs(loss.item() - tloss.item()) < 1e-5
    loss.backward()
    tloss.backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        weight = b.weight.grad.numpy()
        np.testing.assert_allclose(a.weight.grad.numpy(),
                                   weight.T if isinstance(a, nn.Linear) else weight,
                                   rtol=1e-4, atol=1e-5, err_msg=f"layer {i} weight")
        np.testing.assert_allclose(a.bias.grad.numpy().reshape(-1), b.bias.grad.numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=f"layer {i} bias")


@pytest.mark.slow
def test_digits_accuracy_at_least_97_percent():
    np.random.seed(0)
    model = MLPResNet(64, hidden_dim=100, num_blocks=3, num_classes=10)
    train = ndl.data.DataLoader(ndl.data.Digits(train=True), 100, shuffle=True)
    test = ndl.data.DataLoader(ndl.data.Digits(train=False), 100)
    opt = ndl.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-3)
    history = ndl.train.fit(model, train, opt, 20, test_loader=test,
                            scheduler=ndl.optim.CosineAnnealingLR(opt, T_max=20))
    print(f"digits: test accuracy {history[-1]['test_acc']:.4f} after 20 epochs")
    assert history[-1]["test_acc"] >= 0.97


@pytest.mark.slow
def test_mnist_holdout_accuracy_at_least_95_percent_within_10_epochs():
    folder = os.path.join(os.environ.get("NEEDLE_DATA", os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "shared", "data")), "mnist")
    images = os.path.join(folder, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(images):
        pytest.skip(f"no MNIST files in {folder}")
    full = ndl.data.MNISTDataset(images, os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
    train = ndl.data.DataLoader(ndl.data.Subset(full, np.arange(8000)), 100, shuffle=True)
    test = ndl.data.DataLoader(ndl.data.Subset(full, np.arange(8000, 10000)), 100)
    np.random.seed(0)
    model = MLPResNet(784, hidden_dim=100, num_blocks=3, num_classes=10)
    opt = ndl.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-3)
    history = ndl.train.fit(model, train, opt, 10, test_loader=test,
                            scheduler=ndl.optim.CosineAnnealingLR(opt, T_max=10))
    best = max(e["test_acc"] for e in history)
    print(f"MNIST 8,000/2,000: holdout accuracy {history[-1]['test_acc']:.4f} after 10 epochs "
          f"(best {best:.4f})")
    assert history[-1]["test_acc"] >= 0.95
