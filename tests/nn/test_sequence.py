"""Embedding, RNN, LSTM and GRU against PyTorch with copied weights, finite differences,
the contract's initialisation, and clear errors on bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import nn
from oracles import check_finite_differences, check_torch

NETWORKS = {"rnn_tanh": (nn.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
            "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
            "lstm": (nn.LSTM, torch.nn.LSTM, {}),
            "gru": (nn.GRU, torch.nn.GRU, {})}
CELLS = {"rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
         "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
         "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
         "gru": (nn.GRUCell, torch.nn.GRUCell, {})}
WEIGHT_NAMES = ("W_ih", "W_hh", "bias_ih", "bias_hh")


def _weights(cells, bias):
    """Every cell's weights as float64 arrays, in needle's layout and creation order."""
    names = WEIGHT_NAMES if bias else WEIGHT_NAMES[:2]
    return [getattr(cell, name).numpy().astype(np.float64) for cell in cells for name in names]


def _set_needle_weights(cells, weights, bias):
    names = WEIGHT_NAMES if bias else WEIGHT_NAMES[:2]
    for k, cell in enumerate(cells):
        for j, name in enumerate(names):
            setattr(cell, name, weights[k * len(names) + j])


def _torch_params(weights, num_layers, bias, suffix=True):
    """needle weights (in, out) -> PyTorch's named parameters (out, in)."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[: 4 if bias else 2]
    params = {}
    for k in range(num_layers):
        for j, name in enumerate(names):
            w = weights[k * len(names) + j]
            params[f"{name}_l{k}" if suffix else name] = w.T if w.ndim == 2 else w
    return params


sizes = st.fixed_dictionaries({"seq_len": st.sampled_from([1, 2, 4]),
                               "batch": st.integers(1, 3), "input_size": st.integers(1, 4),
                               "hidden_size": st.integers(1, 4),
                               "num_layers": st.integers(1, 3), "bias": st.booleans(),
                               "with_state": st.booleans(),
                               "seed": st.integers(0, 2**32 - 1)})


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@settings(max_examples=12, deadline=None)
@given(s=sizes)
def test_network_equals_torch(kind, s):
    """Output, final states and the gradients of input, initial state and every weight."""
    ndl_cls, torch_cls, kwargs = NETWORKS[kind]
    layers, bias, hidden = s["num_layers"], s["bias"], s["hidden_size"]
    net = ndl_cls(s["input_size"], hidden, layers, bias=bias, dtype="float64", **kwargs)
    torch_net = torch_cls(s["input_size"], hidden, layers, bias=bias, **kwargs).double()
    rng = np.random.default_rng(s["seed"])
    x = rng.standard_normal((s["seq_len"], s["batch"], s["input_size"]))
    lstm = kind == "lstm"
    states = [rng.standard_normal((layers, s["batch"], hidden))
              for _ in range(2 if lstm else 1)] if s["with_state"] else []
    weights = _weights(net.cells, bias)

    def ndl_fn(x, *rest):
        state, params = rest[:len(states)], rest[len(states):]
        _set_needle_weights(net.cells, params, bias)
        out, h = net(x, (tuple(state) if lstm else state[0]) if state else None)
        return (out, *h) if lstm else (out, h)

    def torch_fn(x, *rest):
        state, params = rest[:len(states)], rest[len(states):]
        named = _torch_params(params, layers, bias)
        h = (tuple(state) if lstm else state[0]) if state else None
        out, h = torch.func.functional_call(torch_net, named, (x, h))
        return (out, *h) if lstm else (out, h)

    check_torch(ndl_fn, torch_fn, x, *states, *weights, name=f"{kind} {s}")


@pytest.mark.parametrize("kind", sorted(CELLS))
@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 3), input_size=st.integers(1, 4), hidden=st.integers(1, 4),
       bias=st.booleans(), with_state=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_cell_equals_torch(kind, batch, input_size, hidden, bias, with_state, seed):
    ndl_cls, torch_cls, kwargs = CELLS[kind]
    cell = ndl_cls(input_size, hidden, bias=bias, dtype="float64", **kwargs)
    torch_cell = torch_cls(input_size, hidden, bias=bias, **kwargs).double()
    rng = np.random.default_rng(seed)
    lstm = kind == "lstm"
    x = rng.standard_normal((batch, input_size))
    states = [rng.standard_normal((batch, hidden))
              for _ in range(2 if lstm else 1)] if with_state else []
    weights = _weights([cell], bias)

    def ndl_fn(x, *rest):
        state, params = rest[:len(states)], rest[len(states):]
        _set_needle_weights([cell], params, bias)
        return cell(x, (tuple(state) if lstm else state[0]) if state else None)

    def torch_fn(x, *rest):
        state, params = rest[:len(states)], rest[len(states):]
        named = _torch_params(params, 1, bias, suffix=False)
        h = (tuple(state) if lstm else state[0]) if state else None
        return torch.func.functional_call(torch_cell, named, (x, h))

    check_torch(ndl_fn, torch_fn, x, *states, *weights, name=f"{kind} cell")


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_network_gradients_equal_finite_differences(kind):
    ndl_cls, _, kwargs = NETWORKS[kind]
    net = ndl_cls(2, 3, 2, dtype="float64", **kwargs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2))
    h0 = rng.standard_normal((2, 2, 3))
    weights = _weights(net.cells, True)

    def fn(x, h0, *params):
        _set_needle_weights(net.cells, params, True)
        out, h = net(x, (h0, h0 * 0.5) if kind == "lstm" else h0)
        return out

    check_finite_differences(fn, x, h0, *weights, name=kind)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_float32_default_matches_torch(kind):
    ndl_cls, torch_cls, kwargs = NETWORKS[kind]
    net = ndl_cls(8, 16, 2, **kwargs)
    torch_net = torch_cls(8, 16, 2, **kwargs)
    with torch.no_grad():
        for name, value in _torch_params(_weights(net.cells, True), 2, True).items():
            getattr(torch_net, name).copy_(torch.tensor(value))
    x = np.random.default_rng(1).standard_normal((5, 4, 8)).astype(np.float32)
    out, _ = net(ndl.Tensor(x))
    want, _ = torch_net(torch.tensor(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, gates", [(nn.RNNCell, 1), (nn.LSTMCell, 4), (nn.GRUCell, 3)])
def test_cell_initialisation_follows_the_contract(cls, gates):
    """W_ih, W_hh, bias_ih, bias_hh drawn in that order from U(-k, k), k = sqrt(1/hidden)."""
    np.random.seed(3)
    cell = cls(5, 7)
    np.random.seed(3)
    k = math.sqrt(1 / 7)
    for name, shape in (("W_ih", (5, 7 * gates)), ("W_hh", (7, 7 * gates)),
                        ("bias_ih", (7 * gates,)), ("bias_hh", (7 * gates,))):
        want = -k + 2 * k * np.random.rand(*shape)
        got = getattr(cell, name)
        assert got.shape == shape and isinstance(got, nn.Parameter), name
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7, err_msg=name)
    assert [p.shape for p in cell.parameters()] == [(5, 7 * gates), (7, 7 * gates),
                                                   (7 * gates,), (7 * gates,)]


def test_multi_layer_parameters_are_created_layer_by_layer():
    lstm = nn.LSTM(3, 4, num_layers=2)
    names = [name for name, _ in lstm.named_parameters()]
    assert names == [f"lstm_cells.{k}.{w}" for k in range(2) for w in WEIGHT_NAMES]
    assert lstm.lstm_cells[1].W_ih.shape == (4, 16)
    assert sorted(lstm.state_dict()) == sorted(names)
    assert [n for n, _ in nn.RNN(3, 4, 2, bias=False).named_parameters()] == [
        "rnn_cells.0.W_ih", "rnn_cells.0.W_hh", "rnn_cells.1.W_ih", "rnn_cells.1.W_hh"]


def test_embedding_equals_torch_with_repeated_ids():
    emb = nn.Embedding(6, 3, dtype="float64")
    ids = np.array([[0, 5, 5], [2, 0, 1]])
    check_torch(lambda w: _embed_with(emb, w, ids),
                lambda w: torch.nn.functional.embedding(torch.tensor(ids), w),
                emb.weight.numpy(), name="embedding")
    check_finite_differences(lambda w: _embed_with(emb, w, ids), emb.weight.numpy(),
                             name="embedding")


def _embed_with(emb, weight, ids):
    emb.weight = weight
    return emb(ndl.Tensor(ids.astype(np.float32), requires_grad=False))


def test_embedding_initialisation_and_shapes():
    np.random.seed(0)
    emb = nn.Embedding(10, 4)
    np.random.seed(0)
    np.testing.assert_allclose(emb.weight.numpy(), np.random.randn(10, 4), rtol=1e-6, atol=1e-7)
    out = emb(np.zeros((7, 2), dtype=np.int64))
    assert out.shape == (7, 2, 4) and out.dtype == np.float32


@pytest.mark.parametrize("ids, match", [([[0, 10]], r"\[0, 10\).*\[0, 10\]"),
                                        ([[-1, 2]], r"\[0, 10\).*\[-1, 2\]"),
                                        ([[0.5, 1.0]], "whole numbers")])
def test_embedding_rejects_ids_outside_the_vocabulary(ids, match):
    emb = nn.Embedding(10, 4)
    with pytest.raises((IndexError, ValueError), match=match):
        emb(ndl.Tensor(np.array(ids), requires_grad=False))


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_wrong_hidden_state_shape_names_both_shapes(kind):
    ndl_cls, _, kwargs = NETWORKS[kind]
    net = ndl_cls(3, 4, 2, **kwargs)
    x = ndl.Tensor(np.zeros((5, 2, 3), np.float32))
    bad = ndl.Tensor(np.zeros((1, 2, 4), np.float32))
    good = ndl.Tensor(np.zeros((2, 2, 4), np.float32))
    state = (bad, good) if kind == "lstm" else bad
    with pytest.raises(ValueError, match=r"\(1, 2, 4\), expected \(2, 2, 4\)"):
        net(x, state)


def test_wrong_cell_state_and_input_shapes_are_clear_errors():
    cell = nn.LSTMCell(3, 4)
    x = ndl.Tensor(np.zeros((2, 3), np.float32))
    h = ndl.Tensor(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"cell state c has shape \(2, 5\), expected \(2, 4\)"):
        cell(x, (h, ndl.Tensor(np.zeros((2, 5), np.float32))))
    with pytest.raises(ValueError, match=r"input \(seq_len, batch, 3\), got shape \(2, 3\)"):
        nn.LSTM(3, 4)(x)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")
