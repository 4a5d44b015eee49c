"""Language-model training: truncated back-propagation through time, gradient-norm
clipping and perplexity.

A corpus is one long token stream, cut by ``batchify`` into ``batch_size`` parallel columns
and read in windows of ``bptt`` rows (``get_batch``). A recurrent model's hidden state is
carried from one window to the next but detached at every window, so gradients stop at the
window boundary: each ``backward()`` walks one window's graph and memory stays flat however
long the text. Perplexity is exp(mean cross-entropy per token).

Training runs on the one ``needle.learner.Learner`` loop: ``BPTTBatches`` is the loader and
``lm_callbacks`` carry the hidden state, clip and record perplexity (``fit_lm``; history,
checkpoints and resume are the usual callbacks); ``lm_epoch`` is one pass; ``epoch_general_ptb``, ``train_ptb`` and ``evaluate_ptb`` keep the
needle course's names and return (accuracy, mean loss). The last section holds what
``python -m needle train --model lstm_lm|transformer_lm --dataset ptb`` plugs in.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, Callable, Sequence

import numpy as np

from . import nn, ops, optim
from .autograd import Tensor, no_grad
from .backend_ndarray import Device
from .data.text import Corpus, batchify
from .generate import format_text, generate, load_language_model
from .models import LanguageModel
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


# ------------------------------------------------------------------ the command line
# Each model's defaults (flags given on the command line still win); they reach the
# quality targets of tests/test_train_lm.py on Penn Treebank. Weight decay matters for
# Adam: 4% of the test tokens are words the training split never shows, and without it
# Adam pushes their logits down by about lr at every step.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "lstm_lm": dict(dataset="ptb", epochs=3, batch_size=20, optimizer="sgd", lr=20.0,
                    momentum=0.0, weight_decay=0.0, scheduler="none", embedding_size=200,
                    hidden_dim=200, num_layers=1, drop_prob=0.2, bptt=35, clip=0.25),
}
MODEL_DEFAULTS["rnn_lm"] = dict(MODEL_DEFAULTS["lstm_lm"], lr=5.0)
MODEL_DEFAULTS["gru_lm"] = dict(MODEL_DEFAULTS["lstm_lm"], lr=10.0)
MODEL_DEFAULTS["transformer_lm"] = dict(
    dataset="ptb", epochs=5, batch_size=10, optimizer="adam", lr=5e-3, weight_decay=3e-4,
    scheduler="none", embedding_size=128, hidden_dim=256, num_layers=2, num_heads=4,
    dim_head=32, drop_prob=0.3, bptt=35, clip=0.0)
SEQ_MODELS = {"rnn_lm": "rnn", "lstm_lm": "lstm", "gru_lm": "gru",
              "transformer_lm": "transformer"}
PTB_FILES = ("ptb.valid.txt", "ptb.test.txt")


def add_lm_options(parser: argparse.ArgumentParser) -> None:
    """The language models' own flags of ``python -m needle train``."""
    group = parser.add_argument_group("language models (lstm_lm, transformer_lm, ...)")
    group.add_argument("--embedding-size", type=int, default=200)
    group.add_argument("--num-layers", type=int, default=1)
    group.add_argument("--num-heads", type=int, default=4, help="Transformer only")
    group.add_argument("--dim-head", type=int, default=32, help="Transformer only")
    group.add_argument("--bptt", type=int, default=35, help="tokens per BPTT window")
    group.add_argument("--clip", type=float, default=0.25,
                       help="gradient-norm clipping (0: none)")
    group.add_argument("--max-lines", type=int, default=None,
                       help="read only the first lines of each text file (quick runs)")


def load_ptb(folder: str, args: argparse.Namespace) -> dict[str, Any]:
    """Penn Treebank as the command line's Data fields: only the validation and test
    splits are available here, so it trains on ptb.valid.txt and tests on ptb.test.txt."""
    corpus = Corpus(os.path.join(folder, "ptb"), max_lines=args.max_lines,
                    train_file=PTB_FILES[0], test_file=PTB_FILES[1])
    note = (f"ptb: only Penn Treebank's validation and test splits are available here; "
            f"training on {PTB_FILES[0]} ({len(corpus.train):,} tokens), testing on "
            f"{PTB_FILES[1]} ({len(corpus.test):,} tokens), vocabulary "
            f"{len(corpus.dictionary):,} words")
    return dict(train=corpus.train, test=corpus.test, input_shape=(),
                num_classes=len(corpus.dictionary), kind="language_model", note=note,
                extra={"dictionary": corpus.dictionary})


def lm_config(args: argparse.Namespace, vocab_size: int) -> dict[str, Any]:
    """The LanguageModel arguments the flags ask for (saved beside the weights)."""
    return dict(embedding_size=args.embedding_size, output_size=vocab_size,
                hidden_size=args.hidden_dim, num_layers=args.num_layers,
                seq_model=SEQ_MODELS[args.model], seq_len=args.bptt, num_head=args.num_heads,
                dim_head=args.dim_head, dropout=args.drop_prob)


def build_language_model(vocab_size: int, args: argparse.Namespace) -> LanguageModel:
    if getattr(args, "dataset", "ptb") != "ptb":
        raise SystemExit(f"--model {args.model} trains on --dataset ptb, not {args.dataset}")
    return LanguageModel(**lm_config(args, vocab_size))


def language_model_learner(model: nn.Module, data: Any, args: argparse.Namespace,
                           opt: optim.Optimizer) -> Learner:
    """A Learner over the corpus of ``data`` in ``--bptt`` windows of ``--batch-size``
    columns (tests in 10 columns), with ``lm_callbacks`` (``--clip``)."""
    return Learner(model, BPTTBatches(batchify(data.train, args.batch_size), args.bptt),
                   lm_loss, opt, test_loader=BPTTBatches(batchify(data.test, 10), args.bptt),
                   callbacks=lm_callbacks(args.clip))


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="model.safetensors (or checkpoint.safetensors) of a language "
                             "model trained by `python -m needle train`")
    parser.add_argument("--prompt", default="the")
    parser.add_argument("--length", type=int, default=30, help="words to generate")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, default=40, help="0: the whole vocabulary")
    parser.add_argument("--seed", type=int, default=0)


def run_generate(args: argparse.Namespace) -> None:
    """``python -m needle generate``: print the prompt and its sampled continuation."""
    model, dictionary = load_language_model(args.checkpoint)
    np.random.seed(args.seed)
    words = generate(model, dictionary, args.prompt, args.length, args.temperature,
                     args.top_k or None)
    print(format_text(args.prompt.split() + words))
