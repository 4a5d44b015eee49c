"""Language-model training: truncated back-propagation through time, gradient-norm
clipping and perplexity.

A corpus is one long token stream, cut by ``batchify`` into ``batch_size`` parallel columns
and read in windows of ``bptt`` rows (``get_batch``). A recurrent model's hidden state is
carried from one window to the next but detached at every window, so gradients stop at the
window boundary: each ``backward()`` walks one window's graph and memory stays flat however
long the text. Perplexity is exp(mean cross-entropy per token).

Training runs on the one ``needle.learner.Learner`` loop: ``BPTTBatches`` is the loader and
``lm_callbacks`` carry the hidden state, clip and record perplexity (``fit_lm``; history,
checkpoints and resume are the usual callbacks); ``lm_epoch`` is one pass;
``epoch_general_ptb``, ``train_ptb`` and ``evaluate_ptb`` keep the needle course's names and
return (accuracy, mean loss). What ``python -m needle train --model lstm_lm ... --dataset ptb``
and ``python -m needle generate`` plug into the command line lives in ``lm_command.py``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from . import nn, ops, optim
from .autograd import Tensor, no_grad
from .backend_ndarray import Device
from .callbacks import (GradientClipping, ProgressBar, Recorder, RecurrentState,
                        detach_state)
from .callbacks import perplexity as perplexity_of
from .data.bptt import BPTTBatches
from .learner import Learner
from .train import fit_callbacks

LossFn = Callable[[Tensor, Tensor], Tensor]


def lm_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Mean cross-entropy per token of logits (tokens, vocab) and next-token ids (tokens,)."""
    return ops.softmax_cross_entropy(logits, target).sum() * (1.0 / logits.shape[0])


def lm_callbacks(clip: float | None = None) -> list[Any]:
    """What a Learner needs to train a language model: the hidden state carried (detached)
    from window to window, gradient-norm clipping, and a Recorder of loss, perplexity and
    next-token accuracy (each pass's mean weighted by tokens)."""
    callbacks: list[Any] = [RecurrentState(), Recorder(summaries={"ppl": perplexity_of})]
    if clip:
        callbacks.append(GradientClipping(clip))
    return callbacks


def lm_epoch(batches: np.ndarray, model: nn.Module, loss_fn: LossFn | None = None,
             opt: optim.Optimizer | None = None, *, bptt: int = 35, clip: float | None = None,
             progress: bool = False, device: Device | None = None,
             dtype: Any = None) -> dict[str, float]:
    """One pass over ``batches`` (nbatch, batch_size) in windows of ``bptt`` tokens:
    training (a clipped optimiser step per window) when ``opt`` is given, else evaluation.

    Returns the mean loss per token, its perplexity exp(loss) and the next-token accuracy."""
    try:
        windows = BPTTBatches(batches, bptt, device, dtype)
    except ValueError as error:
        raise ValueError(f"lm_epoch: {error}") from None
    callbacks = lm_callbacks(clip) + ([ProgressBar()] if progress else [])
    learner = Learner(model, windows, loss_fn or lm_loss, opt, test_loader=windows,
                      callbacks=callbacks)
    learner.run_pass(training=opt is not None)
    learner.callback("after_fit")  # closes a progress bar
    return learner.find(Recorder).means("train" if opt is not None else "test")


def fit_lm(model: nn.Module, train_batches: np.ndarray, opt: optim.Optimizer, epochs: int, *,
           test_batches: np.ndarray | None = None, bptt: int = 35, clip: float | None = None,
           callbacks: Sequence[Any] = (), loss_fn: LossFn | None = None,
           **fit_kwargs: Any) -> list[dict[str, float]]:
    """A Learner over BPTT windows (``lm_callbacks``): one history entry per epoch with
    ``train_loss, train_ppl, train_acc, [test_loss, test_ppl, test_acc,] lr, seconds``.
    ``fit_kwargs`` are ``needle.train.fit``'s (scheduler, checkpoint, resume, progress,
    on_epoch); ``callbacks`` are added to those."""
    test = BPTTBatches(test_batches, bptt) if test_batches is not None else None
    learner = Learner(model, BPTTBatches(train_batches, bptt), loss_fn or lm_loss, opt,
                      test_loader=test, callbacks=lm_callbacks(clip) + list(callbacks)
                      + fit_callbacks(**fit_kwargs))
    learner.fit(epochs)
    return learner.find(Recorder).history


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
