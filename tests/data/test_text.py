"""Dictionary, Corpus, batchify and get_batch: on small files written here and on the real
Penn Treebank splits in $NEEDLE_DATA/ptb."""

import os

import numpy as np
import pytest

import needle as ndl
from needle.data import Corpus, Dictionary, batchify, get_batch

PTB = os.path.join(os.environ.get("NEEDLE_DATA", os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data")), "ptb")


def _write_corpus(folder, train_lines, test_lines, names=("train.txt", "test.txt")):
    for name, lines in zip(names, (train_lines, test_lines)):
        with open(os.path.join(folder, name), "w") as f:
            f.write("\n".join(lines) + "\n")


def test_dictionary_numbers_words_in_order_of_arrival():
    d = Dictionary()
    assert [d.add_word(w) for w in ["the", "cat", "the", "sat"]] == [0, 1, 0, 2]
    assert d.idx2word == ["the", "cat", "sat"] and d.word2idx["sat"] == 2 and len(d) == 3
    assert Dictionary.from_dict(d.to_dict()).word2idx == d.word2idx


def test_corpus_tokenises_lines_with_eos_and_shares_the_dictionary(tmp_path):
    _write_corpus(tmp_path, [" a b a ", "c"], ["b  d"])
    corpus = Corpus(str(tmp_path))
    words = corpus.dictionary.idx2word
    assert [words[i] for i in corpus.train] == ["a", "b", "a", "<eos>", "c", "<eos>"]
    assert [words[i] for i in corpus.test] == ["b", "d", "<eos>"]
    assert len(corpus.dictionary) == 5


def test_corpus_max_lines_and_named_files(tmp_path):
    _write_corpus(tmp_path, ["a b", "c d", "e"], ["f", "g"], names=("tr.txt", "te.txt"))
    corpus = Corpus(str(tmp_path), max_lines=1, train_file="tr.txt", test_file="te.txt")
    assert len(corpus.train) == 3 and len(corpus.test) == 2


def test_missing_corpus_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.txt"):
        Corpus(str(tmp_path))


def test_batchify_cuts_the_stream_into_columns():
    batches = batchify(list(range(11)), 3)
    assert batches.shape == (3, 3) and batches.dtype == np.int64
    np.testing.assert_array_equal(batches[:, 0], [0, 1, 2])  # column j: a contiguous stretch
    np.testing.assert_array_equal(batches[:, 2], [6, 7, 8])  # tokens 9 and 10 are dropped
    assert batchify(list(range(4)), 2, dtype="float32").dtype == np.float32
    with pytest.raises(ValueError, match="cannot batchify 2 tokens into 3 columns"):
        batchify([1, 2], 3)


def test_get_batch_returns_windows_and_next_tokens():
    batches = batchify(list(range(20)), 2)  # (10, 2)
    data, target = get_batch(batches, 0, 4)
    assert data.shape == (4, 2) and target.shape == (8,)
    assert not data.requires_grad and not target.requires_grad
    np.testing.assert_array_equal(target.numpy(), batches[1:5].reshape(-1))
    data, target = get_batch(batches, 8, 4)  # only one row of targets is left
    assert data.shape == (1, 2)
    np.testing.assert_array_equal(target.numpy(), [9, 19])
    with pytest.raises(IndexError, match="no batch starts at row 9"):
        get_batch(batches, 9, 4)


@pytest.mark.skipif(not os.path.isdir(PTB), reason="Penn Treebank not in $NEEDLE_DATA")
def test_penn_treebank_splits():
    corpus = Corpus(PTB, train_file="ptb.valid.txt", test_file="ptb.test.txt")
    for ids, name in ((corpus.train, "ptb.valid.txt"), (corpus.test, "ptb.test.txt")):
        with open(os.path.join(PTB, name)) as f:
            lines = f.readlines()
        assert len(ids) == sum(len(line.split()) + 1 for line in lines)
        first = lines[0].split() + ["<eos>"]
        assert [corpus.dictionary.idx2word[i] for i in ids[:len(first)]] == first
    assert "<unk>" in corpus.dictionary.word2idx and "<eos>" in corpus.dictionary.word2idx
    assert len(corpus.dictionary) < 10000  # Mikolov's preprocessing keeps 10,000 words
    data, target = get_batch(batchify(corpus.train, 20, dtype="float32"), 0, 35,
                             dtype="float32")
    assert data.shape == (35, 20) and target.shape == (700,) and data.dtype == np.float32
    assert isinstance(data, ndl.Tensor)
