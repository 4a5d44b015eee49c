"""LanguageModel: shapes and states of every sequence model, equality with PyTorch (RNN,
LSTM, GRU and Transformer language models with the same weights), causality of the
Transformer LM, bad input."""

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


@pytest.mark.parametrize("dropout, draws", [(0.0, False), (0.3, True)])
def test_training_forward_draws_random_numbers_only_for_dropout(dropout, draws):
    # the course's language model has no dropout: with p 0 the global RNG must not move
    model = LanguageModel(8, VOCAB, 12, seq_model="lstm", dropout=dropout)
    np.random.seed(3)
    model(_ids(5, 2))
    assert (np.random.rand() != np.random.RandomState(3).rand()) == draws


RECURRENT = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


@pytest.mark.parametrize("seq_model", sorted(RECURRENT))
def test_recurrent_language_model_equals_torch(seq_model):
    """Embedding -> 2-layer RNN / LSTM / GRU -> Linear against PyTorch's modules with the
    same weights: logits, final states and the gradients of every weight."""
    np.random.seed(0)
    model = LanguageModel(6, VOCAB, 5, num_layers=2, seq_model=seq_model, dtype="float64")
    emb = torch.nn.Embedding(VOCAB, 6).double()
    network = RECURRENT[seq_model](6, 5, 2).double()
    linear = torch.nn.Linear(5, VOCAB).double()
    names = (("W_ih", "weight_ih"), ("W_hh", "weight_hh"), ("bias_ih", "bias_ih"),
             ("bias_hh", "bias_hh"))
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(model.embedding.weight.numpy()))
        for k, cell in enumerate(model.seq_model.cells):
            for ours, theirs in names:
                getattr(network, f"{theirs}_l{k}").copy_(torch.tensor(getattr(cell, ours)
                                                                      .numpy().T))
        linear.weight.copy_(torch.tensor(model.linear.weight.numpy().T))
        linear.bias.copy_(torch.tensor(model.linear.bias.numpy().reshape(-1)))
    x, y = _ids(4, 3), _ids(4, 3, seed=2).numpy().reshape(-1).astype(np.int64)
    h0 = np.random.default_rng(3).standard_normal((2, 2, 3, 5))
    if seq_model == "lstm":
        state = (ndl.Tensor(h0[0], dtype="float64"), ndl.Tensor(h0[1], dtype="float64"))
        t_state = (torch.tensor(h0[0]), torch.tensor(h0[1]))
    else:
        state, t_state = ndl.Tensor(h0[0], dtype="float64"), torch.tensor(h0[0])

    logits, h = model(x, state)
    lm_loss(logits, y).backward()
    t_out, t_h = network(emb(torch.tensor(x.numpy().astype(np.int64))), t_state)
    t_logits = linear(t_out.reshape(-1, 5))
    F.cross_entropy(t_logits, torch.tensor(y)).backward()

    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-10)
    for ours, theirs in zip(h if seq_model == "lstm" else [h],
                            t_h if seq_model == "lstm" else [t_h]):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.embedding.weight.grad.numpy(), emb.weight.grad.numpy(),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.linear.weight.grad.numpy(), linear.weight.grad.numpy().T,
                               rtol=1e-9, atol=1e-12)
    for k, cell in enumerate(model.seq_model.cells):
        for ours, theirs in names:
            np.testing.assert_allclose(getattr(cell, ours).grad.numpy(),
                                       getattr(network, f"{theirs}_l{k}").grad.numpy().T,
                                       rtol=1e-8, atol=1e-12, err_msg=f"{ours} layer {k}")


def _torch_transformer_lm(model, ids, leaf):
    """The Transformer LM's forward written in torch functions, with ``leaf(p)`` the torch
    twin of needle parameter p (needle layouts: Linear weights (in, out), biases (1, out))."""
    seq_len, batch = ids.shape
    width = model.embedding_size

    def norm(t, layer):
        return F.layer_norm(t, (width,), leaf(layer.weight), leaf(layer.bias), eps=layer.eps)

    x = leaf(model.embedding.weight)[ids].transpose(0, 1)  # (batch, len, width)
    x = x + leaf(model.seq_model.positional_embedding.weight)[:seq_len][None]
    for i in range(len(model.seq_model.layers)):
        layer = model.seq_model.layers[i]
        attn = layer.attn

        def heads(t):
            return t.reshape(batch, seq_len, attn.num_head, attn.dim_head).transpose(1, 2)

        q, k, v = (heads(norm(x, n) @ leaf(p.weight)) for n, p in (
            (attn.prenorm_q, attn.q_projection), (attn.prenorm_k, attn.k_projection),
            (attn.prenorm_v, attn.v_projection)))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + out.transpose(1, 2).reshape(batch, seq_len, -1) @ \
            leaf(attn.out_projection.weight)
        hidden = torch.relu(norm(x, layer.layernorm) @ leaf(layer.linear1.weight) +
                            leaf(layer.linear1.bias))
        x = x + hidden @ leaf(layer.linear2.weight) + leaf(layer.linear2.bias)
    x = x.transpose(0, 1).reshape(seq_len * batch, width)
    return x @ leaf(model.linear.weight) + leaf(model.linear.bias)


def test_transformer_language_model_equals_torch():
    np.random.seed(1)
    model = LanguageModel(8, VOCAB, 16, num_layers=2, seq_model="transformer", seq_len=10,
                          num_head=2, dim_head=4, dtype="float64")
    leaves = {id(p): torch.tensor(p.numpy(), requires_grad=True)
              for p in model.parameters()}
    x, y = _ids(6, 3), _ids(6, 3, seed=4).numpy().reshape(-1).astype(np.int64)
    logits, _ = model(x)
    lm_loss(logits, y).backward()
    t_logits = _torch_transformer_lm(model, torch.tensor(x.numpy().astype(np.int64)),
                                     lambda p: leaves[id(p)])
    F.cross_entropy(t_logits, torch.tensor(y)).backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), leaves[id(p)].grad.numpy(), rtol=1e-7,
                                   atol=1e-12, err_msg=name)


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
