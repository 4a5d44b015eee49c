"""Text from a trained language model: sampling with temperature and top-k.

A model saved by ``python -m needle train --model lstm_lm ...`` is a weights file plus
``language_model.json`` beside it (the LanguageModel's arguments and the vocabulary);
``load_language_model`` reads both back and ``generate`` continues a prompt word by word.
Random draws come from numpy's global RNG, so ``np.random.seed`` makes them repeatable.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .autograd import Tensor, no_grad
from .data.text import EOS, Dictionary
from .models import LanguageModel
from .serialization import atomic_write, load

CONFIG_NAME = "language_model.json"


def write_config(folder: str, config: dict[str, Any], dictionary: Dictionary) -> str:
    """Write ``language_model.json`` (model arguments and vocabulary) atomically."""
    path = os.path.join(folder, CONFIG_NAME)
    atomic_write(path, json.dumps({"model": config, **dictionary.to_dict()}).encode())
    return path


def load_language_model(checkpoint: str) -> tuple[LanguageModel, Dictionary]:
    """The model saved in ``checkpoint`` (``model.safetensors`` or a training checkpoint)
    and its vocabulary, from ``language_model.json`` in the same folder."""
    config_path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), CONFIG_NAME)
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"no checkpoint file at {checkpoint}")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path} is missing: a language model is saved with "
                                "its arguments and vocabulary beside its weights")
    with open(config_path) as f:
        config = json.load(f)
    model = LanguageModel(**config["model"])
    state = load(checkpoint)
    model.load_state_dict(state["model"] if "model" in state and
                          isinstance(state["model"], dict) else state)
    return model, Dictionary.from_dict(config)


def sample_token(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None) -> int:
    """One id drawn from softmax(logits / temperature) over the ``top_k`` largest logits
    (all when None); temperature 0 takes the argmax."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    if top_k is not None and 0 < top_k < len(scaled):
        scaled[scaled < np.partition(scaled, -top_k)[-top_k]] = -np.inf
    probs = np.exp(scaled - scaled.max())
    return int(np.random.choice(len(probs), p=probs / probs.sum()))


def prompt_ids(prompt: str, dictionary: Dictionary) -> list[int]:
    """The ids of the prompt's words; an unknown word becomes ``<unk>`` if the vocabulary
    has it, else a clear error."""
    words = prompt.split()
    if not words:
        raise ValueError("the prompt is empty: give at least one word")
    unknown = [w for w in words if w not in dictionary.word2idx]
    if unknown and "<unk>" not in dictionary.word2idx:
        raise KeyError(f"words not in the vocabulary: {unknown}")
    return [dictionary.word2idx.get(w, dictionary.word2idx.get("<unk>", 0)) for w in words]


def generate(model: LanguageModel, dictionary: Dictionary, prompt: str, length: int = 30,
             temperature: float = 1.0, top_k: int | None = None) -> list[str]:
    """``length`` words continuing ``prompt``. A recurrent model reads the prompt once and
    then one word per step, carrying its state; a Transformer rereads the last
    ``seq_len`` words at every step."""
    ids = prompt_ids(prompt, dictionary)
    model.eval()
    window = getattr(model.seq_model, "sequence_len", None)
    out: list[int] = []
    with no_grad():
        context, h = ids, None
        for _ in range(length):
            if window is not None:
                context, h = (ids + out)[-window:], None
            x = Tensor(np.array(context, dtype=np.float32)[:, None], requires_grad=False)
            logits, h = model(x, h)
            out.append(sample_token(logits.numpy()[-1], temperature, top_k))
            context = [out[-1]]
    return [dictionary.idx2word[i] for i in out]


def format_text(words: list[str]) -> str:
    """Words joined by spaces, with a line break for each ``<eos>``."""
    return " ".join(words).replace(f" {EOS} ", "\n").replace(EOS, "\n")
