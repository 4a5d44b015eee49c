"""conv, conv_transpose, conv_weight, im2col/col2im, pooling, flip and dilate against
PyTorch (NHWC <-> NCHW and weight layouts converted), finite differences and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import needle as ndl
from oracles import check_finite_differences, check_torch

SETTINGS = settings(max_examples=20, deadline=None)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """x (N, H, W, C) as a contiguous NCHW tensor. The permuted view alone is a
    channels-last tensor, on which PyTorch 2.13's CPU conv_transpose2d (forward and
    backward) corrupts the heap for some shapes in a row: stride 2, padding 2, a 3x3 kernel
    on 3x9 inputs, then a 1x1 stride-2 one, crashed a later allocation in 2 of 3 runs,
    with no needle code running; with contiguous inputs, none in 3,000 drawn cases."""
    return x.permute(0, 3, 1, 2).contiguous()


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def torch_weight(w: torch.Tensor) -> torch.Tensor:
    """needle's K×K×C_in×C_out conv weight as PyTorch's C_out×C_in×K×K."""
    return w.permute(3, 2, 0, 1).contiguous()


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    """Random conv shapes: kernels 1-7, strides 1-3, paddings 0-3, non-square images."""
    case = dict(n=draw(st.integers(1, 3)), h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)),
                c_in=draw(st.integers(1, 4)), c_out=draw(st.integers(1, 4)),
                k=draw(st.integers(1, 7)), stride=draw(st.integers(1, 3)),
                padding=draw(st.integers(0, 3)), seed=draw(st.integers(0, 2**16)))
    assume(case["k"] <= min(case["h"], case["w"]) + 2 * case["padding"])
    return case


def _arrays(case: dict, *shapes: tuple[int, ...], dtype: str = "float32") -> list[np.ndarray]:
    rng = np.random.default_rng(case["seed"])
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _out_size(size: int, case: dict) -> int:
    return (size + 2 * case["padding"] - case["k"]) // case["stride"] + 1


# ---------------------------------------------------------------------- conv
@SETTINGS
@given(conv_cases())
def test_conv_matches_torch(case):
    s, p = case["stride"], case["padding"]
    a, b = _arrays(case, (case["n"], case["h"], case["w"], case["c_in"]),
                   (case["k"], case["k"], case["c_in"], case["c_out"]))
    check_torch(lambda x, w: ndl.conv(x, w, stride=s, padding=p),
                lambda x, w: nhwc(F.conv2d(nchw(x), torch_weight(w), stride=s, padding=p)),
                a, b, rtol=1e-4, atol=1e-4, name=f"conv {case}")


@SETTINGS
@given(conv_cases())
def test_conv_with_bias_matches_torch(case):
    s, p = case["stride"], case["padding"]
    a, b, bias = _arrays(case, (case["n"], case["h"], case["w"], case["c_in"]),
                         (case["k"], case["k"], case["c_in"], case["c_out"]), (case["c_out"],))
    check_torch(lambda x, w, c: ndl.conv(x, w, stride=s, padding=p, bias=c),
                lambda x, w, c: nhwc(F.conv2d(nchw(x), torch_weight(w), c, stride=s,
                                              padding=p)),
                a, b, bias, rtol=1e-4, atol=1e-4, name=f"conv with bias {case}")


@SETTINGS
@given(conv_cases(), st.data())
def test_conv_transpose_matches_torch(case, data):
    s, p = case["stride"], case["padding"]
    extra = data.draw(st.tuples(st.integers(0, s - 1), st.integers(0, s - 1)))
    g, b = _arrays(case, (case["n"], case["h"], case["w"], case["c_out"]),
                   (case["k"], case["k"], case["c_in"], case["c_out"]))
    assume(all((size - 1) * s - 2 * p + case["k"] + e >= 1
               for size, e in zip((case["h"], case["w"]), extra)))
    check_torch(lambda x, w: ndl.conv_transpose(x, w, s, p, extra),
                lambda x, w: nhwc(F.conv_transpose2d(nchw(x), torch_weight(w), stride=s,
                                                     padding=p, output_padding=extra)),
                g, b, rtol=1e-4, atol=1e-4, name=f"conv_transpose {case} {extra}")


@SETTINGS
@given(conv_cases())
def test_conv_weight_matches_torch(case):
    s, p, k = case["stride"], case["padding"], case["k"]
    shape = (case["n"], case["h"], case["w"], case["c_in"])
    a, g = _arrays(case, shape, (case["n"], _out_size(case["h"], case),
                                 _out_size(case["w"], case), case["c_out"]))
    t_shape = (case["n"], case["c_in"], case["h"], case["w"])
    check_torch(lambda x, y: ndl.ops.conv_weight(x, y, k, s, p),
                lambda x, y: torch.nn.grad.conv2d_weight(
                    nchw(x), (case["c_out"], case["c_in"], k, k), nchw(y), stride=s,
                    padding=p).permute(2, 3, 1, 0),
                a, g, rtol=1e-4, atol=1e-4, name=f"conv_weight {case} {t_shape}")


@pytest.mark.parametrize("shape, k, stride, padding", [
    ((2, 5, 4, 2), 3, 1, 1), ((1, 6, 7, 3), 2, 2, 0), ((2, 4, 5, 1), 3, 3, 2),
    ((1, 3, 3, 2), 1, 2, 3), ((1, 4, 3, 2), 2, 1, 3)])
def test_conv_ops_match_finite_differences(shape, k, stride, padding):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    w = rng.standard_normal((k, k, shape[3], 3))
    out = ndl.conv(ndl.Tensor(a), ndl.Tensor(w), stride, padding)
    g = rng.standard_normal(out.shape)
    extra = tuple((size + 2 * padding - k) % stride for size in shape[1:3])
    check_finite_differences(lambda x, y: ndl.conv(x, y, stride, padding), a, w, name="conv")
    check_finite_differences(lambda x, y, c: ndl.conv(x, y, stride, padding, bias=c), a, w,
                             rng.standard_normal(3), name="conv with bias")
    check_finite_differences(lambda x, y: ndl.conv_transpose(x, y, stride, padding, extra),
                             g, w, name="conv_transpose")
    check_finite_differences(lambda x, y: ndl.ops.conv_weight(x, y, k, stride, padding),
                             a, g, name="conv_weight")


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), (3, 2)])
def test_conv_second_derivatives_match_torch(stride, padding):
    """d/d(a, w) of |dL/da|² + |dL/dw|² for L = sum(conv(a, w) * g), with create_graph."""
    rng = np.random.default_rng(1)
    a, w = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 3, 3, 2))
    out_shape = ndl.conv(ndl.Tensor(a), ndl.Tensor(w), stride, padding).shape
    g = rng.standard_normal(out_shape)

    x, y = ndl.Tensor(a, dtype="float64"), ndl.Tensor(w, dtype="float64")
    ndl.conv(x, y, stride, padding).backward(ndl.Tensor(g, dtype="float64"),
                                             create_graph=True)
    grad_x, grad_y = x.grad, y.grad
    ((grad_x * grad_x).sum() + (grad_y * grad_y).sum()).backward()

    tx, ty = (torch.tensor(v, requires_grad=True) for v in (a, w))
    out = nhwc(F.conv2d(nchw(tx), torch_weight(ty), stride=stride, padding=padding))
    gx, gy = torch.autograd.grad((out * torch.tensor(g)).sum(), (tx, ty), create_graph=True)
    ((gx * gx).sum() + (gy * gy).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_conv_reads_non_compact_inputs():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)  # NCHW in memory
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    view = ndl.Tensor(a).permute((0, 2, 3, 1))
    compact = ndl.Tensor(np.ascontiguousarray(a.transpose(0, 2, 3, 1)))
    for padding in (0, 1):
        np.testing.assert_allclose(ndl.conv(view, ndl.Tensor(w), 1, padding).numpy(),
                                   ndl.conv(compact, ndl.Tensor(w), 1, padding).numpy(),
                                   rtol=1e-6, atol=1e-6)


def test_conv_rejects_mismatched_channels():
    a, w = ndl.Tensor(np.zeros((1, 5, 5, 3))), ndl.Tensor(np.zeros((3, 3, 4, 2)))
    with pytest.raises(ValueError, match="3 channels.*C_in=4"):
        ndl.conv(a, w)


def test_conv_rejects_a_kernel_larger_than_the_padded_input():
    a, w = ndl.Tensor(np.zeros((1, 4, 6, 2))), ndl.Tensor(np.zeros((7, 7, 2, 2)))
    with pytest.raises(ValueError, match="kernel 7x7 is larger than the padded input 6x8"):
        ndl.conv(a, w, padding=1)


def test_conv_rejects_a_bias_of_the_wrong_shape():
    a, w = ndl.Tensor(np.zeros((1, 5, 5, 3))), ndl.Tensor(np.zeros((3, 3, 3, 2)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\) .* got \(3,\)"):
        ndl.conv(a, w, bias=ndl.Tensor(np.zeros(3)))


def test_conv_rejects_a_non_4d_input():
    with pytest.raises(ValueError, match=r"4-D input \(N, H, W, C\), got shape \(5, 5, 3\)"):
        ndl.conv(ndl.Tensor(np.zeros((5, 5, 3))), ndl.Tensor(np.zeros((3, 3, 3, 2))))


@pytest.mark.parametrize("stride, padding", [(0, 1), (1, -1), (1.5, 0)])
def test_conv_rejects_bad_stride_or_padding(stride, padding):
    with pytest.raises(ValueError, match="stride|padding"):
        ndl.conv(ndl.Tensor(np.zeros((1, 5, 5, 1))), ndl.Tensor(np.zeros((3, 3, 1, 1))),
                 stride, padding)


def test_conv_transpose_rejects_output_padding_not_below_stride():
    g, w = ndl.Tensor(np.zeros((1, 3, 3, 2))), ndl.Tensor(np.zeros((3, 3, 1, 2)))
    with pytest.raises(ValueError, match="output_padding must be in"):
        ndl.conv_transpose(g, w, stride=2, output_padding=2)


# ---------------------------------------------------------------------- pooling
@st.composite
def pool_cases(draw: st.DrawFn) -> dict:
    k = draw(st.integers(1, 4))
    case = dict(n=draw(st.integers(1, 3)), h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)),
                c=draw(st.integers(1, 3)), k=k, stride=draw(st.integers(1, 3)),
                padding=draw(st.integers(0, k // 2)), seed=draw(st.integers(0, 2**16)))
    assume(k <= min(case["h"], case["w"]) + 2 * case["padding"])
    return case


@SETTINGS
@given(pool_cases())
def test_max_pool2d_matches_torch(case):
    k, s, p = case["k"], case["stride"], case["padding"]
    (a,) = _arrays(case, (case["n"], case["h"], case["w"], case["c"]))
    check_torch(lambda x: ndl.max_pool2d(x, k, s, p),
                lambda x: nhwc(F.max_pool2d(nchw(x), k, s, p)), a, name=f"max_pool2d {case}")


@SETTINGS
@given(pool_cases())
def test_avg_pool2d_matches_torch(case):
    k, s, p = case["k"], case["stride"], case["padding"]
    (a,) = _arrays(case, (case["n"], case["h"], case["w"], case["c"]))
    check_torch(lambda x: ndl.avg_pool2d(x, k, s, p),
                lambda x: nhwc(F.avg_pool2d(nchw(x), k, s, p)), a, atol=1e-6,
                name=f"avg_pool2d {case}")


def test_pool_default_stride_is_the_kernel_size():
    a = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
    got = ndl.max_pool2d(ndl.Tensor(a), 2).numpy()
    want = a.reshape(2, 2, 2, 3, 2, 1).max(axis=(2, 4))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k, stride, padding", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_pooling_and_windows_match_finite_differences(k, stride, padding):
    a = np.random.default_rng(3).standard_normal((2, 5, 4, 2))
    check_finite_differences(lambda x: ndl.max_pool2d(x, k, stride, padding), a, name="max")
    check_finite_differences(lambda x: ndl.avg_pool2d(x, k, stride, padding), a, name="avg")
    check_finite_differences(lambda x: ndl.ops.im2col(x, k, stride, padding), a, name="im2col")
    cols = ndl.ops.im2col(ndl.Tensor(a), k, stride, padding).numpy()
    check_finite_differences(lambda c: ndl.ops.col2im(c, a.shape, stride, padding), cols,
                             name="col2im")


def test_im2col_windows_match_numpy():
    a = np.random.default_rng(4).standard_normal((2, 6, 5, 3)).astype(np.float32)
    got = ndl.ops.im2col(ndl.Tensor(a), 3, stride=2, padding=1).numpy()
    padded = np.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    np.testing.assert_array_equal(got, windows[:, ::2, ::2].transpose(0, 1, 2, 4, 5, 3))


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(a), c> = <a, col2im(c)> for random a and c."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 7, 6, 3))
    cols = ndl.ops.im2col(ndl.Tensor(a), 3, stride=2, padding=1).numpy()
    c = rng.standard_normal(cols.shape)
    back = ndl.ops.col2im(ndl.Tensor(c, dtype="float64"), a.shape, stride=2, padding=1).numpy()
    assert np.isclose((cols * c).sum(), (a * back).sum())


def test_pooling_rejects_bad_arguments():
    a = ndl.Tensor(np.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match="at most half the kernel size"):
        ndl.max_pool2d(a, 2, padding=2)
    with pytest.raises(ValueError, match="kernel 5x5 is larger than the padded input 4x4"):
        ndl.avg_pool2d(a, 5)
    with pytest.raises(ValueError, match="4-D input"):
        ndl.max_pool2d(ndl.Tensor(np.zeros((4, 4, 2))), 2)


# ---------------------------------------------------------------------- flip, dilate
@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
def test_flip_matches_torch(shape, data):
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    check_torch(lambda x: ndl.flip(x, axes), lambda x: torch.flip(x, axes), a, name="flip")


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 3), st.data())
def test_dilate_and_undilate_match_numpy(shape, dilation, data):
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    a = np.random.default_rng(seed).standard_normal(shape)
    step = dilation + 1
    want = np.zeros([d * step if i in axes else d for i, d in enumerate(shape)])
    want[tuple(slice(None, None, step) if i in axes else slice(None)
               for i in range(len(shape)))] = a
    got = ndl.dilate(ndl.Tensor(a, dtype="float64"), axes, dilation)
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(ndl.undilate(got, axes, dilation).numpy(), a)
    check_finite_differences(lambda x: ndl.dilate(x, axes, dilation), a, name="dilate")
    check_finite_differences(lambda x: ndl.undilate(x, axes, dilation), want, name="undilate")


@pytest.mark.parametrize("size, kernel, stride, padding, taps", [
    (1, 3, 1, 1, (1, 1, 0)),   # a 1x1 map under a 3x3 kernel: only the centre tap works
    (2, 3, 2, 1, (1, 2, 0)),   # ResNet9's last stride-2 conv: a 2x2 tap block, no padding
    (4, 3, 2, 1, (0, 3, 1)),   # every tap meets the input: the whole kernel
    (3, 3, 1, 2, (0, 3, 2)),   # cropping would need uneven padding: the whole kernel
])
def test_useful_taps(size: int, kernel: int, stride: int, padding: int,
                     taps: tuple[int, int, int]) -> None:
    from needle.ops.fused.conv import _useful_taps

    assert _useful_taps(size, kernel, stride, padding) == taps


@pytest.mark.parametrize("size, stride", [(1, 1), (2, 2), (2, 1), (3, 3)])
def test_conv_on_maps_smaller_than_the_kernel_matches_torch(size: int, stride: int) -> None:
    """Small maps take the cropped-kernel path; the unused taps still get zero gradients."""
    rng = np.random.default_rng(size * 10 + stride)
    x = rng.standard_normal((2, size, size, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    check_torch(lambda a, b: ndl.conv(a, b, stride=stride, padding=1),
                lambda a, b: nhwc(F.conv2d(nchw(a), torch_weight(b), stride=stride, padding=1)),
                x, w, name=f"conv on {size}x{size}, stride {stride}")
    check_finite_differences(lambda a, b: ndl.conv(a, b, stride=stride, padding=1), x, w,
                             name="cropped conv")


@pytest.mark.parametrize("c_in, c_out, k, padding", [(4, 8, 3, 1), (3, 16, 5, 2), (16, 32, 3, 0)])
def test_conv_transpose_per_tap_products_equal_col2im(c_in, c_out, k, padding):
    """At stride 1 with few channels ConvTranspose adds one product per tap into its window
    (``_by_taps``) instead of scattering a K²-wide matrix (``_by_col2im``): the same sums."""
    from needle.backend_ndarray import array
    from needle.ops.fused.conv import TAPS_MAX_CHANNELS, ConvTranspose

    assert c_out <= TAPS_MAX_CHANNELS
    rng = np.random.default_rng(0)
    g = array(rng.standard_normal((2, 6, 7, c_out)).astype(np.float32))
    w = array(rng.standard_normal((k, k, c_in, c_out)).astype(np.float32))
    op = ConvTranspose(1, padding)
    shape = (2, 6 - 1 - 2 * padding + k, 7 - 1 - 2 * padding + k, c_in)
    by_taps = op._by_taps(g, w, shape).numpy()
    np.testing.assert_allclose(by_taps, op._by_col2im(g, w, shape).numpy(), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_array_equal(op.compute(g, w).numpy(), by_taps)  # the path taken
