"""cs231n's FullyConnectedNet on needle: scores vs PyTorch, gradients vs float64 central
differences, cs231n's dropout and batch-norm conventions, bad arguments."""

import numpy as np
import pytest
import torch

from needle.models import FullyConnectedNet, TwoLayerNet


def numeric_grad(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        x[ix] = old + h
        plus = f()
        x[ix] = old - h
        minus = f()
        x[ix] = old
        grad[ix] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("normalization, keep, seed", [
    (None, 1.0, 0), (None, 0.6, 1), ("batchnorm", 0.6, 2), ("layernorm", 1.0, 3)])
def test_gradients_match_central_differences(normalization, keep, seed):
    np.random.seed(seed)
    model = FullyConnectedNet([5, 4], input_dim=4, num_classes=3, normalization=normalization,
                              dropout_keep_ratio=keep, reg=0.3, weight_scale=0.5,
                              dtype=np.float64, seed=seed)
    for name, value in model.params.items():  # biases off zero: no ReLU input exactly at 0
        if name.startswith(("b", "gamma")):
            value += np.random.uniform(0.1, 0.5, value.shape)
    X, y = np.random.randn(6, 2, 2), np.random.randint(3, size=6)
    _, grads = model.loss(X, y)
    for name, value in model.params.items():
        expected = numeric_grad(lambda: model.loss(X, y)[0], value)
        np.testing.assert_allclose(grads[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_scores_and_loss_match_torch_with_copied_weights():
    np.random.seed(0)
    model = FullyConnectedNet([8, 6], input_dim=5, num_classes=4, normalization="batchnorm",
                              reg=0.1, weight_scale=0.3, dtype=np.float64)
    model.params["gamma1"] = np.random.rand(8) + 0.5
    X, y = np.random.randn(10, 5), np.random.randint(4, size=10)
    loss, grads = model.loss(X, y)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = torch.tensor(X) @ p["W1"] + p["b1"]
    h = torch.relu(torch.nn.functional.batch_norm(h, None, None, p["gamma1"], p["beta1"],
                                                  training=True, eps=1e-5))
    h = torch.relu(torch.nn.functional.batch_norm(h @ p["W2"] + p["b2"], None, None,
                                                  p["gamma2"], p["beta2"], training=True))
    scores = h @ p["W3"] + p["b3"]
    want = torch.nn.functional.cross_entropy(scores, torch.tensor(y)) \
        + 0.05 * sum((p[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    want.backward()
    assert loss == pytest.approx(want.item(), rel=1e-12)
    for name, tensor in p.items():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_batchnorm_running_statistics_use_cs231n_momentum():
    np.random.seed(1)
    model = FullyConnectedNet([3], input_dim=2, num_classes=2, normalization="batchnorm",
                              dtype=np.float64)
    X, y = np.random.randn(20, 2) * 3 + 1, np.zeros(20, dtype=int)
    model.loss(X, y)
    hidden = X @ model.params["W1"] + model.params["b1"]
    bn = model.bn_params[0]
    np.testing.assert_allclose(bn["running_mean"], 0.1 * hidden.mean(0))  # 0.9 old + 0.1 new
    np.testing.assert_allclose(bn["running_var"], 0.1 * hidden.var(0))
    # test mode normalises with the running statistics (as torch's eval-mode batch_norm)
    scores = model.loss(X[:4])
    h = torch.nn.functional.batch_norm(torch.tensor(hidden[:4]), torch.tensor(bn["running_mean"]),
                                       torch.tensor(bn["running_var"]), training=False)
    want = torch.relu(h).numpy() @ model.params["W2"] + model.params["b2"]
    np.testing.assert_allclose(scores, want, rtol=1e-10)


def test_dropout_keep_ratio_is_the_probability_of_keeping():
    np.random.seed(2)
    model = FullyConnectedNet([2000], input_dim=1, num_classes=1, dropout_keep_ratio=0.25,
                              dtype=np.float64)
    model.params["W1"][:] = 1.0
    model.params["W2"][:] = 1.0 / 2000
    X = np.ones((50, 1))
    train_scores = model.scores(X, _tensors(model), "train").numpy()
    assert abs(train_scores.mean() - 1.0) < 0.02  # inverted dropout keeps the mean
    kept = (model.dropout_param["p"])
    assert kept == 0.25
    np.testing.assert_allclose(model.loss(X), 1.0)  # test mode: no dropout


def _tensors(model):
    import needle as ndl
    return {k: ndl.Tensor(v, dtype="float64") for k, v in model.params.items()}


def test_two_layer_net_shapes_and_bad_arguments():
    model = TwoLayerNet(input_dim=12, hidden_dim=7, num_classes=3)
    assert {k: v.shape for k, v in model.params.items()} == {
        "W1": (12, 7), "b1": (7,), "W2": (7, 3), "b2": (3,)}
    assert model.loss(np.zeros((4, 3, 2, 2))).shape == (4, 3)
    with pytest.raises(ValueError, match="normalization must be one of"):
        FullyConnectedNet([3], normalization="groupnorm")
    with pytest.raises(ValueError, match="probability of keeping a unit"):
        FullyConnectedNet([3], dropout_keep_ratio=0)
