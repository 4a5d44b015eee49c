"""A PyTorch CNN on MNIST, ported to needle: a per-item Dataset, Compose transforms, two
parameter groups (Adam) and ReduceLROnPlateau. The MNIST training images are not shipped
here, so it trains on the first 8,000 of the 10,000 real MNIST test images and reports the
accuracy on the last 2,000.

    NEEDLE_DATA=../shared/data PYTHONPATH=. python examples/from_pytorch/cnn_mnist.py

What changed in the port: ``torch`` -> ``needle`` imports, ``ndl.data`` for
``torch.utils.data``, ``loss.item()`` and ``argmax`` as in PyTorch, images stay numpy until
the DataLoader makes Tensors. needle's transforms take H x W x C numpy images.
tests/examples/test_from_pytorch.py runs both programs on the same data with the same
initial weights (``nn.copy_from_torch``) and compares them.

PyTorch twin::

    import numpy as np
    import torch
    from torch import nn


    class Compose:  # torchvision's, for numpy images
        def __init__(self, transforms):
            self.transforms = transforms

        def __call__(self, img):
            for t in self.transforms:
                img = t(img)
            return img


    class MNISTSplit(torch.utils.data.Dataset):
        def __init__(self, images, labels, transform=None):
            self.images, self.labels, self.transform = images, labels, transform

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return torch.from_numpy(self.transform(self.images[i])), int(self.labels[i])


    def make_transform():
        return Compose([lambda img: (img - 0.1307) / 0.3081,
                        lambda img: np.ascontiguousarray(img.transpose(2, 0, 1))])


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, (3, 3), padding="same"), nn.ReLU(), nn.MaxPool2d(2))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, 10))

        def forward(self, x):
            return self.head(self.features(x))


    def train(model, split, epochs=2, batch_size=64, shuffle=True):
        x_train, y_train, x_test, y_test = split
        train_loader = torch.utils.data.DataLoader(
            MNISTSplit(x_train, y_train, make_transform()), batch_size, shuffle=shuffle)
        test_loader = torch.utils.data.DataLoader(
            MNISTSplit(x_test, y_test, make_transform()), 500)
        opt = torch.optim.Adam([
            {"params": model.features.parameters(), "lr": 2e-3},
            {"params": model.head.parameters(), "lr": 1e-3, "weight_decay": 1e-4}])
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
        loss_fn = nn.CrossEntropyLoss()
        history = {"losses": [], "lrs": []}
        for _ in range(epochs):
            model.train()
            total = 0.0
            for x, y in train_loader:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                total += loss.item() * len(y)
            history["losses"].append(total / len(y_train))
            model.eval()
            correct, holdout = 0, 0.0
            with torch.no_grad():
                for x, y in test_loader:
                    logits = model(x)
                    holdout += loss_fn(logits, y).item() * len(y)
                    correct += (logits.argmax(1) == y).sum().item()
            scheduler.step(holdout / len(y_test))
            history["lrs"].append(scheduler.get_last_lr())
        history["accuracy"] = correct / len(y_test)
        return history
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

import needle as ndl
from needle import data, nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("NEEDLE_DATA", os.path.join(ROOT, "..", "shared", "data"))
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load_split(train_size: int = 8000, test_size: int = 2000) -> Split:
    """(x_train, y_train, x_test, y_test): images (N, 28, 28, 1) in [0, 1], labels; the
    first ``train_size`` and the last ``test_size`` of the real MNIST test set."""
    images, labels = data.parse_mnist(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"),
                                      os.path.join(DATA, "mnist", "t10k-labels-idx1-ubyte.gz"))
    return (images[:train_size], labels[:train_size].astype(np.int64),
            images[-test_size:], labels[-test_size:].astype(np.int64))


class MNISTSplit(data.Dataset):
    """One image (1, 28, 28) and its label per index, PyTorch-style."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any = None):
        super().__init__(transform)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.apply_transforms(self.images[i]), int(self.labels[i])


def make_transform() -> data.Compose:
    return data.Compose([lambda img: (img - 0.1307) / 0.3081,
                         lambda img: np.ascontiguousarray(img.transpose(2, 0, 1))])


class Net(nn.Module):
    """(N, 1, 28, 28) -> logits (N, 10): two conv-ReLU-pool blocks and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, (3, 3), padding="same"), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, 10))

    def forward(self, x: ndl.Tensor) -> ndl.Tensor:
        return self.head(self.features(x))


def train(model: Net, split: Split, epochs: int = 2, batch_size: int = 64,
          shuffle: bool = True) -> dict[str, Any]:
    """Train with Adam on two parameter groups, halve the learning rates when the holdout
    loss stops falling; per-epoch train losses, learning rates and the final accuracy."""
    x_train, y_train, x_test, y_test = split
    train_loader = data.DataLoader(MNISTSplit(x_train, y_train, make_transform()), batch_size,
                                   shuffle=shuffle)
    test_loader = data.DataLoader(MNISTSplit(x_test, y_test, make_transform()), 500)
    opt = ndl.optim.Adam([
        {"params": model.features.parameters(), "lr": 2e-3},
        {"params": model.head.parameters(), "lr": 1e-3, "weight_decay": 1e-4}])
    scheduler = ndl.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    loss_fn = nn.CrossEntropyLoss()
    history: dict[str, Any] = {"losses": [], "lrs": []}
    for _ in range(epochs):
        model.train()
        total = 0.0
        for x, y in train_loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        history["losses"].append(total / len(y_train))
        model.eval()
        correct, holdout = 0, 0.0
        with ndl.no_grad():
            for x, y in test_loader:
                logits = model(x)
                holdout += loss_fn(logits, y).item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
        scheduler.step(holdout / len(y_test))
        history["lrs"].append(scheduler.get_last_lr())
    history["accuracy"] = correct / len(y_test)
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=8000)
    args = parser.parse_args()
    np.random.seed(0)
    history = train(Net(), load_split(args.train), args.epochs)
    for epoch, (loss, lrs) in enumerate(zip(history["losses"], history["lrs"]), 1):
        print(f"epoch {epoch}: train loss {loss:.4f}, lrs {lrs}")
    print(f"holdout accuracy {history['accuracy']:.4f} (last 2,000 MNIST test images)")


if __name__ == "__main__":
    main()
