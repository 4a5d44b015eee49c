"""ndl.gradcheck / gradgradcheck and the cs231n helpers: pass correct ops, catch wrong ones."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle.autograd import TensorOp
from needle.gradcheck import (GradcheckError, eval_numerical_gradient,
                              eval_numerical_gradient_array, grad_check_sparse, rel_error)


class _OffExp(TensorOp):
    """exp(x) whose gradient is off by ``factor`` (1 % by default)."""

    def __init__(self, factor=1.01):
        self.factor = factor

    def compute(self, a):
        return a.exp()

    def gradient(self, out_grad, node):
        return out_grad * node * self.factor


class _OffSecondDerivative(TensorOp):
    """x**3 / 3 with the right first derivative x**2 written as x * x.detach(): the second
    derivative comes out x instead of 2x."""

    def compute(self, a):
        return a * a * a / 3

    def gradient(self, out_grad, node):
        x = node.inputs[0]
        return out_grad * x * x.detach()


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_gradcheck_passes_correct_ops():
    x, w = _rand(3, 4), _rand(4, 2, seed=1)
    assert ndl.gradcheck(lambda a, b: (a @ b).tanh(), ndl.Tensor(x), ndl.Tensor(w))
    assert ndl.gradcheck(lambda a: ndl.logsumexp(a, axes=1), x)
    assert ndl.gradcheck(lambda a: ndl.split(a, 1), x)
    assert ndl.gradcheck(lambda a: (a * a).sum(), x, fast_mode=True)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(0, 2**16))
@settings(max_examples=15, deadline=None)
def test_gradcheck_passes_composed_ops_on_drawn_shapes(shape, seed):
    x = _rand(*shape, seed=seed)
    assert ndl.gradcheck(lambda a: (a.exp() * a).sum(axes=0) / (1 + a * a).sum(), x)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_catches_a_gradient_off_by_one_percent(fast_mode):
    x = ndl.Tensor(_rand(2, 3))
    with pytest.raises(GradcheckError) as error:
        ndl.gradcheck(lambda a: _OffExp()(a).sum(), x, fast_mode=fast_mode)
    message = str(error.value)
    assert "input 0" in message and "relative error" in message
    if not fast_mode:
        assert "at element (0, 0)" in message
        want = np.exp(x.numpy()[0, 0])
        assert f"{want * 1.01:.6}"[:6] in message and f"{want:.6}"[:6] in message
    assert not ndl.gradcheck(lambda a: _OffExp()(a), x, fast_mode=fast_mode,
                             raise_exception=False)


class _OffAtOneElement(_OffExp):
    """exp(x) on a 2x2 input whose gradient is 2 % off at element (1, 1) only."""

    def gradient(self, out_grad, node):
        factor = np.ones(node.shape)
        factor[1, 1] = 1.02
        return out_grad * node * ndl.Tensor(factor, dtype="float64")


def test_gradcheck_names_the_right_input_and_element():
    x, y = _rand(3), _rand(2, 2)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 2\)\) differs at element "
                                             r"\(1, 1\)"):
        ndl.gradcheck(lambda a, b: (a * 2).sum() + _OffAtOneElement()(b).sum(), x, y)


def test_gradcheck_casts_to_float64_and_leaves_inputs_alone():
    x = ndl.Tensor(_rand(3, 3), dtype="float32")
    before = x.numpy().copy()
    seen = []
    ndl.gradcheck(lambda a: seen.append(a.dtype) or (a * a).sum(), x)
    assert set(seen) == {np.dtype("float64")}
    assert x.dtype == np.float32 and x.grad is None
    np.testing.assert_array_equal(x.numpy(), before)


def test_gradcheck_passes_integer_inputs_through_and_checks_the_rest():
    logits, labels = _rand(4, 5), np.array([0, 3, 1, 4])
    y = ndl.Tensor(labels, requires_grad=False)
    assert ndl.gradcheck(lambda z, t: ndl.nn.SoftmaxLoss()(z, t), logits, y)


def test_gradcheck_on_an_integer_tensor_is_a_clear_error():
    with pytest.raises(TypeError, match="at least one floating-point input.*input 0: Tensor "
                                        "of dtype int64"):
        ndl.gradcheck(lambda a: a * 2, ndl.Tensor(np.arange(3)))


def test_gradgradcheck_passes_correct_second_derivatives():
    x = _rand(2, 3)
    assert ndl.gradgradcheck(lambda a: (a * a * a).sum(), x)
    assert ndl.gradgradcheck(lambda a: a.tanh() * a.exp(), x)
    assert ndl.gradgradcheck(lambda a, b: (a @ b).sigmoid(), x, _rand(3, 2, seed=1))


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = ndl.Tensor(_rand(4) + 3)
    assert ndl.gradcheck(lambda a: _OffSecondDerivative()(a), x)  # first derivative is right
    with pytest.raises(GradcheckError, match="input 0"):
        ndl.gradgradcheck(lambda a: _OffSecondDerivative()(a), x)


def test_eval_numerical_gradient_matches_the_derivative_for_arrays_and_tensors(capsys):
    x = _rand(2, 3)
    grad = eval_numerical_gradient(lambda a: np.sum(a ** 3), x, verbose=True)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-6)
    assert "(0, 0)" in capsys.readouterr().out
    t = ndl.Tensor(x.copy(), dtype="float64")
    grad = eval_numerical_gradient(lambda a: (a * a * a).sum(), t, verbose=False)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-6)
    np.testing.assert_array_equal(t.numpy(), x)


def test_eval_numerical_gradient_sees_in_place_moves_like_cs231n():
    w = ndl.Tensor(_rand(3), dtype="float64")
    model_loss = lambda _: (w * w).sum()  # noqa: E731  (ignores its argument, as cs231n's do)
    np.testing.assert_allclose(eval_numerical_gradient(model_loss, w, verbose=False),
                               2 * w.numpy(), rtol=1e-6)


def test_eval_numerical_gradient_array_and_rel_error():
    x, dout = _rand(3, 4), _rand(3, 4, seed=1)
    num = eval_numerical_gradient_array(lambda a: np.tanh(a), x, dout)
    analytic = dout * (1 - np.tanh(x) ** 2)
    assert rel_error(num, analytic) < 1e-7
    t = ndl.Tensor(x, dtype="float64")
    num_t = eval_numerical_gradient_array(lambda a: a.tanh(), t, ndl.Tensor(dout))
    assert rel_error(num_t, analytic) < 1e-7
    assert rel_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 2.1)
    assert rel_error(ndl.Tensor([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0


def test_grad_check_sparse_prints_small_errors_for_a_right_gradient(capsys):
    x = _rand(5, 4)
    grad_check_sparse(lambda a: np.sum(np.sin(a)), x, np.cos(x), num_checks=4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    errors = [float(line.rsplit(" ", 1)[1]) for line in lines]
    assert all(e < 1e-8 for e in errors)
    grad_check_sparse(lambda a: np.sum(np.sin(a)), x, 1.01 * np.cos(x), num_checks=2)
    wrong = [float(line.rsplit(" ", 1)[1]) for line in capsys.readouterr().out.splitlines()]
    assert all(4e-3 < e < 6e-3 for e in wrong)
