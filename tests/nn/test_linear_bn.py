"""Linear → BatchNorm1d (→ ReLU) children of a Sequential run as one fused node in training:
bitwise the layers run apart (outputs, every gradient, running statistics, second
derivatives); run apart wherever fusing could differ."""

from __future__ import annotations

import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.nn import linear_bn
from spies import count_calls


def _count_fused(monkeypatch) -> list[int]:
    return count_calls(monkeypatch, linear_bn.ops, "linear_batch_norm")


def _mlp_resnet(dtype: str) -> nn.Module:
    np.random.seed(7)
    model = ndl.models.MLPResNet(12, hidden_dim=8, num_blocks=2, num_classes=3, drop_prob=0.0)
    if dtype == "float64":
        for p in model.parameters():
            p.data = ndl.Tensor(p.numpy().astype(np.float64), dtype="float64")
    return model


def _step(model: nn.Module, dtype: str, second: bool, after_backward=lambda: None
          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    x = ndl.Tensor(np.random.default_rng(8).standard_normal((6, 12)), dtype=dtype,
                   requires_grad=True)
    out = model(x)
    weights = ndl.Tensor(np.random.default_rng(9).standard_normal(out.shape), dtype=dtype)
    (out * weights).sum().backward(create_graph=second)
    after_backward()
    values = [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]
    norms = [m for m in model.submodules() if isinstance(m, nn.BatchNorm1d)]
    values += [v.numpy() for m in norms for v in (m.running_mean, m.running_var)]
    if second:
        for p in model.parameters():
            p.grad = None
        (x.grad * x.grad).sum().backward()  # through the gradient ops
        reached = [p.grad for p in model.parameters() if p.grad is not None]
        assert len(reached) > 10
        return values, [g.numpy() for g in reached]
    return values, []


@ndl.reference_mode(False)
@pytest.mark.parametrize("dtype, second", [("float32", False), ("float64", False),
                                           ("float64", True)])
def test_mlp_resnet_blocks_fused_equal_the_layers_apart_bitwise(dtype, second, monkeypatch):
    """MLP-ResNet's Linear-BatchNorm1d pairs (one of each block's two with a ReLU): four
    fused nodes for two blocks, the same numbers as with ``Sequential.fusions`` emptied, to
    the bit; second derivatives sum their terms in another order (1e-14 apart). A backward
    pass that records nothing takes the gradient on arrays (``first_derivatives``); one
    with ``create_graph`` records the ops."""
    from needle.ops.fused.linear_bn import LinearBatchNorm

    calls = _count_fused(monkeypatch)
    on_arrays = count_calls(monkeypatch, LinearBatchNorm, "first_derivatives")
    first_pass = []
    fused = _step(_mlp_resnet(dtype), dtype, second, lambda: first_pass.append(on_arrays[0]))
    assert calls[0] == 4 and first_pass == [0 if second else 4]
    monkeypatch.setattr(nn.Sequential, "fusions", {})
    plain = _step(_mlp_resnet(dtype), dtype, second)
    assert calls[0] == 4
    assert len(fused[0]) == len(plain[0]) and len(fused[1]) == len(plain[1])
    for a, b in zip(fused[0], plain[0]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fused[1], plain[1]):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@ndl.reference_mode(False)
@pytest.mark.parametrize("case", ["eval", "hook", "reference", "no bias", "subclass"])
def test_linear_batchnorm_children_run_apart_where_fusing_could_differ(case, monkeypatch):
    calls = _count_fused(monkeypatch)

    class MyNorm(nn.BatchNorm1d):
        pass

    norm = MyNorm(4) if case == "subclass" else nn.BatchNorm1d(4)
    model = nn.Sequential(nn.Linear(5, 4, bias=case != "no bias"), norm, nn.ReLU())
    seen = []
    if case == "eval":
        model.eval()
    if case == "hook":
        model[2].register_forward_hook(lambda module, args, out: seen.append(1))
    with ndl.reference_mode(case == "reference"):
        out = model(ndl.Tensor(np.random.default_rng(10).standard_normal((6, 5)),
                               dtype="float32"))
    assert calls[0] == 0 and out.shape == (6, 4)
    assert seen == ([1] if case == "hook" else [])
