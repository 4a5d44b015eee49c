"""Sampling (temperature, top-k), generation with recurrent and Transformer models, and the
command line: train a language model on a few lines of PTB, then generate from it."""

import json
import os

import numpy as np
import pytest

import needle as ndl
from needle.__main__ import main
from needle.data import Dictionary
from needle.generate import format_text, generate, load_language_model, sample_token
from needle.models import LanguageModel

PTB = os.path.join(os.environ.get("NEEDLE_DATA", os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data")), "ptb")


def test_temperature_zero_is_greedy_and_top_k_limits_the_choice():
    logits = np.array([0.0, 3.0, 1.0, 2.9])
    assert sample_token(logits, temperature=0) == 1
    np.random.seed(0)
    draws = [sample_token(logits, 1.0, top_k=2) for _ in range(300)]
    assert set(draws) == {1, 3}
    hot = [sample_token(logits, 100.0) for _ in range(400)]
    assert set(hot) == {0, 1, 2, 3}  # a high temperature flattens the distribution
    cold = [sample_token(logits - np.array([0, 0, 0, 1.0]), 0.05) for _ in range(100)]
    assert set(cold) == {1}
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sample_token(logits, -1.0)


def test_sampling_follows_the_softmax():
    np.random.seed(1)
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    counts = np.bincount([sample_token(logits) for _ in range(4000)], minlength=3)
    np.testing.assert_allclose(counts / 4000, [0.2, 0.5, 0.3], atol=0.03)


def _dictionary(words):
    d = Dictionary()
    for w in words:
        d.add_word(w)
    return d


def _argmax_continuation(model, d, words, length, seq_model):
    """Greedy decoding's oracle: at each step the whole context (the last seq_len words for
    the Transformer) is run from scratch, no carried state, and its last logits' argmax
    taken."""
    ids = [d.word2idx[w] for w in words]
    model.eval()
    with ndl.no_grad():
        for _ in range(length):
            context = ids[-4:] if seq_model == "transformer" else ids
            x = ndl.Tensor(np.array(context, np.float32)[:, None], requires_grad=False)
            ids.append(int(model(x)[0].numpy()[-1].argmax()))
    return [d.idx2word[i] for i in ids[len(words):]]


@pytest.mark.parametrize("seq_model", ["lstm", "transformer"])
def test_generate_continues_a_prompt(seq_model):
    d = _dictionary(["<eos>", "<unk>", "the", "cat", "sat"])
    model = LanguageModel(8, len(d), 8, seq_model=seq_model, seq_len=4, num_head=2,
                          dim_head=4)
    np.random.seed(0)
    words = generate(model, d, "the cat", length=7, temperature=1.0, top_k=3)
    assert len(words) == 7 and set(words) <= set(d.idx2word)
    greedy = generate(model, d, "the dog", length=5, temperature=0)  # dog -> <unk>
    assert greedy == _argmax_continuation(model, d, ["the", "<unk>"], 5, seq_model)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(model, d, "  ")
    assert format_text(["a", "<eos>", "b"]) == "a\nb"


@pytest.mark.skipif(not os.path.isdir(PTB), reason="Penn Treebank not in $NEEDLE_DATA")
def test_train_then_generate_from_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "lm")
    main(["train", "--model", "lstm_lm", "--max-lines", "60", "--epochs", "2",
          "--embedding-size", "16", "--hidden-dim", "16", "--batch-size", "4", "--out", out])
    printed = capsys.readouterr().out
    assert "only Penn Treebank's validation and test splits" in printed
    assert printed.count("train_ppl") == 2 and "test perplexity" in printed
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    assert [e["epoch"] for e in history] == [1, 2]
    assert all(e["test_ppl"] == pytest.approx(np.exp(e["test_loss"])) for e in history)
    assert os.path.isfile(os.path.join(out, "curves.png"))

    main(["generate", "--checkpoint", os.path.join(out, "model.safetensors"),
          "--prompt", "the", "--length", "12", "--seed", "3"])
    text = capsys.readouterr().out
    assert text.startswith("the") and len(text.split()) >= 2
    model, dictionary = load_language_model(os.path.join(out, "checkpoint.safetensors"))
    assert model.embedding.weight.shape == (len(dictionary), 16)


def test_loading_without_the_config_is_a_clear_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="language_model.json is missing"):
        load_language_model(str(path))
