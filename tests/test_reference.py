"""The fast path and the readable path (``ndl.reference_mode()``) give the same results:
a few training steps of models that use every fused primitive, the deferred adjoints and
the flat optimisers, once in each mode from the same seed. Also: importing needle has no
side effects."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import needle as ndl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(make_model, make_batch, make_opt, reference: bool, steps: int = 3):
    """Final parameters, losses and gradients after ``steps`` steps in one mode."""
    with ndl.reference_mode(reference):
        np.random.seed(0)
        model = make_model()
        opt = make_opt(model.parameters())
        losses = []
        for k in range(steps):
            x, y = make_batch(k)
            opt.reset_grad()
            out = model(x)
            logits = out[0] if isinstance(out, tuple) else out
            loss = ndl.nn.SoftmaxLoss()(logits, y)
            loss.backward()
            losses.append(float(loss.numpy()))
            opt.step()
        return losses, [p.numpy() for p in model.parameters()]


def _images(shape, classes):
    def batch(k):
        rng = np.random.default_rng(k)
        return (ndl.Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=False),
                ndl.Tensor(rng.integers(0, classes, shape[0])))
    return batch


def _tokens(k):
    rng = np.random.default_rng(k)
    x = rng.integers(0, 20, (5, 3)).astype(np.float32)
    return (ndl.Tensor(x, requires_grad=False),
            ndl.Tensor(rng.integers(0, 20, 15), requires_grad=False))


MODELS = {
    "mlp_resnet (Linear, BatchNorm1d, dropout, Adam)": (
        lambda: ndl.models.MLPResNet(16, hidden_dim=12, num_blocks=2, num_classes=4),
        _images((8, 16), 4), lambda p: ndl.optim.Adam(p, lr=0.01, weight_decay=1e-3)),
    "cnn (Conv, BatchNorm2d, max pooling, SGD momentum)": (
        lambda: ndl.models.CNN(image_size=8, channels=(4, 6)),
        _images((4, 1, 8, 8), 10), lambda p: ndl.optim.SGD(p, lr=0.05, momentum=0.9)),
    "lstm lm (sigmoid, tanh, split, shared weights, RMSprop)": (
        lambda: ndl.models.LanguageModel(6, 20, 8, num_layers=2, seq_model="lstm"),
        _tokens, lambda p: ndl.optim.RMSprop(p, lr=0.01)),
    # SGD here: Adam turns the rounding noise of gradients that are exactly zero (the keys'
    # LayerNorm bias: softmax ignores a per-query constant) into full steps of either sign
    "transformer lm (softmax, LayerNorm, SGD)": (
        lambda: ndl.models.LanguageModel(8, 20, 16, seq_model="transformer", seq_len=8,
                                         num_head=2, dim_head=4),
        _tokens, lambda p: ndl.optim.SGD(p, lr=0.5, weight_decay=1e-3)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fast_and_reference_modes_train_alike(name):
    fast_losses, fast = _train(*MODELS[name], reference=False)
    ref_losses, ref = _train(*MODELS[name], reference=True)
    np.testing.assert_allclose(ref_losses, fast_losses, rtol=1e-4, err_msg=name)
    for i, (r, f) in enumerate(zip(ref, fast)):
        # float32: the fused LSTM sums its steps in another order, and RMSprop divides by
        # sqrt of tiny second moments, so single weights near zero differ by a few 1e-5
        np.testing.assert_allclose(r, f, rtol=1e-4, atol=1e-4, err_msg=f"{name}: param {i}")


def test_reference_mode_nests_and_restores():
    outer = ndl.is_reference_mode()
    with ndl.reference_mode():
        assert ndl.is_reference_mode()
        with ndl.reference_mode(False):
            assert not ndl.is_reference_mode()
        assert ndl.is_reference_mode()
    assert ndl.is_reference_mode() == outer


@pytest.mark.parametrize("value, expected", [("1", "True"), ("0", "False"), (None, "False")])
def test_the_environment_switches_reference_mode(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "NEEDLE_REFERENCE"}
    if value is not None:
        env["NEEDLE_REFERENCE"] = value
    out = subprocess.run([sys.executable, "-c", "import needle; print(needle.is_reference_mode())"],
                         env={**env, "PYTHONPATH": ROOT}, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == expected


def test_importing_needle_loads_no_training_loop_and_leaves_malloc_alone():
    probe = ("import sys, needle; from needle.backend_ndarray import allocator; "
             "print(sorted(m for m in ('needle.train', 'needle.train_lm', 'needle.generate') "
             "if m in sys.modules), allocator.KEPT, needle.train.__name__)")
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": ROOT},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] False needle.train"  # and ndl.train still loads on first use
