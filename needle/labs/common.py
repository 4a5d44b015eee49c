"""Helpers the labs share: their data (digits, the MNIST 8,000/2,000 split, CIFAR-10) and
their figures (image grids, curves). Not a lab itself.

Images come back as numpy arrays in cs231n's layout, N x C x H x W (channels first), float32
in [0, 1], with int64 labels.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import data as ndl_data
from .. import nn, optim
from ..autograd import Tensor, no_grad

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def data_root(data_dir: str | None) -> str:
    """``data_dir``, else ``$NEEDLE_DATA``, else ``../shared/data`` from the project root."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    default = os.path.normpath(os.path.join(root, os.pardir, "shared", "data"))
    return data_dir or os.environ.get("NEEDLE_DATA") or default


def load_digits() -> Split:
    """scikit-learn's 8x8 digits: (X_train (1437, 1, 8, 8), y_train, X_test (360, 1, 8, 8),
    y_test), the fixed split of ``needle.data.Digits``."""
    x_train, y_train, x_test, y_test = ndl_data.load_digits_split()
    return (np.ascontiguousarray(x_train.transpose(0, 3, 1, 2)), y_train,
            np.ascontiguousarray(x_test.transpose(0, 3, 1, 2)), y_test)


def mnist_files(data_dir: str | None) -> tuple[str, str]:
    """The image and label files of the 10,000 MNIST images under ``data_dir/mnist``."""
    folder = os.path.join(data_root(data_dir), "mnist")
    images = os.path.join(folder, "t10k-images-idx3-ubyte.gz")
    labels = os.path.join(folder, "t10k-labels-idx1-ubyte.gz")
    for path in (images, labels):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no MNIST file; set NEEDLE_DATA or --data-dir to "
                                    f"a folder holding mnist/t10k-images-idx3-ubyte.gz and "
                                    f"mnist/t10k-labels-idx1-ubyte.gz")
    return images, labels


def load_mnist(data_dir: str | None) -> Split:
    """The 10,000 real MNIST images split as the command line does: the first 8,000 train,
    the last 2,000 test. Images (N, 1, 28, 28)."""
    images, labels = ndl_data.parse_mnist(*mnist_files(data_dir))
    images = images.reshape(-1, 1, 28, 28).astype(np.float32)
    labels = labels.astype(np.int64)
    return images[:8000], labels[:8000], images[8000:], labels[8000:]


def find_cifar10(data_dir: str | None) -> str | None:
    """The folder holding CIFAR-10's python batches (``data_dir`` itself, or its
    ``cifar-10-batches-py`` or ``cifar10`` folder), or None when there is none."""
    root = data_root(data_dir)
    for folder in (root, os.path.join(root, "cifar-10-batches-py"),
                   os.path.join(root, "cifar10")):
        if os.path.isfile(os.path.join(folder, "data_batch_1")):
            return folder
    return None


def load_cifar10(folder: str, num_train: int, num_test: int) -> Split:
    """The first ``num_train`` training and ``num_test`` test images of CIFAR-10 (N, 3, 32,
    32) (cs231n's subsampling)."""
    train = ndl_data.CIFAR10Dataset(folder, train=True)
    test = ndl_data.CIFAR10Dataset(folder, train=False)
    return (train.images[:num_train], train.labels[:num_train],
            test.images[:num_test], test.labels[:num_test])


# ---------------------------------------------------------------------------- figures
def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (labs write PNGs, never windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_image(array: np.ndarray) -> np.ndarray:
    """One image C x H x W (or H x W) as H x W or H x W x 3 scaled to [0, 1] for imshow."""
    image = np.asarray(array, dtype=np.float64)
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def save_grid(images: Sequence[np.ndarray] | np.ndarray, path: str, ncols: int = 10,
              titles: Sequence[str] | None = None, cmap: str = "gray",
              suptitle: str | None = None, scale: float = 1.2) -> None:
    """A grid of images (each C x H x W or H x W, each scaled to its own range) as a PNG."""
    plt = pyplot()
    count = len(images)
    nrows = max(1, -(-count // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows + 0.3),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < count:
            ax.imshow(to_image(images[index]), cmap=cmap, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[index], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_curves(curves: Mapping[str, Sequence[float]], path: str, xlabel: str, ylabel: str,
                title: str = "", logx: bool = False, x: Sequence[float] | None = None) -> None:
    """Named curves on one axis as a PNG (``x`` shared by all, else 0, 1, 2, ...)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, values in curves.items():
        ax.plot(x if x is not None else range(len(values)), values, label=label,
                marker="o" if len(values) <= 20 else None)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------- models
Perturb = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]


def mnist_cnn(channels: tuple[int, ...] = (16, 32)) -> Any:
    """The labs' MNIST classifier, N x 1 x 28 x 28 -> 10 scores: [Conv 3x3 - BatchNorm2d -
    ReLU - MaxPool 2] per width in ``channels``, then Linear."""
    from ..models import CNN

    return CNN(1, 10, image_size=28, channels=channels)


def train_classifier(model: Any, X: np.ndarray, y: np.ndarray, epochs: int,
                     batch_size: int = 64, lr: float = 2e-3,
                     perturb: Perturb | None = None) -> list[float]:
    """Adam on the softmax loss over shuffled minibatches, the learning rate cosine-annealed
    per epoch; ``perturb(model, x, y)`` replaces each batch (adversarial training). Returns
    the mean loss of each epoch; leaves the model in eval mode."""
    opt = optim.Adam(model.parameters(), lr=lr)
    schedule = optim.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.SoftmaxLoss()
    history = []
    for _ in range(epochs):
        model.train()
        order, losses = np.random.permutation(len(X)), []
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            x_batch = X[batch] if perturb is None else perturb(model, X[batch], y[batch])
            model.train()
            loss = loss_fn(model(Tensor(x_batch)), Tensor(y[batch]))
            opt.reset_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.numpy()))
        schedule.step()
        history.append(float(np.mean(losses)))
    model.eval()
    return history


def predict_scores(model: Any, X: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Scores (N, C) of the model in eval mode, without recording a graph."""
    model.eval()
    with no_grad():
        return np.concatenate([model(Tensor(X[s:s + batch_size])).numpy()
                               for s in range(0, len(X), batch_size)])


def accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict_scores(model, X).argmax(axis=1) == y))


def freeze(model: Any) -> Any:
    """Eval mode, and no parameter requires a gradient: only inputs get gradients."""
    for parameter in model.parameters():
        parameter.requires_grad = False
    return model.eval()


def unfreeze(model: Any) -> Any:
    for parameter in model.parameters():
        parameter.requires_grad = True
    return model


def input_gradient(model: Any, X: np.ndarray, objective: Callable[[Tensor], Tensor]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(d objective(model(x)) / dx, scores) for a batch X through the frozen model."""
    image = Tensor(X, requires_grad=True)
    scores = model(image)
    objective(scores).backward()
    return image.grad.numpy(), scores.numpy()
