"""Softmax regression trained with needle's autograd and plain gradient descent.

    python examples/softmax_regression.py --data digits   # scikit-learn's bundled 8x8 digits
    python examples/softmax_regression.py --data mnist    # $NEEDLE_DATA/mnist, 8,000/2,000 split

MNIST is found as ``python -m needle`` finds it: ``$NEEDLE_DATA``, else ``../shared/data``
beside the project, from any working directory.

The model is one weight matrix W (features, 10); the loss is the mean softmax cross-entropy;
each step is ``W -= lr * dLoss/dW`` with the gradient from ``loss.backward()``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import needle as ndl


def load(data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) with X flattened to (N, features) in [0, 1]."""
    if data == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        X, y = digits.data.astype(np.float32) / 16.0, digits.target
        order = np.random.default_rng(0).permutation(len(y))
        X, y = X[order], y[order]
        split = 1437
    else:
        folder = os.path.join(ndl.data.data_root(), "mnist")  # as the command line finds it
        X, y = ndl.data.parse_mnist(os.path.join(folder, "t10k-images-idx3-ubyte.gz"),
                                    os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
        X = X.reshape(len(X), -1)
        split = 8000
        print("MNIST: only the 10,000 real test images are available here; "
              "training on the first 8,000 and testing on the last 2,000")
    return X[:split], y[:split], X[split:], y[split:]


def softmax_loss(logits: ndl.Tensor, y: np.ndarray) -> ndl.Tensor:
    """Mean over the batch of logsumexp(z) - z[y]."""
    return (ndl.logsumexp(logits, axes=1) - logits[np.arange(len(y)), y]).sum() / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    np.random.seed(0)
    X_train, y_train, X_test, y_test = load(args.data)
    W = ndl.Tensor(np.zeros((X_train.shape[1], 10), np.float32))
    for epoch in range(args.epochs):
        order = np.random.permutation(len(y_train))
        losses = []
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            loss = softmax_loss(ndl.Tensor(X_train[batch], requires_grad=False) @ W,
                                y_train[batch])
            loss.backward()
            W.data = W.data - args.lr * W.grad
            losses.append(loss.item())
        print(f"epoch {epoch + 1:2d}  train loss {np.mean(losses):.4f}")
    logits = ndl.Tensor(X_test, requires_grad=False) @ W
    accuracy = (logits.numpy().argmax(axis=1) == y_test).mean()
    print(f"test accuracy {accuracy:.4f} on {len(y_test)} held-out {args.data} images")


if __name__ == "__main__":
    main()
