"""LanguageModel: shapes and states of every sequence model, equality with a PyTorch LSTM
language model built from the same weights, causality of the Transformer LM, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import needle as ndl
from needle.models import LanguageModel
from needle.train_lm import lm_loss

VOCAB = 23


def _ids(seq_len, batch, seed=0):
    ids = np.random.default_rng(seed).integers(0, VOCAB, (seq_len, batch))
    return ndl.Tensor(ids.astype(np.float32), requires_grad=False)


@pytest.mark.parametrize("seq_model", ["rnn", "lstm", "gru", "transformer"])
def test_shapes_states_and_gradients(seq_model):
    model = LanguageModel(8, VOCAB, 12, num_layers=2, seq_model=seq_model, seq_len=10,
                          num_head=2, dim_head=4)
    logits, h = model(_ids(7, 3))
    assert logits.shape == (21, VOCAB)
    if seq_model == "lstm":
        assert [t.shape for t in h] == [(2, 3, 12), (2, 3, 12)]
    elif seq_model == "transformer":
        assert h.shape == (7, 3, 8)
    else:
        assert h.shape == (2, 3, 12)
    lm_loss(logits, _ids(7, 3, seed=1).reshape((21,))).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"


def test_lstm_language_model_equals_torch():
    np.random.seed(0)
    model = LanguageModel(6, VOCAB, 5, num_layers=2, seq_model="lstm", dtype="float64")
    emb = torch.nn.Embedding(VOCAB, 6).double()
    lstm = torch.nn.LSTM(6, 5, 2).double()
    linear = torch.nn.Linear(5, VOCAB).double()
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(model.embedding.weight.numpy()))
        for k, cell in enumerate(model.seq_model.lstm_cells):
            for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"),
                                 ("bias_ih", "bias_ih"), ("bias_hh", "bias_hh")):
                value = getattr(cell, ours).numpy()
                getattr(lstm, f"{theirs}_l{k}").copy_(torch.tensor(value.T))
        linear.weight.copy_(torch.tensor(model.linear.weight.numpy().T))
        linear.bias.copy_(torch.tensor(model.linear.bias.numpy().reshape(-1)))
    x, y = _ids(4, 3), _ids(4, 3, seed=2).numpy().reshape(-1).astype(np.int64)
    h0 = np.random.default_rng(3).standard_normal((2, 2, 3, 5))

    logits, (h, c) = model(x, (ndl.Tensor(h0[0], dtype="float64"),
                               ndl.Tensor(h0[1], dtype="float64")))
    lm_loss(logits, y).backward()
    t_out, (t_h, t_c) = lstm(emb(torch.tensor(x.numpy().astype(np.int64))),
                             (torch.tensor(h0[0]), torch.tensor(h0[1])))
    t_logits = linear(t_out.reshape(-1, 5))
    F.cross_entropy(t_logits, torch.tensor(y)).backward()

    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(h.numpy(), t_h.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(c.numpy(), t_c.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.embedding.weight.grad.numpy(), emb.weight.grad.numpy(),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.linear.weight.grad.numpy(), linear.weight.grad.numpy().T,
                               rtol=1e-9, atol=1e-12)
    cell = model.seq_model.lstm_cells[0]
    np.testing.assert_allclose(cell.W_hh.grad.numpy(), lstm.weight_hh_l0.grad.numpy().T,
                               rtol=1e-9, atol=1e-12)


def test_transformer_language_model_is_causal():
    model = LanguageModel(8, VOCAB, 16, num_layers=2, seq_model="transformer", seq_len=12,
                          num_head=2, dim_head=4)
    model.eval()
    x = _ids(6, 2).numpy()
    changed = x.copy()
    changed[5] = (changed[5] + 1) % VOCAB  # only the last position differs
    a = model(ndl.Tensor(x, requires_grad=False))[0].numpy().reshape(6, 2, VOCAB)
    b = model(ndl.Tensor(changed, requires_grad=False))[0].numpy().reshape(6, 2, VOCAB)
    np.testing.assert_allclose(a[:5], b[:5], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[5], b[5])


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="seq_model must be one of"):
        LanguageModel(8, VOCAB, 12, seq_model="cnn")
    model = LanguageModel(8, VOCAB, 12, seq_model="lstm")
    bad = ndl.Tensor(np.full((3, 2), VOCAB, np.float32), requires_grad=False)
    with pytest.raises(IndexError, match=rf"\[0, {VOCAB}\).*\[{VOCAB}, {VOCAB}\]"):
        model(bad)
    with pytest.raises(ValueError, match=r"token ids \(seq_len, batch\), got shape \(6,\)"):
        model(ndl.Tensor(np.zeros(6, np.float32), requires_grad=False))
    transformer = LanguageModel(8, VOCAB, 12, seq_model="transformer", seq_len=4,
                                num_head=2, dim_head=4)
    with pytest.raises(ValueError, match="longer than the Transformer's sequence_len 4"):
        transformer(_ids(5, 2))
