"""Text corpora for language modelling: a word Dictionary, a Corpus of token ids, and the
batching of a token stream into columns (``batchify``) and BPTT windows (``get_batch``)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import Device

EOS = "<eos>"


class Dictionary:
    """Words <-> ids: ``word2idx`` (dict), ``idx2word`` (list); ids count up from 0."""

    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: list[str] = []

    def add_word(self, word: str) -> int:
        """The id of ``word``, added at the end when new."""
        if word not in self.word2idx:
            self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return self.word2idx[word]

    def __len__(self) -> int:
        return len(self.idx2word)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``idx2word``), read back by ``from_dict``."""
        return {"idx2word": list(self.idx2word)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Dictionary:
        dictionary = cls()
        for word in state["idx2word"]:
            dictionary.add_word(word)
        return dictionary


class Corpus:
    """Token ids of a training and a test file in ``base_dir``, with one shared Dictionary.

    Each line is split on whitespace and ends with ``<eos>``; ``max_lines`` reads only the
    first lines of each file. The files are ``train.txt`` and ``test.txt`` unless named
    (here, Penn Treebank's ``ptb.valid.txt`` and ``ptb.test.txt``)."""

    def __init__(self, base_dir: str, max_lines: int | None = None,
                 train_file: str = "train.txt", test_file: str = "test.txt"):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(base_dir, train_file), max_lines)
        self.test = self.tokenize(os.path.join(base_dir, test_file), max_lines)

    def tokenize(self, path: str, max_lines: int | None = None) -> list[int]:
        """The ids of the words of the first ``max_lines`` lines of ``path`` (all if None)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"corpus file {path} does not exist")
        ids: list[int] = []
        with open(path, encoding="utf-8") as f:
            for count, line in enumerate(f):
                if max_lines is not None and count >= max_lines:
                    break
                ids.extend(self.dictionary.add_word(word) for word in line.split() + [EOS])
        return ids


def batchify(data: Sequence[int], batch_size: int, device: Device | None = None,
             dtype: Any = None) -> np.ndarray:
    """The token stream cut into ``batch_size`` equal columns: (nbatch, batch_size), column j
    holding tokens j*nbatch .. (j+1)*nbatch - 1; the remainder is dropped."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    nbatch = len(data) // batch_size
    if nbatch == 0:
        raise ValueError(f"cannot batchify {len(data)} tokens into {batch_size} columns")
    array = np.asarray(data[:nbatch * batch_size], dtype=dtype or np.int64)
    return np.ascontiguousarray(array.reshape((batch_size, nbatch)).T)


def get_batch(batches: np.ndarray, i: int, bptt: int, device: Device | None = None,
              dtype: Any = None) -> tuple[Tensor, Tensor]:
    """The BPTT window starting at row i: data (seq_len, batch) and its next tokens
    target (seq_len * batch,), seq_len = min(bptt, nbatch - 1 - i); neither needs grad."""
    seq_len = min(bptt, len(batches) - 1 - i)
    if i < 0 or seq_len <= 0:
        raise IndexError(f"no batch starts at row {i}: batches have {len(batches)} rows and a "
                         "window needs one more row for its targets")
    data = batches[i:i + seq_len]
    target = batches[i + 1:i + 1 + seq_len].reshape(-1)
    return (Tensor(data, device=device, dtype=dtype, requires_grad=False),
            Tensor(target, device=device, dtype=dtype, requires_grad=False))
