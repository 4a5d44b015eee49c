"""PyTorch's layer options (issue 10): conv/pool pairs and padding="same", CrossEntropyLoss's
ignore_index/label_smoothing/reduction over (N, C, d1, ...), recurrent batch_first and
inter-layer dropout, Embedding(padding_idx), copy_from_torch and nn.functional. The oracle is
torch.nn with the same weights (copied with nn.copy_from_torch)."""

import numpy as np
import pytest
import torch

import needle as ndl
import needle.nn.functional as F
from needle import nn

RNG = np.random.default_rng(0)


def _compare(ours, theirs, x, tol=1e-4):
    """Forward and input gradient of a needle layer and a torch one on x (float32)."""
    xn, xt = ndl.Tensor(x), torch.tensor(x, requires_grad=True)
    yn, yt = ours(xn), theirs(xt)
    assert yn.shape == tuple(yt.shape)
    np.testing.assert_allclose(yn.numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    g = RNG.standard_normal(yn.shape).astype(np.float32)
    (yn * ndl.Tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)
    return xn, xt


IMAGES = RNG.standard_normal((2, 3, 9, 8)).astype(np.float32)


@pytest.mark.parametrize("kernel, stride, padding", [
    ((3, 2), 1, "same"), (4, 1, "same"), ((3, 5), (2, 1), (1, 2)), (3, (1, 3), 0),
    ((2, 3), 2, (0, 1)), (3, 1, "valid"), ((3, 3), (2, 2), (1, 1))])
def test_conv2d_pairs_and_same_padding_match_torch(kernel, stride, padding):
    theirs = torch.nn.Conv2d(3, 4, kernel, stride, padding)
    ours = nn.copy_from_torch(nn.Conv2d(3, 4, kernel, stride, padding), theirs)
    _compare(ours, theirs, IMAGES)
    np.testing.assert_allclose(ours.weight.grad.numpy(),
                               theirs.weight.grad.numpy().transpose(2, 3, 1, 0), atol=1e-4)


@pytest.mark.parametrize("kernel, stride, padding, output_padding", [
    ((3, 2), (2, 1), (1, 0), (1, 0)), (3, (1, 2), 0, (0, 1)), ((2, 3), 2, 1, 1), (3, 2, 1, 0)])
def test_conv_transpose2d_pairs_match_torch(kernel, stride, padding, output_padding):
    theirs = torch.nn.ConvTranspose2d(3, 4, kernel, stride, padding, output_padding)
    ours = nn.copy_from_torch(nn.ConvTranspose2d(3, 4, kernel, stride, padding, output_padding),
                              theirs)
    _compare(ours, theirs, IMAGES)


@pytest.mark.parametrize("kernel, stride, padding", [
    ((3, 2), None, (1, 0)), (2, (1, 2), 0), ((3, 3), (2, 1), 1), (2, None, 0)])
def test_pooling_pairs_match_torch(kernel, stride, padding):
    _compare(nn.MaxPool2d(kernel, stride, padding), torch.nn.MaxPool2d(kernel, stride, padding),
             IMAGES)
    _compare(nn.AvgPool2d(kernel, stride, padding), torch.nn.AvgPool2d(kernel, stride, padding),
             IMAGES)


def test_bad_conv_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="pair of ints"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match="at most half"):
        nn.MaxPool2d((2, 4), padding=(2, 0))


@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 4), (2, 5, 3, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_options_match_torch(shape, reduction, label_smoothing, ignore_index):
    z = RNG.standard_normal(shape).astype(np.float32)
    y = RNG.integers(0, 5, (shape[0],) + shape[2:])
    y.reshape(-1)[0] = 2  # some target is ignored when ignore_index=2
    zn, zt = ndl.Tensor(z), torch.tensor(z, requires_grad=True)
    options = dict(ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=label_smoothing)
    ours = nn.CrossEntropyLoss(**options)(zn, ndl.Tensor(y, requires_grad=False))
    theirs = torch.nn.CrossEntropyLoss(**options)(zt, torch.tensor(y))
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = RNG.standard_normal(ours.shape).astype(np.float32)
    (ours * ndl.Tensor(g)).sum().backward()
    (theirs * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(zn.grad.numpy(), zt.grad.numpy(), rtol=1e-5, atol=1e-6)
    functional = F.cross_entropy(ndl.Tensor(z), y, **options)
    np.testing.assert_allclose(functional.numpy(), ours.numpy())


def test_cross_entropy_refuses_bad_targets():
    with pytest.raises(ValueError, match="expects logits"):
        nn.CrossEntropyLoss()(ndl.Tensor(np.zeros((2, 3))), ndl.Tensor(np.zeros(3, dtype=int)))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        nn.CrossEntropyLoss(label_smoothing=0.1)(ndl.Tensor(np.zeros((2, 3))),
                                                 ndl.Tensor(np.array([0, 3])))


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_batch_first_matches_torch(kind):
    theirs = getattr(torch.nn, kind)(4, 5, num_layers=2, batch_first=True)
    ours = nn.copy_from_torch(getattr(nn, kind)(4, 5, num_layers=2, batch_first=True), theirs)
    x = RNG.standard_normal((3, 6, 4)).astype(np.float32)
    out, state = ours(ndl.Tensor(x))
    want, want_state = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), atol=1e-5)
    h, want_h = (state[0], want_state[0]) if kind == "LSTM" else (state, want_state)
    assert h.shape == tuple(want_h.shape) == (2, 3, 5)  # states stay (layers, batch, hidden)
    np.testing.assert_allclose(h.numpy(), want_h.detach().numpy(), atol=1e-5)


def test_recurrent_dropout_acts_between_layers_in_training_only():
    x = ndl.Tensor(RNG.standard_normal((5, 2, 3)).astype(np.float32))
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    plain = nn.LSTM(3, 4, num_layers=2)
    plain.load_state_dict(lstm.state_dict())
    lstm.eval()
    np.testing.assert_allclose(lstm(x)[0].numpy(), plain(x)[0].numpy())
    lstm.train()
    np.random.seed(0)
    dropped = lstm(x)[0].numpy()
    assert not np.allclose(dropped, plain(x)[0].numpy())
    single = nn.LSTM(3, 4, num_layers=1, dropout=0.5)  # no layer above: nothing to drop
    single_plain = nn.LSTM(3, 4)
    single_plain.load_state_dict(single.state_dict())
    np.testing.assert_allclose(single(x)[0].numpy(), single_plain(x)[0].numpy())
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(3, 4, dropout=1.0)


def test_embedding_padding_idx_matches_torch():
    theirs = torch.nn.Embedding(6, 3, padding_idx=1)
    ours = nn.Embedding(6, 3, padding_idx=1)
    assert not ours.weight.numpy()[1].any()  # initialised to zeros, as torch
    nn.copy_from_torch(ours, theirs)
    ids = np.array([[0, 1, 1], [5, 1, 2]])
    out, want = ours(ids), theirs(torch.tensor(ids))
    np.testing.assert_allclose(out.numpy(), want.detach().numpy())
    g = RNG.standard_normal(out.shape).astype(np.float32)
    (out * ndl.Tensor(g)).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), atol=1e-6)
    assert nn.Embedding(4, 2, padding_idx=-1).padding_idx == 3


def test_copy_from_torch_converts_a_whole_model():
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2),
                                 torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(84, 3),
                                 torch.nn.LayerNorm(3))
    ours = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(84, 3), nn.LayerNorm1d(3))
    with torch.no_grad():
        theirs[1].running_mean.uniform_()
    nn.copy_from_torch(ours, theirs)
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, IMAGES, tol=1e-4)
    with pytest.raises(ValueError, match="cannot copy a PyTorch Linear into a needle Conv2d"):
        nn.copy_from_torch(nn.Conv2d(3, 2, 3), torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="layers with weights"):
        nn.copy_from_torch(ours, torch.nn.Linear(3, 2))


def test_functional_forms_match_torch():
    import torch.nn.functional as TF
    a = RNG.standard_normal((4, 6)).astype(np.float32)
    x, t = ndl.Tensor(a), torch.tensor(a)
    for ours, theirs in [(F.relu(x), TF.relu(t)), (F.softmax(x, 0), TF.softmax(t, 0)),
                         (F.log_softmax(x, 1), TF.log_softmax(t, 1)), (F.gelu(x), TF.gelu(t)),
                         (F.sigmoid(x), torch.sigmoid(t)), (F.tanh(x), torch.tanh(t)),
                         (F.leaky_relu(x, 0.2), TF.leaky_relu(t, 0.2)),
                         (F.dropout(x, 0.5, training=False), TF.dropout(t, 0.5, False))]:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    y = np.array([0, 5, 2, 1])
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x), y).numpy(),
                               TF.nll_loss(TF.log_softmax(t, 1), torch.tensor(y)).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(F.mse_loss(x, x * 0.5).numpy(), TF.mse_loss(t, t * 0.5).numpy())
    w, b = RNG.standard_normal((6, 3)).astype(np.float32), np.ones(3, np.float32)
    np.testing.assert_allclose(F.linear(x, ndl.Tensor(w), ndl.Tensor(b)).numpy(),
                               TF.linear(t, torch.tensor(w.T), torch.tensor(b)).numpy(),
                               rtol=1e-5, atol=1e-5)
    kernel = RNG.standard_normal((4, 3, 3, 2)).astype(np.float32)  # torch layout (out, in, k, k)
    np.testing.assert_allclose(
        F.conv2d(ndl.Tensor(IMAGES), ndl.Tensor(kernel.transpose(2, 3, 1, 0)), stride=(1, 2),
                 padding=(1, 0)).numpy(),
        TF.conv2d(torch.tensor(IMAGES), torch.tensor(kernel), stride=(1, 2),
                  padding=(1, 0)).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(F.max_pool2d(ndl.Tensor(IMAGES), 2).numpy(),
                               TF.max_pool2d(torch.tensor(IMAGES), 2).numpy())
    np.testing.assert_allclose(F.avg_pool2d(ndl.Tensor(IMAGES), (2, 3)).numpy(),
                               TF.avg_pool2d(torch.tensor(IMAGES), (2, 3)).numpy(), rtol=1e-5,
                               atol=1e-6)
    emb = RNG.standard_normal((5, 2)).astype(np.float32)
    np.testing.assert_allclose(F.embedding(np.array([1, 4]), ndl.Tensor(emb)).numpy(),
                               TF.embedding(torch.tensor([1, 4]), torch.tensor(emb)).numpy())
