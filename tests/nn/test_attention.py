"""Softmax, MultiHeadAttention, AttentionLayer, TransformerLayer and Transformer against
PyTorch references built from the same weights (causal and not, dropout 0)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import nn
from needle.nn.attention import causal_mask
from oracles import check_finite_differences, check_torch


def _torch_mask(queries_len, keys_len):
    """True where query i may attend to key j: j <= i + keys_len - queries_len (the queries
    are the last ``queries_len`` positions of the keys' sequence)."""
    return torch.ones(queries_len, keys_len).tril(keys_len - queries_len).bool()


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), dim=st.integers(-1, 0),
       seed=st.integers(0, 2**32 - 1))
def test_softmax_equals_torch(shape, dim, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    check_torch(lambda a: nn.Softmax(dim)(a), lambda a: torch.softmax(a, dim), x,
                name=f"softmax {shape} dim {dim}")
    check_finite_differences(lambda a: nn.Softmax(dim)(a), x / 3, name="softmax")


def test_softmax_is_stable_for_large_logits():
    x = ndl.Tensor(np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 5e3]], np.float32))
    y = nn.Softmax()(x)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("causal", [False, True])
@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 2), heads=st.integers(1, 3), queries=st.integers(1, 5),
       keys=st.integers(1, 5), dim=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_multi_head_attention_equals_torch(causal, batch, heads, queries, keys, dim, seed):
    if causal:
        keys = max(keys, queries)  # every query needs a key it may see
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, heads, queries, dim))
    k = rng.standard_normal((batch, heads, keys, dim))
    v = rng.standard_normal((batch, heads, keys, dim + 1))
    attention = nn.MultiHeadAttention(causal=causal)

    def torch_fn(q, k, v):
        logits = q @ k.transpose(-1, -2) / dim ** 0.5
        if causal:
            logits = logits.masked_fill(~_torch_mask(queries, keys), float("-inf"))
        probs = torch.softmax(logits, -1)
        want = F.scaled_dot_product_attention(
            q, k, v, attn_mask=_torch_mask(queries, keys) if causal else None)
        return want, probs

    check_torch(lambda q, k, v: attention(q, k, v), torch_fn, q, k, v,
                name=f"attention causal={causal}")
    check_finite_differences(lambda q, k, v: attention(q, k, v)[0], q, k, v,
                             name="attention")


def test_causal_mask_hides_the_future():
    mask = causal_mask(3, 3, np.float32)[0, 0]
    assert mask.shape == (3, 3)
    assert (mask[np.tril_indices(3)] == 0).all()
    assert (mask[np.triu_indices(3, 1)] < -1e37).all()
    np.testing.assert_array_equal(causal_mask(2, 4, np.float32)[0, 0] == 0,
                                  [[1, 1, 1, 0], [1, 1, 1, 1]])
    attention = nn.MultiHeadAttention(causal=True)
    q = ndl.Tensor(np.random.default_rng(0).standard_normal((1, 1, 3, 2)).astype(np.float32))
    _, probs = attention(q, q, q)
    np.testing.assert_array_equal(np.triu(probs.numpy()[0, 0], 1), 0)
    np.testing.assert_allclose(probs.numpy().sum(-1), 1, rtol=1e-6)


def test_attention_dropout_acts_on_the_probabilities():
    attention = nn.MultiHeadAttention(dropout=0.5)
    q = ndl.Tensor(np.ones((2, 2, 6, 3), np.float32))
    np.random.seed(0)
    _, probs = attention(q, q, q)
    np.random.seed(0)
    keep = np.random.rand(2, 2, 6, 6) <= 0.5
    np.testing.assert_allclose(probs.numpy(), keep / 6 / 0.5, rtol=1e-6)
    _, probs = attention.eval()(q, q, q)
    np.testing.assert_allclose(probs.numpy(), 1 / 6, rtol=1e-6)


def _layer_norm(t, module):
    return F.layer_norm(t, t.shape[-1:], module[0], module[1], eps=1e-5)


def _attention_weights(layer):
    """The AttentionLayer's weights in creation order, as float64 arrays."""
    return [p.numpy().astype(np.float64) for p in layer.parameters()]


def _set_attention_weights(layer, weights):
    names = ["prenorm_q.weight", "prenorm_q.bias", "prenorm_k.weight", "prenorm_k.bias",
             "prenorm_v.weight", "prenorm_v.bias", "q_projection.weight",
             "k_projection.weight", "v_projection.weight", "out_projection.weight"]
    for name, w in zip(names, weights):
        module, attr = name.split(".")
        setattr(getattr(layer, module), attr, w)


def _torch_attention_layer(q, k, v, weights, heads, dim_head, causal):
    ln_q, ln_k, ln_v = (weights[0], weights[1]), (weights[2], weights[3]), (weights[4],
                                                                           weights[5])
    w_q, w_k, w_v, w_out = weights[6:]

    def split(x):
        return x.reshape(x.shape[0], x.shape[1], heads, dim_head).transpose(1, 2)

    q = split(_layer_norm(q, ln_q) @ w_q)
    k = split(_layer_norm(k, ln_k) @ w_k)
    v = split(_layer_norm(v, ln_v) @ w_v)
    mask = _torch_mask(q.shape[2], k.shape[2]) if causal else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1) @ w_out


@pytest.mark.parametrize("causal, cross", [(False, False), (True, False), (False, True)])
def test_attention_layer_equals_torch(causal, cross):
    heads, dim_head, q_features = 2, 3, 5
    k_features, v_features = (4, 6) if cross else (None, None)
    layer = nn.AttentionLayer(q_features, heads, dim_head, k_features=k_features,
                              v_features=v_features, out_features=7, causal=causal,
                              dtype="float64")
    rng = np.random.default_rng(int(causal) + 2 * int(cross))
    q = rng.standard_normal((2, 4, q_features))
    kv = [rng.standard_normal((2, 6 if cross else 4, f or q_features))
          for f in (k_features, v_features)]
    weights = [w + rng.standard_normal(w.shape) * 0.1 for w in _attention_weights(layer)]

    def ndl_fn(q, *rest):
        _set_attention_weights(layer, rest[-10:])
        return layer(q, *rest[:-10]) if cross else layer(q)

    def torch_fn(q, *rest):
        k, v = rest[:-10] if cross else (q, q)
        return _torch_attention_layer(q, k, v, rest[-10:], heads, dim_head, causal)

    inputs = (q, *kv) if cross else (q,)
    check_torch(ndl_fn, torch_fn, *inputs, *weights, name=f"attention layer {causal} {cross}")


@pytest.mark.parametrize("causal", [False, True])
def test_transformer_layer_equals_torch_multihead_attention(causal):
    """The attention block against torch's own multi_head_attention_forward, then the
    feed-forward block, from the same weights."""
    heads, dim_head, hidden = 2, 4, 6
    features = heads * dim_head
    layer = nn.TransformerLayer(features, heads, dim_head, hidden, causal=causal,
                                dtype="float64")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, features))
    weights = [w + rng.standard_normal(w.shape) * 0.1
               for w in (p.numpy().astype(np.float64) for p in layer.parameters())]
    names = [name for name, _ in layer.named_parameters()]

    def ndl_fn(x, *params):
        for name, p in zip(names, params):
            module, attr = name.rsplit(".", 1)
            owner = layer
            for part in module.split("."):
                owner = getattr(owner, part)
            setattr(owner, attr, p)
        return layer(x)

    def torch_fn(x, *params):
        w = dict(zip(names, params))
        ln = {n: (w[f"attn.prenorm_{n}.weight"], w[f"attn.prenorm_{n}.bias"]) for n in "qkv"}
        q, k, v = (_layer_norm(x, ln[n]).transpose(0, 1) for n in "qkv")
        mask = ~_torch_mask(5, 5) if causal else None
        attended, _ = F.multi_head_attention_forward(
            q, k, v, features, heads, None, None, None, None, False, 0.0,
            w["attn.out_projection.weight"].T, None, training=False, attn_mask=mask,
            need_weights=False, use_separate_proj_weight=True,
            q_proj_weight=w["attn.q_projection.weight"].T,
            k_proj_weight=w["attn.k_projection.weight"].T,
            v_proj_weight=w["attn.v_projection.weight"].T)
        x = x + attended.transpose(0, 1)
        h = _layer_norm(x, (w["layernorm.weight"], w["layernorm.bias"]))
        h = torch.relu(h @ w["linear1.weight"] + w["linear1.bias"])
        return x + h @ w["linear2.weight"] + w["linear2.bias"]

    check_torch(ndl_fn, torch_fn, x, *weights, name=f"transformer layer causal={causal}")


def test_transformer_adds_learned_positions_and_keeps_the_layout():
    np.random.seed(0)
    model = nn.Transformer(8, 12, 2, num_head=2, dim_head=4, sequence_len=6, dtype="float64")
    assert model.positional_embedding.weight.shape == (6, 8)
    x = np.random.default_rng(1).standard_normal((5, 3, 8))  # (len, batch, features)
    out, h = model(ndl.Tensor(x, dtype="float64"))
    assert out.shape == (5, 3, 8) and h.shape == (5, 3, 8) and not h.numpy().any()
    positions = model.positional_embedding.weight.numpy()[:5]
    want = model.layers(ndl.Tensor(x.transpose(1, 0, 2) + positions, dtype="float64"))
    np.testing.assert_allclose(out.numpy(), want.numpy().transpose(1, 0, 2), rtol=1e-10)
    batch_first = nn.Transformer(8, 12, 1, num_head=2, dim_head=4, batch_first=True)
    assert batch_first(ndl.Tensor(x, dtype="float32"))[0].shape == (5, 3, 8)


def test_causal_transformer_output_ignores_future_tokens():
    model = nn.Transformer(8, 12, 2, num_head=2, dim_head=4, sequence_len=6)
    x = np.random.default_rng(2).standard_normal((5, 1, 8)).astype(np.float32)
    changed = x.copy()
    changed[4] += 10
    a, b = model(ndl.Tensor(x))[0].numpy(), model(ndl.Tensor(changed))[0].numpy()
    np.testing.assert_allclose(a[:4], b[:4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[4], b[4])


def test_sequence_longer_than_sequence_len_is_a_clear_error():
    model = nn.Transformer(8, 12, 1, num_head=2, dim_head=4, sequence_len=4)
    with pytest.raises(ValueError, match="length 5 is longer than .* sequence_len 4"):
        model(ndl.Tensor(np.zeros((5, 2, 8), np.float32)))
    with pytest.raises(ValueError, match=r"\(len, batch, 8\), got shape \(5, 2, 7\)"):
        model(ndl.Tensor(np.zeros((5, 2, 7), np.float32)))


def test_attention_shape_errors_name_the_shapes():
    attention = nn.MultiHeadAttention()
    q = ndl.Tensor(np.zeros((1, 2, 3, 4), np.float32))
    k = ndl.Tensor(np.zeros((1, 2, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 4\), \(1, 2, 3, 5\)"):
        attention(q, k, k)
