"""Language-model training: truncated BPTT learns, keeps memory flat over 500 batches,
needs the carried state detached, clips gradients; the course's function names."""

import json
import math
import os
import resource

import numpy as np
import pytest

import needle as ndl
from needle import autograd
from needle.__main__ import main
from needle.data import Corpus, batchify, get_batch
from needle.models import LanguageModel
from needle.train_lm import (detach_state, epoch_general_ptb, evaluate_ptb, lm_epoch, lm_loss,
                             train_ptb)


PTB = os.path.join(os.environ.get("NEEDLE_DATA", os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data")), "ptb")


def _pattern(length, period=5):
    return [i % period for i in range(length)]


@pytest.mark.parametrize("seq_model", ["lstm", "transformer"])
def test_lm_epoch_learns_a_repeating_text(seq_model):
    np.random.seed(0)
    batches = batchify(_pattern(2000), 8)
    model = LanguageModel(16, 5, 32, seq_model=seq_model, seq_len=10, num_head=2, dim_head=8)
    opt = ndl.optim.Adam(model.parameters(), lr=0.01)
    untrained = lm_epoch(batches, model, bptt=10)
    for _ in range(3):
        lm_epoch(batches, model, opt=opt, bptt=10, clip=1.0)
    test = lm_epoch(batches, model, bptt=10)
    assert untrained["ppl"] > 3 and test["ppl"] < 1.5
    # the first token of each window has no context for the Transformer: 1 in 10 is a guess
    assert test["acc"] > (0.85 if seq_model == "transformer" else 0.99)
    assert math.isclose(test["ppl"], math.exp(test["loss"]))


def _resident_bytes():
    """The resident set size now (Linux), else the peak so far (which cannot shrink)."""
    if os.path.exists("/proc/self/statm"):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.slow  # 500 LSTM batches
def test_memory_stays_flat_over_500_batches():
    """The carried state is detached at every window: the graph of each step has the same
    size, and the process holds no more memory after batch 500 than after batch 100."""
    np.random.seed(0)
    tokens = np.random.default_rng(0).integers(0, 50, 4 * 5 * 500 + 4)
    batches = batchify(tokens, 4)  # 501 rows: 500 windows of 5
    model = LanguageModel(8, 50, 8, num_layers=2, seq_model="lstm")
    opt = ndl.optim.SGD(model.parameters(), lr=0.1)
    graph_sizes, memory = [], []

    def counting_loss(logits, target):
        loss = lm_loss(logits, target)
        graph_sizes.append(len(autograd.find_topo_sort([loss])))
        return loss

    step = opt.step

    def measured_step():
        step()
        memory.append(_resident_bytes())

    opt.step = measured_step
    lm_epoch(batches, model, counting_loss, opt, bptt=5, clip=0.25)
    assert len(graph_sizes) == 500
    assert len(set(graph_sizes)) == 1, f"graph grew: {graph_sizes[0]} -> {graph_sizes[-1]}"
    growth = memory[-1] - memory[99]
    assert growth < 2 ** 21, f"memory grew by {growth / 2 ** 20:.1f} MiB from batch 100 to 500"


def test_a_carried_state_that_is_not_detached_is_a_clear_error():
    model = LanguageModel(8, 20, 8, seq_model="lstm")
    batches = batchify(_pattern(200, 20), 4)
    h = None
    for i in (0, 5):
        x, y = get_batch(batches, i, 5)
        logits, h = model(x, h)  # h still belongs to the previous window's graph
        if i == 0:
            lm_loss(logits, y).backward()
        else:
            with pytest.raises(RuntimeError, match="detach"):
                lm_loss(logits, y).backward()


def test_detach_state_cuts_tensors_and_tuples():
    x = ndl.Tensor(np.ones(3, np.float32))
    h = (x * 2, x * 3)
    cut = detach_state(h)
    assert isinstance(cut, tuple) and not any(t.requires_grad for t in cut)
    np.testing.assert_array_equal(cut[1].numpy(), [3, 3, 3])
    assert detach_state(None) is None and not detach_state(x * 2).requires_grad


def test_gradients_are_clipped_before_each_step():
    np.random.seed(0)
    model = LanguageModel(8, 20, 8, seq_model="rnn")
    opt = ndl.optim.SGD(model.parameters(), lr=1.0)
    norms = []
    step = opt.step

    def recording_step():
        norms.append(math.sqrt(sum(float((p.grad.numpy() ** 2).sum())
                                   for p in model.parameters())))
        step()

    opt.step = recording_step
    lm_epoch(batchify(_pattern(400, 20), 4), model, opt=opt, bptt=10, clip=0.05)
    assert norms and max(norms) <= 0.05 * (1 + 1e-4)


def test_evaluation_changes_nothing_and_builds_no_graph():
    model = LanguageModel(8, 20, 8, seq_model="lstm")
    before = [p.numpy().copy() for p in model.parameters()]
    metrics = lm_epoch(batchify(_pattern(200, 20), 4), model, bptt=5)
    assert not model.training and set(metrics) == {"loss", "ppl", "acc"}
    for p, value in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), value)
        assert p.grad is None


def test_the_course_functions_return_accuracy_and_loss():
    np.random.seed(0)
    data = batchify(_pattern(300, 10), 4, dtype="float32")
    model = LanguageModel(8, 10, 8, seq_model="rnn")
    untrained = _numpy_metrics(model, data, 10)
    acc, loss = train_ptb(model, data, seq_len=10, n_epochs=3, lr=0.5, clip=1.0)
    acc_eval, loss_eval = evaluate_ptb(model, data, seq_len=10)
    want_acc, want_loss = _numpy_metrics(model, data, 10)
    assert acc_eval == pytest.approx(want_acc) and loss_eval == pytest.approx(want_loss, 1e-5)
    assert loss_eval < untrained[1] - 0.5 and acc_eval > untrained[0]  # training helped
    assert acc > 0.3 and loss < untrained[1]  # the training epochs' own metrics
    assert epoch_general_ptb(data, model, seq_len=10) == pytest.approx((want_acc, want_loss),
                                                                       rel=1e-5)


def _numpy_metrics(model, data, bptt):
    """(accuracy, mean cross-entropy per token) computed from the model's logits with numpy,
    window by window with the hidden state carried: the oracle for evaluate_ptb."""
    model.eval()
    h, losses, hits = None, [], []
    with ndl.no_grad():
        for i in range(0, len(data) - 1, bptt):
            x, y = get_batch(data, i, bptt)
            logits, h = model(x, h)
            z = logits.numpy().astype(np.float64)
            ids = y.numpy().astype(np.int64)
            lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
            losses.extend(lse - z[np.arange(len(ids)), ids])
            hits.extend(z.argmax(1) == ids)
    return float(np.mean(hits)), float(np.mean(losses))


def test_a_window_needs_two_rows():
    model = LanguageModel(8, 10, 8, seq_model="rnn")
    with pytest.raises(ValueError, match="a window needs 2 rows"):
        lm_epoch(np.zeros((1, 4), np.int64), model)


# ------------------------------------------------------------------ quality on Penn Treebank
def count_baselines(train, test, vocab_size, weight=0.5):
    """Perplexities on ``test`` of an add-one unigram model and of a bigram model
    interpolated with it (bigram weight ``weight``), both counted on ``train``."""
    train, test = np.asarray(train), np.asarray(test)
    unigram = (np.bincount(train, minlength=vocab_size) + 1) / (len(train) + vocab_size)
    pair_counts = {}
    for pair in zip(train[:-1].tolist(), train[1:].tolist()):
        pair_counts[pair] = pair_counts.get(pair, 0) + 1
    context = np.bincount(train[:-1], minlength=vocab_size)[test[:-1]]
    pairs = np.array([pair_counts.get(p, 0) for p in zip(test[:-1].tolist(),
                                                          test[1:].tolist())])
    bigram = np.divide(pairs, context, out=np.zeros(len(pairs)), where=context > 0)
    mixed = weight * bigram + (1 - weight) * unigram[test[1:]]
    return (math.exp(-np.log(unigram[test]).mean()),
            math.exp(-np.log(np.concatenate([unigram[test[:1]], mixed])).mean()))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(PTB), reason="Penn Treebank not in $NEEDLE_DATA")
@pytest.mark.parametrize("model, target", [("lstm_lm", 0.60), ("transformer_lm", 0.65)])
def test_command_line_defaults_beat_count_baselines_on_ptb(model, target, tmp_path, capsys):
    """Trained on ptb.valid.txt with the CLI's defaults, tested on ptb.test.txt: perplexity
    at most ``target`` times that of an add-one unigram model counted on the same split."""
    corpus = Corpus(PTB, train_file="ptb.valid.txt", test_file="ptb.test.txt")
    unigram, bigram = count_baselines(corpus.train, corpus.test, len(corpus.dictionary))
    main(["train", "--model", model, "--out", str(tmp_path)])
    with open(os.path.join(tmp_path, "history.json")) as f:
        history = json.load(f)
    ppl = history[-1]["test_ppl"]
    with capsys.disabled():
        print(f"\n{model}: test perplexity {ppl:.1f} after {len(history)} epochs "
              f"({history[-1]['seconds']:.0f}s for the last); add-one unigram "
              f"{unigram:.1f}, interpolated bigram {bigram:.1f} ({bigram / unigram:.2f}x); "
              f"{model} {ppl / unigram:.2f}x the unigram (target {target}x)")
    assert ppl <= target * unigram
