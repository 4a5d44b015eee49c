"""The three programs of examples/from_pytorch/ against their PyTorch twins (each file's
docstring), on the same data and, where training is compared, the same initial weights."""

import importlib.util
import os
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NEEDLE_DATA", ROOT.parent / "shared" / "data"))
HAS_MNIST = (DATA / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
HAS_PTB = (DATA / "ptb" / "ptb.valid.txt").exists()


def load(name: str) -> tuple[ModuleType, dict]:
    """The needle program and the namespace of its PyTorch twin (run from its docstring)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "from_pytorch" /
                                                  f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    twin_text = module.__doc__.split("PyTorch twin::", 1)[1]
    namespace: dict = {"__name__": f"{name}_torch_twin"}
    exec(compile(textwrap.dedent(twin_text), f"{name} (PyTorch twin)", "exec"), namespace)
    return module, namespace


def _has_param_groups() -> bool:
    try:
        opt = ndl.optim.Adam([{"params": [nn.Parameter(ndl.Tensor([1.0]))], "lr": 0.1}])
    except Exception:
        return False
    return hasattr(opt, "param_groups") and hasattr(opt, "zero_grad")


# ---------------------------------------------------------------------------- custom op
def test_custom_op_gradcheck_and_hessian_vector_product_match_torch():
    ours, twin = load("custom_op")
    rng = np.random.default_rng(0)
    x, w, v = (rng.standard_normal(6) * 3 for _ in range(3))
    assert ndl.gradcheck(ours.softplus, x) and ndl.gradgradcheck(ours.softplus, x)
    assert ndl.testing.gradcheck(lambda t: ndl.sigmoid(t) * ours.softplus(t), x)
    f, grad, hv = ours.hessian_vector_product(x, w, v)
    tf, tgrad, thv = twin["hessian_vector_product"](*(torch.tensor(a) for a in (x, w, v)))
    np.testing.assert_allclose(f, tf.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, tgrad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv, thv.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ndl.GradcheckError, match="gradient of input 0"):
        class Wrong(ours.Softplus):
            def gradient(self, out_grad, node):
                return out_grad * 0.5
        ndl.gradcheck(lambda t: Wrong()(t), x)


# ---------------------------------------------------------------------------- LSTM LM
def _lstm_pair(vocab: int, dtype: str = "float32"):
    ours_module, twin = load("lstm_lm")
    torch.manual_seed(0)
    theirs = twin["LanguageModel"](vocab)
    if dtype == "float64":
        theirs = theirs.double()
    ours = nn.copy_from_torch(ours_module.LanguageModel(vocab, dtype=dtype), theirs)
    return ours_module, twin, ours, theirs


@pytest.mark.skipif(not HAS_PTB, reason="needs $NEEDLE_DATA/ptb")
def test_lstm_accumulation_over_two_micro_batches_equals_one_double_batch():
    module, twin, ours, theirs = _lstm_pair(50, dtype="float64")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 50, (8, 7)), rng.integers(0, 50, (8, 7))
    loss_fn = nn.CrossEntropyLoss()
    module.accumulated_step(ours, loss_fn, x, y)
    accumulated = [p.grad.numpy().copy() for p in ours.parameters()]
    ours.zero_grad()
    loss_fn(ours(x), ndl.Tensor(y.reshape(-1))).backward()
    for got, want in zip(accumulated, (p.grad.numpy() for p in ours.parameters())):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    ours.zero_grad()
    twin["accumulated_step"](theirs, torch.nn.CrossEntropyLoss(), torch.tensor(x),
                             torch.tensor(y))
    theirs_grads = {n: p.grad.numpy() for n, p in theirs.named_parameters()}
    np.testing.assert_allclose(accumulated[0], theirs_grads["embedding.weight"], atol=1e-10)
    np.testing.assert_allclose(accumulated[-2], theirs_grads["decoder.weight"].T, atol=1e-10)


@pytest.mark.skipif(not HAS_PTB, reason="needs $NEEDLE_DATA/ptb")
def test_lstm_lm_trains_like_torch_on_ptb():
    module = load("lstm_lm")[0]
    train_ids, test_ids, vocab = module.load_ptb(3000)
    module, twin, ours, theirs = _lstm_pair(vocab)
    our_losses = module.train(ours, module.batches(train_ids, 8, 20))
    their_losses = twin["train"](theirs, module.batches(train_ids, 8, 20))
    assert len(our_losses) == len(their_losses) > 10
    np.testing.assert_allclose(our_losses, their_losses, rtol=2e-3)
    assert our_losses[-1] < our_losses[0] - 0.3  # it learns
    ppl = module.perplexity(ours, module.batches(test_ids[:2000], 8, 20))
    their_ppl = twin["perplexity"](theirs, module.batches(test_ids[:2000], 8, 20))
    np.testing.assert_allclose(ppl, their_ppl, rtol=0.01)


# ---------------------------------------------------------------------------- CNN
def _cnn_run(train_size: int, epochs: int):
    if not _has_param_groups():
        pytest.skip("ndl.optim param_groups / zero_grad (issue 9) are missing in this branch")
    module, twin = load("cnn_mnist")
    split = module.load_split(train_size, 2000)
    torch.manual_seed(0)
    theirs = twin["Net"]()
    ours = nn.copy_from_torch(module.Net(), theirs)
    np.random.seed(0)
    our_history = module.train(ours, split, epochs, shuffle=False)
    their_history = twin["train"](theirs, split, epochs, shuffle=False)
    return our_history, their_history


@pytest.mark.skipif(not HAS_MNIST, reason="needs $NEEDLE_DATA/mnist")
def test_cnn_first_epoch_follows_torch():
    ours, theirs = _cnn_run(1000, 1)
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-3)
    assert abs(ours["accuracy"] - theirs["accuracy"]) <= 0.01


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MNIST, reason="needs $NEEDLE_DATA/mnist")
def test_cnn_on_the_mnist_split_matches_torch_accuracy_within_one_point():
    ours, theirs = _cnn_run(4000, 2)
    assert theirs["accuracy"] > 0.85
    assert abs(ours["accuracy"] - theirs["accuracy"]) <= 0.01
    np.testing.assert_allclose(ours["lrs"], theirs["lrs"])
