"""A PyTorch LSTM language model on Penn Treebank, ported to needle: ``batch_first=True``
batches (batch, seq_len) and gradient accumulation over two micro-batches. It trains on
ptb.valid.txt (the training split is not shipped here) and reports perplexity on
ptb.test.txt.

    NEEDLE_DATA=../shared/data PYTHONPATH=. python examples/from_pytorch/lstm_lm.py

The one change a PyTorch user must make: PyTorch's ``loss.backward()`` adds into ``.grad``;
needle's assigns fresh gradients (the course's contract), so accumulation is spelled
``loss.backward(accumulate=True)`` (docs/compat.md). Each micro-batch loss is halved, so two
micro-batches of B give the gradient of one batch of 2B.

PyTorch twin::

    import math
    import torch
    from torch import nn


    class LanguageModel(nn.Module):
        def __init__(self, vocab, embedding=32, hidden=64, num_layers=2):
            super().__init__()
            self.embedding = nn.Embedding(vocab, embedding)
            self.lstm = nn.LSTM(embedding, hidden, num_layers, batch_first=True)
            self.decoder = nn.Linear(hidden, vocab)

        def forward(self, x):  # x (batch, seq_len) -> logits (batch * seq_len, vocab)
            out, _ = self.lstm(self.embedding(x))
            return self.decoder(out.reshape(-1, out.shape[-1]))


    def accumulated_step(model, loss_fn, x, y, micro_batches=2):
        for xs, ys in zip(x.chunk(micro_batches), y.chunk(micro_batches)):
            loss = loss_fn(model(xs), ys.reshape(-1)) / micro_batches
            loss.backward()  # adds into .grad


    def train(model, batches, lr=1.0, clip=0.25):
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        losses = []
        for x, y in batches:
            x, y = torch.tensor(x), torch.tensor(y)
            opt.zero_grad()
            accumulated_step(model, loss_fn, x, y)
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            with torch.no_grad():
                losses.append(loss_fn(model(x), y.reshape(-1)).item())
        return losses


    def perplexity(model, batches):
        loss_fn = nn.CrossEntropyLoss(reduction="sum")
        total, count = 0.0, 0
        with torch.no_grad():
            for x, y in batches:
                total += loss_fn(model(torch.tensor(x)), torch.tensor(y).reshape(-1)).item()
                count += y.size
        return math.exp(total / count)
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Iterator

import numpy as np

import needle as ndl
from needle import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("NEEDLE_DATA", os.path.join(ROOT, "..", "shared", "data"))
Batch = tuple[np.ndarray, np.ndarray]


def load_ptb(max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(train ids, test ids, vocabulary size): ptb.valid.txt to train, ptb.test.txt to test,
    each line's words then <eos>; test words outside the training vocabulary become <unk>."""
    dictionary = ndl.data.Dictionary()
    unknown = dictionary.add_word("<unk>")

    def words(name: str, limit: int | None) -> list[str]:
        with open(os.path.join(DATA, "ptb", name)) as f:
            return [w for line in f for w in line.split() + ["<eos>"]][:limit]

    train = np.array([dictionary.add_word(w) for w in words("ptb.valid.txt", max_tokens)])
    test = np.array([dictionary.word2idx.get(w, unknown) for w in words("ptb.test.txt", None)])
    return train, test, len(dictionary.idx2word)


def batches(tokens: np.ndarray, batch_size: int, seq_len: int) -> Iterator[Batch]:
    """Batch-first windows: (x, y) each (batch, seq_len), y the next tokens of x."""
    rows = len(tokens) // batch_size
    grid = tokens[:rows * batch_size].reshape(batch_size, rows)
    for start in range(0, rows - 1 - seq_len + 1, seq_len):
        yield grid[:, start:start + seq_len], grid[:, start + 1:start + 1 + seq_len]


class LanguageModel(nn.Module):
    """ids (batch, seq_len) -> logits (batch * seq_len, vocab): Embedding, a batch-first
    LSTM, and a Linear decoder."""

    def __init__(self, vocab: int, embedding: int = 32, hidden: int = 64, num_layers: int = 2,
                 dtype: str = "float32"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding, dtype=dtype)
        self.lstm = nn.LSTM(embedding, hidden, num_layers, batch_first=True, dtype=dtype)
        self.decoder = nn.Linear(hidden, vocab, dtype=dtype)

    def forward(self, x: ndl.Tensor) -> ndl.Tensor:
        out, _ = self.lstm(self.embedding(x))
        return self.decoder(out.reshape((-1, out.shape[-1])))


def accumulated_step(model: LanguageModel, loss_fn: nn.Module, x: np.ndarray, y: np.ndarray,
                     micro_batches: int = 2) -> None:
    """Gradients of the whole batch, summed over ``micro_batches`` halves."""
    for xs, ys in zip(np.array_split(x, micro_batches), np.array_split(y, micro_batches)):
        loss = loss_fn(model(xs), ndl.Tensor(ys.reshape(-1), requires_grad=False)) \
            / micro_batches
        loss.backward(accumulate=True)  # PyTorch's loss.backward() adds; needle's assigns


def train(model: LanguageModel, data: Iterator[Batch], lr: float = 1.0,
          clip: float = 0.25) -> list[float]:
    """Plain SGD with gradient clipping; the loss after each step on the step's batch."""
    opt = ndl.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for x, y in data:
        model.zero_grad()
        accumulated_step(model, loss_fn, x, y)
        opt.clip_grad_norm(clip)
        opt.step()
        with ndl.no_grad():
            losses.append(loss_fn(model(x), ndl.Tensor(y.reshape(-1))).item())
    return losses


def perplexity(model: LanguageModel, data: Iterator[Batch]) -> float:
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total, count = 0.0, 0
    with ndl.no_grad():
        for x, y in data:
            total += loss_fn(model(x), ndl.Tensor(y.reshape(-1))).item()
            count += y.size
    return math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=40000)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    np.random.seed(0)
    train_ids, test_ids, vocab = load_ptb(args.tokens)
    model = LanguageModel(vocab)
    for epoch in range(args.epochs):
        losses = train(model, batches(train_ids, 16, 20))
        print(f"epoch {epoch + 1}: last train loss {losses[-1]:.3f}")
    print(f"test perplexity {perplexity(model, batches(test_ids[:20000], 16, 20)):.1f}")


if __name__ == "__main__":
    main()
