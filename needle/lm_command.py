"""The language models' part of the command line: ``python -m needle train --model
lstm_lm|gru_lm|rnn_lm|transformer_lm --dataset ptb`` and ``python -m needle generate``.

``__main__.py`` plugs these in: the models' defaults and flags, the Penn Treebank loader,
the training loop (``train_lm.fit_lm``) and the ``generate`` command.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

import numpy as np

from . import nn, optim
from .data.text import Corpus, batchify
from .generate import format_text, generate, load_language_model, write_config
from .models import LanguageModel
from .data.bptt import BPTTBatches
from .learner import Learner
from .train_lm import lm_callbacks, lm_loss

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
    group.add_argument("--embedding-size", type=int, default=200, help="word vector size")
    group.add_argument("--num-layers", type=int, default=1, help="stacked recurrent layers")
    group.add_argument("--num-heads", type=int, default=4, help="Transformer only")
    group.add_argument("--dim-head", type=int, default=32, help="Transformer only")
    group.add_argument("--bptt", type=int, default=35, help="tokens per BPTT window")
    group.add_argument("--clip", type=float, default=0.25,
                       help="gradient-norm clipping (0: none)")
    group.add_argument("--max-lines", type=int, default=None,
                       help="read only the first lines of each text file (quick runs; "
                            "None: all)")


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
        raise ValueError(f"--model {args.model} trains on --dataset ptb, not {args.dataset}")
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
    parser.add_argument("--prompt", default="the", help="the words to continue")
    parser.add_argument("--length", type=int, default=30, help="words to generate")
    parser.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    parser.add_argument("--top-k", type=int, default=40, help="0: the whole vocabulary")
    parser.add_argument("--seed", type=int, default=0, help="numpy's global seed")


def run_generate(args: argparse.Namespace) -> None:
    """``python -m needle generate``: print the prompt and its sampled continuation."""
    model, dictionary = load_language_model(args.checkpoint)
    np.random.seed(args.seed)
    words = generate(model, dictionary, args.prompt, args.length, args.temperature,
                     args.top_k or None)
    print(format_text(args.prompt.split() + words))
