"""ops.softmax_cross_entropy: forward, gradients and second derivatives."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle import ops
from oracles import check_finite_differences, check_torch


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch_and_has_second_derivatives(reduction):
    local = np.random.default_rng(0)
    logits, labels = local.standard_normal((5, 4)) * 3, local.integers(0, 4, 5)
    check_torch(lambda z: ops.softmax_cross_entropy(z, labels, reduction),
                lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(labels),
                                                            reduction=reduction),
                logits.astype(np.float32), rtol=1e-5, atol=1e-6, name="cross entropy")
    check_finite_differences(lambda z: ops.softmax_cross_entropy(z, labels, reduction), logits,
                             name="cross entropy")

    def gradient(z):
        with ndl.enable_grad():
            loss = ops.softmax_cross_entropy(z, labels, reduction)
            (loss * loss).sum().backward(create_graph=True)
        return z.grad

    check_finite_differences(gradient, logits, name="cross entropy second derivative")


def test_large_logits_stay_finite():
    logits = np.array([[3e4, -3e4, 0.0], [-1e4, 1e4, 2e4]], np.float32)
    check_torch(lambda z: ops.softmax_cross_entropy(z, [1, 0], "mean"),
                lambda z: torch.nn.functional.cross_entropy(z, torch.tensor([1, 0])),
                logits, rtol=1e-6, atol=1e-3, name="cross entropy large")



@ndl.reference_mode(False)  # the fused op's two paths (reference mode runs the composition)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_outside_the_unshifted_window_are_shifted(dtype):
    # sums of e^z of about e^60 (over 2^40), e^-100 (under 2^-40) and ordinary rows, mixed:
    # the first two kinds are taken again with the max shift, the others are not
    from needle.backend_ndarray import fused

    local = np.random.default_rng(2)
    logits = local.standard_normal((6, 5)).astype(dtype)
    logits[1] += 60
    logits[4] -= 100
    labels = local.integers(0, 5, 6)
    sums = np.exp(logits.astype(np.float64)).sum(axis=1)
    low, high = fused.UNSHIFTED_SUMS
    assert list((sums < low) | (sums > high)) == [False, True, False, False, True, False]
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12,
                                                                     "atol": 1e-14}
    for reduction in ("none", "mean"):
        check_torch(lambda z: ops.softmax_cross_entropy(z, labels, reduction),
                    lambda z: torch.nn.functional.cross_entropy(
                        z, torch.tensor(labels), reduction=reduction),
                    logits, name=f"cross entropy mixed rows {reduction}", **tol)

def test_per_row_by_default_and_bad_labels():
    logits = ndl.Tensor(np.zeros((2, 3), np.float32))
    assert ops.softmax_cross_entropy(logits, np.array([0, 2])).shape == (2,)
    np.testing.assert_allclose(ops.softmax_cross_entropy(logits, [0.0, 2.0]).numpy(),
                               np.log([3, 3]), rtol=1e-6)
    with pytest.raises(IndexError, match=r"\[0, 3\), got values in \[-1, 0\]"):
        ops.softmax_cross_entropy(logits, [-1, 0])
    with pytest.raises(ValueError, match="whole numbers"):
        ops.softmax_cross_entropy(logits, [0.5, 1.0])
    with pytest.raises(ValueError, match=r"labels \(N,\), got \(2, 3\) and \(3,\)"):
        ops.softmax_cross_entropy(logits, [0, 1, 2])


BLOCKS = {1: [(k, k + 1) for k in range(13)], 7: [(k, k + 1) for k in range(13)],
          30: [(0, 6), (6, 12), (12, 13)], 1 << 20: [(0, 13)]}


@ndl.reference_mode(False)  # the fused op (reference mode runs the composition)
@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_rows_in_cache_sized_blocks_match_torch(block, monkeypatch):
    # blocks of 1 and 6 rows, and the whole batch in one, all with PyTorch's values
    from needle.backend_ndarray import fused

    monkeypatch.setattr(fused, "BLOCK_ELEMENTS", block)
    assert fused.row_blocks(0, 13, 5, np) == BLOCKS[block]
    local = np.random.default_rng(1)
    logits, labels = local.standard_normal((13, 5)) * 3, local.integers(0, 5, 13)
    z = ndl.Tensor(logits, dtype="float64")
    loss = ops.softmax_cross_entropy(z, labels)
    loss.sum().backward()
    expected = torch.tensor(logits, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(expected, torch.tensor(labels),
                                                   reduction="none")
    torch_loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), torch_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(z.grad.numpy(), expected.grad.numpy(), rtol=1e-12, atol=1e-15)


@ndl.reference_mode(False)  # the fused op (reference mode runs the composition)
def test_gradient_written_over_the_saved_exps_only_when_the_graph_is_freed(monkeypatch):
    from needle.backend_ndarray import fused

    calls = []
    real = fused.softmax_cross_entropy_grad
    monkeypatch.setattr(fused, "softmax_cross_entropy_grad",
                        lambda *args, in_place: calls.append(in_place) or real(*args,
                                                                               in_place=in_place))
    local = np.random.default_rng(4)
    logits, labels = local.standard_normal((4, 6)), local.integers(0, 6, 4)
    z = ndl.Tensor(logits, dtype="float64")
    loss = ops.softmax_cross_entropy(z, labels, "mean")
    loss.backward(retain_graph=True)
    first = z.grad.numpy()
    loss.backward()  # the saved values were kept: the same gradient again, then freed
    np.testing.assert_array_equal(z.grad.numpy(), first)
    assert calls == [False, True]
    expected = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(expected, torch.tensor(labels)).backward()
    np.testing.assert_allclose(first, expected.grad.numpy(), rtol=1e-12, atol=1e-15)
    with pytest.raises(RuntimeError, match="a second time"):
        loss.backward()
