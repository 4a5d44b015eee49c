"""Every fused primitive agrees with the composition it replaces (``@replaces``): values,
first derivatives and second derivatives, in float64, on hypothesis-drawn shapes.

The derivatives are taken through ``backward``: the first as the gradient of <f(x), p>
for a random projection p, the second as the gradient of <first derivative, q>.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import needle as ndl
from needle import ops
from strategies import fast, seeds


def derivatives(fn: Callable[..., Any], arrays: list[np.ndarray],
                seed: int) -> list[list[np.ndarray]]:
    """[values], first and second derivatives of fn at ``arrays`` (float64)."""
    rng = np.random.default_rng(seed)
    xs = [ndl.Tensor(a, dtype="float64") for a in arrays]
    out = fn(*xs)
    projection = ndl.Tensor(rng.standard_normal(out.shape), dtype="float64",
                            requires_grad=False)
    (out * projection).sum().backward(create_graph=True)
    first = [x.grad for x in xs]
    second_projections = [rng.standard_normal(x.shape) for x in xs]
    inner = ndl.autograd.sum_node_list(
        [(g * ndl.Tensor(q, dtype="float64", requires_grad=False)).sum()
         for g, q in zip(first, second_projections) if g is not None and g.requires_grad]
        or [ndl.Tensor(np.zeros(()), dtype="float64")])
    for x in xs:
        x.grad = None
    if inner.requires_grad:
        inner.backward()
    second = [np.zeros(x.shape) if x.grad is None else x.grad.numpy() for x in xs]
    return [[out.numpy()], [g.numpy() for g in first], second]


def check_agree(fn: Any, arrays: list[np.ndarray], seed: int, name: str,
                tol: float = 1e-8, **kwargs: Any) -> None:
    """fn.fused and fn.composed agree at ``arrays`` in value and two derivatives."""
    got = derivatives(lambda *xs: fn.fused(*xs, **kwargs), arrays, seed)
    want = derivatives(lambda *xs: fn.composed(*xs, **kwargs), arrays, seed)
    for order, (g_list, w_list) in enumerate(zip(got, want)):
        for i, (g, w) in enumerate(zip(g_list, w_list)):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol,
                                       err_msg=f"{name}: derivative {order}, input {i}")


def normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


@fast
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=seeds)
def test_activations_agree(shape, seed):
    x = normal(np.random.default_rng(seed), *shape) * 3
    check_agree(ops.sigmoid, [x], seed, "sigmoid")
    check_agree(ops.tanh, [x], seed, "tanh")
    check_agree(ops.relu, [x], seed, "relu")  # normal draws are never exactly at the kink


def test_sigmoid_composition_stays_finite_for_large_inputs():
    x = ndl.Tensor(np.array([-200.0, 0.0, 200.0], np.float32))
    ops.sigmoid.composed(x).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@fast
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data(), seed=seeds)
def test_softmax_agrees(shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = normal(np.random.default_rng(seed), *shape) * 3
    check_agree(ops.softmax, [x], seed, f"softmax axis {axis}", axis=axis)


@fast
@given(n=st.integers(1, 4), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       row_bias=st.booleans(), seed=seeds)
def test_linear_agrees(n, n_in, n_out, row_bias, seed):
    rng = np.random.default_rng(seed)
    bias = normal(rng, 1, n_out) if row_bias else normal(rng, n_out)
    check_agree(ops.linear, [normal(rng, n, n_in), normal(rng, n_in, n_out), bias], seed,
                "linear")


@fast
@given(n=st.integers(1, 5), classes=st.integers(1, 5),
       reduction=st.sampled_from(["mean", "sum", "none"]), seed=seeds)
def test_softmax_cross_entropy_agrees(n, classes, reduction, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    fn = ops.softmax_cross_entropy
    check_agree(fn, [normal(rng, n, classes) * 2], seed, f"cross-entropy {reduction}",
                labels=labels, reduction=reduction)


NORM_CASES = [((5, 3), (0,), 1), ((2, 3, 4), (2,), -1), ((3, 2, 2, 2), (0, 2, 3), 1),
              ((4, 6), (1,), -1)]


@pytest.mark.parametrize("shape, axes, channel_axis", NORM_CASES)
@pytest.mark.parametrize("affine", [False, True])
def test_normalize_agrees(shape, axes, channel_axis, affine):
    rng = np.random.default_rng(len(shape) + affine)
    x = normal(rng, *shape) * 2 + 0.5
    channels = shape[channel_axis]
    if not affine:
        check_agree(ops.normalize, [x], 1, f"normalize {shape} {axes}", tol=1e-7, axes=axes)
        return

    def fn(a: Any, w: Any, b: Any, use: Any) -> Any:
        return use(a, axes, 1e-5, w, b, channel_axis)

    fn.fused = lambda a, w, b: fn(a, w, b, ops.normalize.fused)  # type: ignore[attr-defined]
    fn.composed = lambda a, w, b: fn(a, w, b, ops.normalize.composed)  # type: ignore
    check_agree(fn, [x, normal(rng, channels), normal(rng, channels)], 2,
                f"normalize {shape} {axes} affine", tol=1e-7)


def test_batch_norm_statistics_agree():
    x = ndl.Tensor(np.random.default_rng(0).standard_normal((6, 3, 2, 2)), dtype="float64")
    fused = ops.batch_norm.fused(x, (0, 2, 3), 1e-5)
    composed = ops.batch_norm.composed(x, (0, 2, 3), 1e-5)
    for got, want in zip(fused, composed):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)


@st.composite
def conv_cases(draw: Any) -> tuple[int, ...]:
    """(n, size, c_in, c_out, kernel, stride, padding) with a kernel that fits."""
    kernel, stride = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, kernel - 1))
    size = draw(st.integers(max(kernel - 2 * padding, 1), 5))
    return (draw(st.integers(1, 2)), size, draw(st.integers(1, 3)), draw(st.integers(1, 3)),
            kernel, stride, padding)


@fast
@given(case=conv_cases(), bias=st.booleans(), seed=seeds)
def test_conv_agrees(case, bias, seed):
    n, size, c_in, c_out, kernel, stride, padding = case
    rng = np.random.default_rng(seed)
    arrays = [normal(rng, n, size, size, c_in), normal(rng, kernel, kernel, c_in, c_out)]
    if bias:
        arrays.append(normal(rng, c_out))

    def fn(a: Any, w: Any, *b: Any, use: Any) -> Any:
        return use(a, w, stride, padding, *b)

    fn.fused = lambda *xs: fn(*xs, use=ops.conv.fused)  # type: ignore[attr-defined]
    fn.composed = lambda *xs: fn(*xs, use=ops.conv.composed)  # type: ignore[attr-defined]
    check_agree(fn, arrays, seed, f"conv {case}")


@fast
@given(case=conv_cases(), seed=seeds)
def test_conv_transpose_and_conv_weight_agree(case, seed):
    n, size, c_in, c_out, kernel, stride, padding = case
    rng = np.random.default_rng(seed)
    out = (size + 2 * padding - kernel) // stride + 1
    extra = (size + 2 * padding - kernel) % stride
    g, w = normal(rng, n, out, out, c_out), normal(rng, kernel, kernel, c_in, c_out)
    check_agree(ops.conv_transpose, [g, w], seed, f"conv_transpose {case}", stride=stride,
                padding=padding, output_padding=extra)
    a = normal(rng, n, size, size, c_in)
    check_agree(ops.conv_weight, [a, g], seed, f"conv_weight {case}", kernel_size=kernel,
                stride=stride, padding=padding)


@fast
@given(n=st.integers(1, 2), size=st.integers(2, 5), c=st.integers(1, 2),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), data=st.data(), seed=seeds)
def test_pooling_agrees(n, size, c, kernel, stride, data, seed):
    kernel = min(kernel, size)
    padding = data.draw(st.integers(0, kernel // 2))
    x = normal(np.random.default_rng(seed), n, size, size, c)
    for fn in (ops.max_pool2d, ops.avg_pool2d):
        check_agree(fn, [x], seed, f"{fn.__name__} k{kernel} s{stride} p{padding}",
                    kernel_size=kernel, stride=stride, padding=padding)


def test_every_fused_function_names_its_composition():
    fused = [ops.sigmoid, ops.tanh, ops.relu, ops.softmax, ops.linear, ops.softmax_cross_entropy,
             ops.normalize, ops.batch_norm, ops.conv, ops.conv_transpose, ops.conv_weight,
             ops.max_pool2d, ops.avg_pool2d]
    for fn in fused:
        assert fn.composed.__module__.startswith("needle.ops.") and \
            ".fused" not in fn.composed.__module__, fn
        assert fn.fused.__module__.startswith("needle.ops.fused."), fn


def _grads_of_first_call(op: Any, first: list[np.ndarray], second: list[np.ndarray]) -> Any:
    """Gradients of sum(op(first)) after ``op`` was called again on ``second``."""
    xs = [ndl.Tensor(a, dtype="float64") for a in first]
    out = op(*xs)
    op(*[ndl.Tensor(a, dtype="float64") for a in second])  # the second call, before backward
    out = out if isinstance(out, ndl.Tensor) else out[0]
    out.sum().backward()
    return [x.grad.numpy() for x in xs]


STATEFUL_OPS = {
    "Conv": (lambda: ops.Conv(1, 1), [(2, 4, 4, 3), (3, 3, 3, 2)]),
    "SoftmaxCrossEntropy": (lambda: ops.SoftmaxCrossEntropy(np.array([0, 2, 1]), "mean"),
                            [(3, 4)]),
    "Normalize": (lambda: ops.Normalize((0,), 1e-5, 1), [(5, 3)]),
    "Normalize affine": (lambda: ops.Normalize((0,), 1e-5, 1), [(5, 3), (3,), (3,)]),
}


@pytest.mark.parametrize("name", sorted(STATEFUL_OPS))
def test_an_op_instance_can_be_called_twice(name):
    """What an op's gradient needs from its forward pass lives on the output node, so a
    second call of the same instance leaves the first call's gradient intact."""
    make, shapes = STATEFUL_OPS[name]
    rng = np.random.default_rng(0)
    first = [rng.standard_normal(s) for s in shapes]
    second = [rng.standard_normal(s) * 3 + 1 for s in shapes]
    reused = _grads_of_first_call(make(), first, second)
    fresh_op = make()
    xs = [ndl.Tensor(a, dtype="float64") for a in first]
    fresh_op(*xs).sum().backward()
    for got, x in zip(reused, xs):
        np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
