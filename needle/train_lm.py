"""Language-model training: truncated back-propagation through time, gradient-norm
clipping and perplexity.

A corpus is one long token stream, cut by ``batchify`` into ``batch_size`` parallel columns
and read in windows of ``bptt`` rows (``get_batch``). A recurrent model's hidden state is
carried from one window to the next but detached at every window, so gradients stop at the
window boundary: each ``backward()`` walks one window's graph and memory stays flat however
long the text. Perplexity is exp(mean cross-entropy per token).

``lm_epoch`` plugs into ``needle.train.fit`` as its ``epoch_fn`` (history, checkpoints and
resume come from there); ``epoch_general_ptb``, ``train_ptb`` and ``evaluate_ptb`` keep the
needle course's names and return (accuracy, mean loss). What ``python -m needle train
--model lstm_lm ... --dataset ptb`` and ``python -m needle generate`` plug into the command
line lives in ``lm_command.py``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from . import nn, ops, optim
from .autograd import Tensor, no_grad
from .backend_ndarray import Device
from .data.text import get_batch
from .train import _progress, fit

LossFn = Callable[[Tensor, Tensor], Tensor]


def lm_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy per token of logits (tokens, vocab) and next-token ids (tokens,)."""
    return ops.softmax_cross_entropy(logits, target).sum() * (1.0 / logits.shape[0])


def detach_state(h: Any) -> Any:
    """The hidden state cut off from the graph of the window that produced it (None, a
    Tensor or a tuple of Tensors); the next window's backward stops there."""
    if h is None:
        return None
    if isinstance(h, (tuple, list)):
        return tuple(detach_state(x) for x in h)
    return h.detach()


def lm_epoch(batches: np.ndarray, model: nn.Module, loss_fn: LossFn | None = None,
             opt: optim.Optimizer | None = None, *, bptt: int = 35, clip: float | None = None,
             progress: bool = False, device: Device | None = None,
             dtype: Any = None) -> dict[str, float]:
    """One pass over ``batches`` (nbatch, batch_size) in windows of ``bptt`` tokens:
    training (a clipped optimiser step per window) when ``opt`` is given, else evaluation.

    Returns the mean loss per token, its perplexity exp(loss) and the next-token accuracy."""
    loss_fn = loss_fn or lm_loss
    model.train(opt is not None)
    params = model.parameters()
    h, total, correct, count = None, 0.0, 0, 0
    starts = range(0, len(batches) - 1, bptt)
    for i in _progress(starts, progress, "train" if opt else "eval"):
        x, y = get_batch(batches, i, bptt, device, dtype)
        if opt is None:
            with no_grad():
                logits, h = model(x, h)
                loss = loss_fn(logits, y)
        else:
            logits, h = model(x, detach_state(h))
            loss = loss_fn(logits, y)
            opt.reset_grad()
            loss.backward()
            if clip:
                optim.clip_grad_norm(params, clip)
            opt.step()
        tokens = y.shape[0]
        total += float(loss.numpy()) * tokens
        correct += int((logits.numpy().argmax(axis=1) == y.numpy()).sum())
        count += tokens
    if not count:
        raise ValueError(f"lm_epoch: {len(batches)} rows of tokens give no window of bptt "
                         f"{bptt} (a window needs 2 rows)")
    mean = total / count
    return {"loss": mean, "ppl": math.exp(min(mean, 700.0)), "acc": correct / count}


def fit_lm(model: nn.Module, train_batches: np.ndarray, opt: optim.Optimizer, epochs: int, *,
           test_batches: np.ndarray | None = None, bptt: int = 35, clip: float | None = None,
           **fit_kwargs: Any) -> list[dict[str, float]]:
    """``needle.train.fit`` with ``lm_epoch``: one history entry per epoch with
    ``train_loss, train_ppl, train_acc, [test_loss, test_ppl, test_acc,] lr, seconds``."""
    epoch_fn = functools.partial(lm_epoch, bptt=bptt, clip=clip)
    return fit(model, train_batches, opt, epochs, test_loader=test_batches,
               epoch_fn=epoch_fn, **fit_kwargs)


def perplexity(model: nn.Module, batches: np.ndarray, bptt: int = 35) -> float:
    """exp(mean cross-entropy per token) of ``model`` on ``batches``, in eval mode."""
    return lm_epoch(batches, model, bptt=bptt)["ppl"]


# ------------------------------------------------------------------ the course's names
def epoch_general_ptb(data: np.ndarray, model: nn.Module, seq_len: int = 40,
                      loss_fn: LossFn | None = None, opt: optim.Optimizer | None = None,
                      clip: float | None = None, device: Device | None = None,
                      dtype: Any = "float32") -> tuple[float, float]:
    """One epoch (training when ``opt`` is given); returns (accuracy, mean loss)."""
    metrics = lm_epoch(data, model, loss_fn, opt, bptt=seq_len, clip=clip, device=device)
    return metrics["acc"], metrics["loss"]


def train_ptb(model: nn.Module, data: np.ndarray, seq_len: int = 40, n_epochs: int = 1,
              optimizer: Callable[..., optim.Optimizer] = optim.SGD, lr: float = 4.0,
              weight_decay: float = 0.0, loss_fn: LossFn | None = None,
              clip: float | None = None, device: Device | None = None,
              dtype: Any = "float32") -> tuple[float, float]:
    """``n_epochs`` of training; returns the last epoch's (accuracy, mean loss)."""
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    result = (0.0, float("nan"))
    for _ in range(n_epochs):
        result = epoch_general_ptb(data, model, seq_len, loss_fn, opt, clip, device, dtype)
    return result


def evaluate_ptb(model: nn.Module, data: np.ndarray, seq_len: int = 40,
                 loss_fn: LossFn | None = None, device: Device | None = None,
                 dtype: Any = "float32") -> tuple[float, float]:
    """(accuracy, mean loss) of ``model`` on ``data`` in eval mode."""
    return epoch_general_ptb(data, model, seq_len, loss_fn, None, None, device, dtype)
