"""PyTorch weights: layer-for-layer PyTorch models (the benchmark's torch_ref networks and
single layers) with random weights, converted into needle, give PyTorch's outputs; the round
trip back gives identical tensors; mismatched keys and shapes are clear errors."""

import importlib.util
import os

import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.interop import load_torch_state_dict, to_torch_state_dict
from needle.models import CNN, LanguageModel, MLPResNet, ResNet9

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TORCH_REF = os.path.join(ROOT, os.pardir, "shared", "bench", "torch_ref.py")


@pytest.fixture(scope="module")
def torch_ref():
    if not os.path.isfile(TORCH_REF):
        pytest.skip(f"no {TORCH_REF}")
    spec = importlib.util.spec_from_file_location("torch_ref", TORCH_REF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _randomize(torch_model, seed=0):
    """Random weights and BatchNorm statistics, so no layout mistake hides behind symmetry."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in torch_model.state_dict().items():
            if value.dtype.is_floating_point:
                fresh = torch.rand(value.shape, generator=gen) * 0.5 + 0.5 \
                    if name.endswith("running_var") else torch.randn(value.shape, generator=gen)
                value.copy_(fresh * (0.3 if value.ndim > 1 else 1.0))
    return torch_model.eval()


def assert_close(actual, expected, what="output"):
    """Equal to 1e-5 relative to the output's largest magnitude."""
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


def _check_round_trip(needle_model, torch_model):
    original = torch_model.state_dict()
    back = to_torch_state_dict(needle_model, template=torch_model)
    assert list(back) == list(original)
    for key, value in original.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key
    torch_model.load_state_dict(back)  # strict: every key fits


def _cnn_as_torch_ref_writes_it():
    """torch_ref's w_cnn_mnist network (defined inline there), at the digits' 8x8 size."""
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv2d(1, 16, 3, padding=1), tnn.BatchNorm2d(16), tnn.ReLU(),
                          tnn.MaxPool2d(2), tnn.Conv2d(16, 32, 3, padding=1),
                          tnn.BatchNorm2d(32), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                          tnn.Linear(32 * 2 * 2, 10))


def _models(torch_ref):
    return {
        "mlp_resnet": (lambda: torch_ref.MLPResNet(dim=64, hidden_dim=32, num_blocks=2),
                       lambda: MLPResNet(64, hidden_dim=32, num_blocks=2),
                       lambda rng: rng.standard_normal((6, 1, 8, 8))),
        "digits_cnn": (_cnn_as_torch_ref_writes_it,
                       lambda: CNN(1, 10, image_size=8, channels=(16, 32)),
                       lambda rng: rng.standard_normal((4, 1, 8, 8))),
        "resnet9": (torch_ref.ResNet9, ResNet9, lambda rng: rng.standard_normal((2, 3, 32, 32))),
    }


@pytest.mark.parametrize("name", ["mlp_resnet", "digits_cnn", "resnet9"])
def test_torch_ref_image_models_convert(name, torch_ref):
    make_torch, make_needle, make_input = _models(torch_ref)[name]
    torch.manual_seed(0)
    torch_model = _randomize(make_torch())
    model = make_needle()
    load_torch_state_dict(model, torch_model.state_dict())
    model.eval()
    x = make_input(np.random.default_rng(1)).astype("float32")
    expected = torch_model(torch.from_numpy(x))
    assert_close(model(ndl.Tensor(x, requires_grad=False)).numpy(), expected)
    _check_round_trip(model, torch_model)


def test_torch_ref_lstm_language_model_converts_by_order(torch_ref):
    """torch_ref's LSTMLM names its layers emb/lstm/fc, needle embedding/seq_model/linear:
    matched by order, every tensor of the same kind."""
    torch.manual_seed(0)
    vocab, emb, hidden, layers = 40, 8, 12, 2
    torch_model = _randomize(torch_ref.LSTMLM(vocab, emb, hidden, layers))
    model = LanguageModel(emb, vocab, hidden, num_layers=layers, seq_model="lstm")
    load_torch_state_dict(model, torch_model.state_dict())
    ids = np.random.default_rng(2).integers(0, vocab, (6, 3))
    h0 = [torch.randn(layers, 3, hidden) * 0.5 for _ in range(2)]
    logits, (h, c) = torch_model(torch.from_numpy(ids), tuple(h0))
    out, (h_n, c_n) = model(ndl.Tensor(ids, requires_grad=False),
                            tuple(ndl.Tensor(t.numpy()) for t in h0))
    for got, want, what in ((out, logits, "logits"), (h_n, h, "h_n"), (c_n, c, "c_n")):
        assert_close(got.numpy(), want, what)
    _check_round_trip(model, torch_model)


def _layer_cases():
    tnn = torch.nn
    return {
        "linear": (lambda: tnn.Linear(5, 3), lambda: nn.Linear(5, 3), (4, 5)),
        "linear_no_bias": (lambda: tnn.Linear(5, 3, bias=False),
                           lambda: nn.Linear(5, 3, bias=False), (4, 5)),
        "conv2d": (lambda: tnn.Conv2d(3, 4, 3, stride=2, padding=1),
                   lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 7)),
        "conv_transpose2d": (lambda: tnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1),
                             lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1),
                             (2, 3, 4, 4)),
        "batch_norm2d": (lambda: tnn.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
        "layer_norm": (lambda: tnn.LayerNorm(6), lambda: nn.LayerNorm1d(6), (3, 6)),
        "lstm_cell": (lambda: tnn.LSTMCell(4, 5), lambda: nn.LSTMCell(4, 5), (3, 4)),
        "gru": (lambda: tnn.GRU(4, 5, 2), lambda: nn.GRU(4, 5, 2), (6, 3, 4)),
        "rnn_relu": (lambda: tnn.RNN(4, 5, 2, nonlinearity="relu"),
                     lambda: nn.RNN(4, 5, 2, nonlinearity="relu"), (6, 3, 4)),
    }


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", sorted(_layer_cases()))
def test_single_layers_convert_and_round_trip(name):
    make_torch, make_needle, shape = _layer_cases()[name]
    torch.manual_seed(0)
    torch_layer = _randomize(make_torch())
    layer = make_needle()
    load_torch_state_dict(layer, torch_layer.state_dict())
    layer.eval()
    x = np.random.default_rng(3).standard_normal(shape).astype("float32")
    expected = _first(torch_layer(torch.from_numpy(x)))
    assert_close(_first(layer(ndl.Tensor(x))).numpy(), expected, name)
    _check_round_trip(layer, torch_layer)


def test_embedding_and_the_default_names():
    torch_layer = _randomize(torch.nn.Embedding(7, 3))
    layer = nn.Embedding(7, 3)
    load_torch_state_dict(layer, torch_layer.state_dict())
    ids = np.array([[0, 6], [3, 3]])
    assert_close(layer(ids).numpy(), torch_layer(torch.from_numpy(ids)))
    names = list(to_torch_state_dict(MLPResNet(16, hidden_dim=8, num_blocks=1)))
    assert names[:2] == ["1.weight", "1.bias"]
    assert "3.0.fn.1.num_batches_tracked" in names  # PyTorch's own BatchNorm buffer


def test_layouts_are_pytorchs():
    model = nn.Sequential(nn.Conv(3, 8, 5), nn.Flatten(), nn.Linear(8, 2))
    sd = to_torch_state_dict(model)
    assert tuple(sd["0.weight"].shape) == (8, 3, 5, 5)
    np.testing.assert_array_equal(sd["0.weight"].numpy(),
                                  model[0].weight.numpy().transpose(3, 2, 0, 1))
    assert tuple(sd["2.weight"].shape) == (2, 8) and tuple(sd["2.bias"].shape) == (2,)
    lstm = to_torch_state_dict(nn.LSTM(3, 4, num_layers=2))
    assert [tuple(v.shape) for v in lstm.values()] == [(16, 3), (16, 4), (16,), (16,),
                                                       (16, 4), (16, 4), (16,), (16,)]
    assert list(lstm)[4] == "weight_ih_l1"


def test_mismatched_keys_are_listed_and_nothing_changes():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.numpy().copy() for p in model.parameters()]
    state = {k: v.clone() for k, v in torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).state_dict().items()}
    state["extra.weight"] = torch.zeros(2, 2)
    del state["2.bias"]
    with pytest.raises(RuntimeError, match=r"lacks: \['2.bias'\].*not have: \['extra.weight'\]"):
        load_torch_state_dict(model, state)
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before, model.parameters()))


def test_mis_shaped_keys_are_listed_with_both_shapes():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    state = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(),
                                torch.nn.Linear(5, 2)).state_dict()
    with pytest.raises(RuntimeError, match=r"wrong shape: 0.weight: expected \(4, 3\) "
                                           r"\(for needle's \(3, 4\)\), got \(5, 3\)"):
        load_torch_state_dict(model, state)


def test_numpy_arrays_load_too():
    layer = nn.Linear(2, 3)
    weight = np.arange(6, dtype=np.float32).reshape(3, 2)
    load_torch_state_dict(layer, {"weight": weight, "bias": np.ones(3, np.float32)})
    np.testing.assert_array_equal(layer.weight.numpy(), weight.T)
    assert layer.bias.shape == (1, 3)


class _TorchAttentionLayer(torch.nn.Module):
    """needle's AttentionLayer written in PyTorch, attribute for attribute."""

    def __init__(self, d, heads, dim_head):
        super().__init__()
        tnn, inner = torch.nn, heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.prenorm_q, self.prenorm_k, self.prenorm_v = (tnn.LayerNorm(d) for _ in range(3))
        self.q_projection, self.k_projection, self.v_projection = (
            tnn.Linear(d, inner, bias=False) for _ in range(3))
        self.out_projection = tnn.Linear(inner, d, bias=False)

    def forward(self, x):
        batch, length, _ = x.shape

        def heads(t):
            return t.reshape(batch, length, self.heads, self.dim_head).permute(0, 2, 1, 3)

        q, k, v = (heads(proj(norm(x))) for proj, norm in (
            (self.q_projection, self.prenorm_q), (self.k_projection, self.prenorm_k),
            (self.v_projection, self.prenorm_v)))
        logits = q @ k.transpose(-1, -2) / self.dim_head ** 0.5
        blocked = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
        probs = torch.softmax(logits.masked_fill(blocked, float("-inf")), -1)
        return self.out_projection((probs @ v).permute(0, 2, 1, 3).reshape(batch, length, -1))


class _TorchTransformerLayer(torch.nn.Module):
    def __init__(self, d, heads, dim_head, hidden):
        super().__init__()
        self.attn = _TorchAttentionLayer(d, heads, dim_head)
        self.layernorm = torch.nn.LayerNorm(d)
        self.linear1, self.linear2 = torch.nn.Linear(d, hidden), torch.nn.Linear(hidden, d)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.linear2(torch.relu(self.linear1(self.layernorm(x))))


class _TorchTransformer(torch.nn.Module):
    def __init__(self, d, hidden, layers, heads, dim_head, seq_len):
        super().__init__()
        self.positional_embedding = torch.nn.Embedding(seq_len, d)
        self.layers = torch.nn.Sequential(*[_TorchTransformerLayer(d, heads, dim_head, hidden)
                                            for _ in range(layers)])

    def forward(self, x):  # (len, batch, d), time-major like needle's
        x = x.transpose(0, 1)
        x = x + self.positional_embedding(torch.arange(x.shape[1]))[None]
        return self.layers(x).transpose(0, 1)


class _TorchTransformerLM(torch.nn.Module):
    def __init__(self, vocab, d, hidden, layers, heads, dim_head, seq_len):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, d)
        self.seq_model = _TorchTransformer(d, hidden, layers, heads, dim_head, seq_len)
        self.linear = torch.nn.Linear(d, vocab)

    def forward(self, ids):
        out = self.seq_model(self.embedding(ids))
        return self.linear(out.reshape(-1, out.shape[-1]))


def test_transformer_language_model_built_layer_for_layer_converts_by_name():
    """needle's Transformer LM written in PyTorch with the same attribute names: every key
    matches by name (the bias-free projections transposed)."""
    torch.manual_seed(0)
    args = dict(vocab=30, d=8, hidden=16, layers=2, heads=2, dim_head=4, seq_len=10)
    torch_model = _randomize(_TorchTransformerLM(**args))
    model = LanguageModel(8, 30, 16, num_layers=2, seq_model="transformer", seq_len=10,
                          num_head=2, dim_head=4)
    load_torch_state_dict(model, torch_model.state_dict())
    assert list(to_torch_state_dict(model)) == list(torch_model.state_dict())
    ids = np.random.default_rng(4).integers(0, 30, (7, 3))
    logits, _ = model.eval()(ndl.Tensor(ids, requires_grad=False))
    assert_close(logits.numpy(), torch_model(torch.from_numpy(ids)))
    _check_round_trip(model, torch_model)
