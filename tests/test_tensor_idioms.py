"""PyTorch's Tensor idioms (issue 10): methods, in-place updates, gradient accumulation and
the checks that make a custom op fail early. PyTorch is the oracle wherever it has the idiom."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import needle as ndl
from needle.autograd import Tensor, TensorOp
from oracles import check_torch
from strategies import fast, shapes

RNG = np.random.default_rng(0)


def _a(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


# ---------------------------------------------------------------------------- methods
@fast
@given(shape=shapes(1, 4), data=st.data())
def test_unsqueeze_squeeze_flatten_view_match_torch(shape, data):
    a = np.random.default_rng(len(shape)).standard_normal(shape)
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_torch(lambda x: x.unsqueeze(dim), lambda x: x.unsqueeze(dim), a, name="unsqueeze")
    sq = data.draw(st.integers(-len(shape), len(shape) - 1))
    check_torch(lambda x: x.squeeze(sq), lambda x: x.squeeze(sq), a, name="squeeze(dim)")
    check_torch(lambda x: x.squeeze(), lambda x: x.squeeze(), a, name="squeeze")
    start = data.draw(st.integers(0, len(shape) - 1))
    end = data.draw(st.integers(start, len(shape) - 1))
    check_torch(lambda x: x.flatten(start, end), lambda x: x.flatten(start, end), a,
                name="flatten")
    check_torch(lambda x: x.view(-1), lambda x: x.view(-1), a, name="view")


def test_expand_clone_abs_clamp_transpose_match_torch():
    a = _a(3, 1, 4)
    check_torch(lambda x: x.expand(2, 3, 5, 4), lambda x: x.expand(2, 3, 5, 4), a, name="expand")
    check_torch(lambda x: x.expand(-1, 6, -1), lambda x: x.expand(-1, 6, -1), a, name="expand-1")
    check_torch(lambda x: x.clone() * 2, lambda x: x.clone() * 2, a, name="clone")
    b = np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 2.5])
    check_torch(lambda x: x.abs(), lambda x: x.abs(), b, name="abs")  # gradient 0 at 0
    check_torch(lambda x: abs(x), lambda x: abs(x), b, name="__abs__")
    check_torch(lambda x: x.clamp(-0.5, 1.0), lambda x: x.clamp(-0.5, 1.0), b, name="clamp")
    check_torch(lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0), b, name="clamp(min)")
    check_torch(lambda x: ndl.clamp(x, max=0.3), lambda x: torch.clamp(x, max=0.3), b,
                name="ndl.clamp")
    check_torch(lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2), a, name="transpose")


def test_softmax_methods_and_torch_keywords_match_torch():
    a = _a(3, 4, 5)
    check_torch(lambda x: x.softmax(1), lambda x: x.softmax(1), a, name="softmax")
    check_torch(lambda x: x.log_softmax(dim=0), lambda x: x.log_softmax(dim=0), a,
                name="log_softmax")
    check_torch(lambda x: x.sum(dim=(0, 2), keepdim=True),
                lambda x: x.sum(dim=(0, 2), keepdim=True), a, name="sum(dim)")
    check_torch(lambda x: x.mean(dim=1), lambda x: x.mean(dim=1), a, name="mean(dim)")
    check_torch(lambda x: x.logsumexp(dim=2, keepdim=True),
                lambda x: x.logsumexp(dim=2, keepdim=True), a, name="logsumexp(dim)")
    check_torch(lambda x: ndl.summation(x, dim=1, keepdim=True),
                lambda x: torch.sum(x, dim=1, keepdim=True), a, name="ndl.summation(dim)")
    check_torch(lambda x: ndl.softmax(x, dim=0), lambda x: torch.softmax(x, dim=0), a,
                name="ndl.softmax(dim)")
    check_torch(lambda x, y: ndl.cat([x, y], dim=1), lambda x, y: torch.cat([x, y], dim=1),
                a, _a(3, 2, 5), name="cat")
    check_torch(lambda x, y: ndl.stack([x, y], dim=1), lambda x, y: torch.stack([x, y], dim=1),
                a, a + 1, name="stack(dim)")
    x = ndl.Tensor(a, dtype="float64")
    np.testing.assert_allclose(x.max(dim=1).numpy(), a.max(1))  # values only (the course's)
    with pytest.raises(TypeError, match="both"):
        x.sum(axes=0, dim=1)


def test_argmax_argmin_numel_dim_tolist_and_array_protocol():
    a = _a(3, 4)
    x = ndl.Tensor(a, dtype="float64")
    t = torch.tensor(a)
    for got, want in [(x.argmax(1), t.argmax(1)), (x.argmin(0), t.argmin(0)),
                      (ndl.argmax(x), torch.argmax(t)), (x.argmax(1, keepdim=True),
                                                         t.argmax(1, keepdim=True))]:
        assert got.dtype == np.int64 and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert x.numel() == t.numel() and x.dim() == t.dim() and x.size == 12  # size: numpy's
    assert x.tolist() == t.tolist()
    np.testing.assert_array_equal(np.asarray(x), a)
    assert np.asarray(x, dtype=np.float32).dtype == np.float32


def test_dtype_conversions_and_devices():
    x = ndl.Tensor(_a(2, 3).astype(np.float32))
    assert x.double().dtype == np.float64 and x.half().dtype == np.float16
    assert x.double().float().dtype == np.float32
    assert x.long().dtype == np.int64 and not x.long().requires_grad
    assert x.astype("float64").dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to(ndl.cpu()) is x and x.to("cpu").device == ndl.cpu() and x.cpu() is x
    y = x.double()
    y.sum().backward()  # to a floating dtype is differentiable, as in PyTorch
    assert x.grad.dtype == np.float32 and np.all(x.grad.numpy() == 1)
    if not ndl.cuda().enabled():
        with pytest.raises(RuntimeError, match="not available"):
            x.cuda()


def test_requires_grad_():
    x = ndl.Tensor([1.0, 2.0], requires_grad=False)
    assert x.requires_grad_() is x and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="floating point"):
        ndl.Tensor(np.array([1, 2])).requires_grad_()


def test_a_module_called_on_a_numpy_array_converts_it():
    np.random.seed(0)
    layer = ndl.nn.Linear(3, 2)
    a = _a(4, 3).astype(np.float32)
    np.testing.assert_allclose(layer(a).numpy(), layer(ndl.Tensor(a)).numpy())


# ---------------------------------------------------------------------------- in-place
def test_inplace_update_under_no_grad_changes_the_parameter():
    """Failed before: `p -= lr * p.grad` rebound the name and left the model unchanged."""
    np.random.seed(0)
    model = ndl.nn.Linear(3, 1)
    before = model.weight.numpy().copy()
    model(ndl.Tensor(_a(5, 3).astype(np.float32))).sum().backward()
    with ndl.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    np.testing.assert_allclose(model.weight.numpy(), before - 0.1 * model.weight.grad.numpy(),
                               rtol=1e-6)


def test_inplace_operators_match_torch_under_no_grad():
    a, b = _a(3, 4), _a(4)
    x, t = ndl.Tensor(a, dtype="float64"), torch.tensor(a)
    view = x.detach()  # shares storage, as torch's .data does
    with ndl.no_grad():
        x += ndl.Tensor(b, dtype="float64")
        x *= 2.0
        x -= 1.0
        x /= 3.0
    t += torch.tensor(b)
    t *= 2.0
    t -= 1.0
    t /= 3.0
    np.testing.assert_allclose(x.numpy(), t.numpy())
    np.testing.assert_allclose(view.numpy(), t.numpy())  # written into the storage
    with ndl.no_grad():
        x.zero_()
        assert not x.numpy().any()
        x.fill_(2.5).clamp_(max=1.0)
        np.testing.assert_array_equal(x.numpy(), np.ones((3, 4)))
        x.copy_(np.arange(4.0))  # broadcast, like torch
    np.testing.assert_array_equal(x.numpy(), np.broadcast_to(np.arange(4.0), (3, 4)))
    with pytest.raises(RuntimeError, match="shape"):
        ndl.Tensor(_a(3, 1)).detach().__iadd__(ndl.Tensor(_a(3, 4)))


def test_setitem_matches_torch():
    """Failed before: `x[mask] = 0` raised AttributeError."""
    a = _a(4, 5)
    x, t = ndl.Tensor(a, dtype="float64", requires_grad=False), torch.tensor(a)
    x[x > 0] = 0.0
    t[t > 0] = 0.0
    x[1] = ndl.Tensor(np.arange(5.0), dtype="float64")
    t[1] = torch.arange(5.0)
    x[:, 2] = 7.0
    t[:, 2] = 7.0
    x[np.array([0, 3]), np.array([1, 4])] = -1.0
    t[[0, 3], [1, 4]] = -1.0
    np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_inplace_on_a_leaf_that_requires_grad_raises_torch_error():
    x = ndl.Tensor([1.0, 2.0])
    torch_x = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as torch_error:
        torch_x += 1
    for change in (lambda: x.__iadd__(1.0), lambda: x.__setitem__(0, 1.0), x.zero_,
                   lambda: x.clamp_(0, 1)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad") as error:
            change()
        assert str(torch_error.value) in str(error.value)


def test_inplace_ops_on_non_leaves_record_like_torch():
    a, b = _a(3, 4), _a(3, 4)

    def chain(x, y, lib):
        z = x * 2
        z += y
        z *= y
        z[z > 0.5] = 0.5
        z.clamp_(min=-1.0)
        z -= 1
        return z

    def ndl_fn(x, y):
        return chain(x, y, ndl)

    def torch_fn(x, y):
        return chain(x, y, torch)

    check_torch(ndl_fn, torch_fn, a, b, name="in-place chain")

    def setitem_value(lib_tensor, v):
        z = lib_tensor * 1.0
        z[1:3] = v
        return z

    check_torch(setitem_value, setitem_value, a, _a(4), name="setitem with a recorded value")


# ---------------------------------------------------------------------------- accumulation
def test_backward_accumulate_adds_like_torch():
    """Failed before: there was no way to accumulate; the second backward replaced grads."""
    a, b, c = _a(3), _a(3), _a(3)
    x = ndl.Tensor(a, dtype="float64")
    t = torch.tensor(a, requires_grad=True)
    (x * ndl.Tensor(b, dtype="float64")).sum().backward(accumulate=True)
    (x * x * ndl.Tensor(c, dtype="float64")).sum().backward(accumulate=True)
    (t * torch.tensor(b)).sum().backward()
    (t * t * torch.tensor(c)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    (x * 3).sum().backward()  # the contract's default still assigns fresh gradients
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))


# ---------------------------------------------------------------------------- custom ops
class _WrongShape(TensorOp):
    def compute(self, a):
        return a * 2

    def gradient(self, out_grad, node):
        return out_grad.sum(0)  # wrong: drops axis 0


class _NumpyCompute(TensorOp):
    def compute(self, a):
        return np.sin(a.numpy())  # a numpy array, not an NDArray

    def gradient(self, out_grad, node):
        return out_grad * ndl.Tensor.make_const(
            ndl.backend_ndarray.array(np.cos(node.inputs[0].numpy()),
                                      dtype=node.inputs[0].dtype))


def test_a_wrong_adjoint_shape_fails_at_backward_naming_the_op():
    """Failed before: accepted, and crashed later inside the optimiser."""
    x = ndl.Tensor(_a(3, 2))
    with pytest.raises(ValueError, match=r"_WrongShape.gradient returned an adjoint of shape "
                                         r"\(2,\).*input 0.*\(3, 2\)"):
        _WrongShape()(x).sum().backward()


def test_a_wrong_adjoint_dtype_or_count_fails_naming_the_op():
    class WrongDtype(_WrongShape):
        def gradient(self, out_grad, node):
            return out_grad.long()

    class OtherFloat(_WrongShape):
        def gradient(self, out_grad, node):
            return out_grad.double()

    class TooMany(_WrongShape):
        def gradient(self, out_grad, node):
            return out_grad, out_grad

    with pytest.raises(ValueError, match="WrongDtype.*dtype int64.*dtype float32"):
        WrongDtype()(ndl.Tensor(_a(2).astype(np.float32))).sum().backward()
    x = ndl.Tensor(_a(2).astype(np.float32))
    OtherFloat()(x).sum().backward()  # another float dtype: cast back (mixed precision)
    assert x.grad.dtype == np.float32
    with pytest.raises(ValueError, match="TooMany.gradient returned 2 adjoint"):
        TooMany()(ndl.Tensor(_a(2).astype(np.float32))).sum().backward()


def test_an_adjoint_that_is_not_a_tensor_fails_naming_the_op():
    """Failed before: a numpy adjoint passed the check (only Tensors were compared) and
    crashed later, inside the sum of adjoints or the optimiser."""
    class NumpyAdjoint(_WrongShape):
        def gradient(self, out_grad, node):
            return out_grad.numpy()

    with pytest.raises(TypeError, match="NumpyAdjoint.gradient returned a ndarray for input 0"):
        NumpyAdjoint()(ndl.Tensor(_a(2).astype(np.float32))).sum().backward()


def test_compute_may_return_numpy_and_bad_inputs_get_a_clear_error():
    """Failed before: a numpy result or a scalar input gave "'...' object has no attribute"."""
    a = _a(4)
    x = ndl.Tensor(a, dtype="float64")
    y = _NumpyCompute()(x)
    assert isinstance(y.realize_cached_data(), ndl.backend_ndarray.NDArray)
    assert y.dtype == np.float64
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(a))

    class ReturnsList(_WrongShape):
        def compute(self, a):
            return [1.0]

    with pytest.raises(TypeError, match="ReturnsList.compute returned a list"):
        ReturnsList()(x)
    with pytest.raises(TypeError, match="_WrongShape got a float as input 1.*__init__"):
        _WrongShape()(x, 2.0)
