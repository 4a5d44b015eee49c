"""NDArray: views that share memory, strides in elements, compact/reshape, setitem, elementwise
and scalar ops, reductions, matmul, flip, pad — the same tests on every device (numpy oracle)."""

import operator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import needle as ndl
from needle import backend_ndarray as nd
from strategies import axes_for, fast, shapes

DEVICES = [pytest.param(ndl.cpu(), id="cpu"), pytest.param(ndl.cpu_numpy(), id="cpu_numpy"),
           pytest.param(ndl.cuda(), id="cuda", marks=pytest.mark.skipif(
               not ndl.cuda().enabled(), reason="ndl.cuda() needs CuPy and a GPU"))]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def arange(shape, device, dtype="float32"):
    return nd.array(np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape), device=device)


def test_array_round_trip_and_strides_in_elements(device):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = nd.array(a, device=device)
    assert x.shape == (2, 3, 4) and x.strides == (12, 4, 1) and x.device is device
    assert x.dtype == np.float32 and x.size == 24 and x.ndim == 3 and len(x) == 2
    np.testing.assert_array_equal(x.numpy(), a)
    assert nd.array(np.zeros(3)).dtype == np.float32  # needle's default dtype
    assert x.permute((2, 0, 1)).strides == (1, 12, 4)
    assert x[:, ::2, 1:].strides == (12, 8, 1)
    assert x.broadcast_to((5, 2, 3, 4)).strides == (0, 12, 4, 1)


def test_views_share_memory_with_their_base(device):
    x = arange((3, 4), device)
    views = {"slice": x[1:, ::2], "int": x[2], "ints": x[1, 3], "permute": x.permute((1, 0)),
             "flip": x.flip((0,)), "reshape": x.reshape((2, 6))}
    for name, view in views.items():
        before = x.numpy().copy()
        view[...] = -1.0  # write through the view
        assert (x.numpy() == -1.0).sum() == view.size, name
        x[...] = nd.array(before, device=device)
    assert x[1, 3].shape == () and x[1, 3].numpy().ndim == 0  # a 0-d view, not a scalar
    assert not x.broadcast_to((2, 3, 4)).is_compact()


def test_compact_copies_only_when_needed(device):
    x = arange((3, 4), device)
    assert x.is_compact() and x.compact() is x
    view = x.permute((1, 0))[::2]
    assert not view.is_compact()
    dense = view.compact()
    assert dense.is_compact() and dense.strides == (3, 1)
    np.testing.assert_array_equal(dense.numpy(), view.numpy())
    dense[0, 0] = 100.0
    assert x.numpy()[0, 0] == 0.0  # a copy, not a view


def test_reshape_needs_a_compact_array_and_keeps_the_size(device):
    x = arange((2, 6), device)
    np.testing.assert_array_equal(x.reshape((3, -1)).numpy(), np.arange(12).reshape(3, 4))
    with pytest.raises(ValueError, match="compact"):
        x.permute((1, 0)).reshape((12,))
    with pytest.raises(ValueError, match=r"\(2, 6\).*\(5, 2\)"):
        x.reshape((5, 2))


def test_setitem_with_arrays_and_scalars(device):
    x = nd.full((3, 4), 0.0, device=device)
    x[1] = 2.0
    x[:, 1:3] = nd.array(np.ones((3, 2)), device=device)
    want = np.zeros((3, 4), np.float32)
    want[1] = 2.0
    want[:, 1:3] = 1.0
    np.testing.assert_array_equal(x.numpy(), want)


def test_make_views_a_flat_buffer(device):
    handle = arange((12,), device)
    view = nd.NDArray.make((3, 2), strides=(4, 1), device=device, handle=handle, offset=1)
    np.testing.assert_array_equal(view.numpy(), [[1, 2], [5, 6], [9, 10]])
    view[0, 0] = 100.0
    assert handle.numpy()[1] == 100.0  # shares memory with the handle
    fresh = nd.NDArray.make((2, 3), device=device)
    assert fresh.shape == (2, 3) and fresh.strides == (3, 1)
    with pytest.raises(ValueError, match=r"reaches elements 1\.\.13.*12 elements"):
        nd.NDArray.make((3, 5), strides=(4, 1), device=device, handle=handle, offset=1)


ELEMENTWISE = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
               "truediv": operator.truediv, "pow": operator.pow, "eq": operator.eq,
               "ne": operator.ne, "ge": operator.ge, "gt": operator.gt, "le": operator.le,
               "lt": operator.lt, "maximum": lambda a, b: a.maximum(b)
               if isinstance(a, nd.NDArray) else np.maximum(a, b)}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@fast
@given(shape=shapes(min_side=0), data=st.data())
def test_elementwise_and_scalar_ops_match_numpy(name, shape, data):
    fn = ELEMENTWISE[name]
    elements = st.floats(0.5, 4, width=32)
    a, b = (data.draw(hnp.arrays(np.float32, shape, elements=elements)) for _ in range(2))
    for device in [p.values[0] for p in DEVICES if p.values[0].enabled()]:
        x, y = nd.array(a, device=device), nd.array(b, device=device)
        np.testing.assert_allclose(fn(x, y).numpy(), fn(a, b), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(fn(x, 1.5).numpy(), fn(a, np.float32(1.5)), rtol=1e-6)


def test_reflected_scalar_ops_and_unary_functions(device):
    a = np.linspace(0.5, 3.0, 6, dtype=np.float32).reshape(2, 3)
    x = nd.array(a, device=device)
    pairs = [(2 + x, 2 + a), (2 - x, 2 - a), (2 * x, 2 * a), (2 / x, 2 / a), (-x, -a),
             (x.log(), np.log(a)), (x.exp(), np.exp(a)), (x.tanh(), np.tanh(a)),
             ((x > 1).logical_not(), ~(a > 1)), (x.astype("float64"), a.astype(np.float64))]
    for got, want in pairs:
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_elementwise_ops_broadcast_like_numpy_on_one_device():
    x, y = nd.array(np.ones((2, 3))), nd.array(np.arange(3.0))
    np.testing.assert_array_equal((x + y).numpy(), np.ones((2, 3)) + np.arange(3.0))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2,\) cannot be broadcast"):
        x + nd.array(np.ones((2,)))
    with pytest.raises(ValueError, match=r"different devices: cpu\(\) and cpu_numpy\(\)"):
        x * nd.array(np.ones((2, 3)), device=ndl.cpu_numpy())


@pytest.mark.parametrize("reduction", ["sum", "max"])
@fast
@given(shape=shapes(min_dims=0, max_dims=4), data=st.data())
def test_reductions_with_keepdims(reduction, shape, data):
    axes = data.draw(axes_for(len(shape)))
    keepdims = data.draw(st.booleans())
    a = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed")).standard_normal(
        shape).astype(np.float32)
    for device in [p.values[0] for p in DEVICES if p.values[0].enabled()]:
        got = getattr(nd.array(a, device=device), reduction)(axis=axes, keepdims=keepdims)
        want = getattr(np, reduction)(a, axis=axes, keepdims=keepdims)
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_max_over_an_empty_axis_says_so(device):
    with pytest.raises(ValueError, match="empty axis"):
        nd.array(np.zeros((0, 2)), device=device).max(axis=0)
    assert nd.array(np.zeros((0, 2)), device=device).sum(axis=0).shape == (2,)


@pytest.mark.parametrize("lhs, rhs", [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
                                      ((1, 3, 4), (2, 4, 5)), ((4,), (4, 2)), ((3, 4), (4,))])
def test_matmul_matches_numpy(device, lhs, rhs):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(lhs).astype(np.float32), rng.standard_normal(rhs).astype(np.float32)
    got = nd.array(a, device=device) @ nd.array(b, device=device)
    np.testing.assert_allclose(got.numpy(), a @ b, rtol=1e-5, atol=1e-6)


def test_matmul_of_views_that_blas_cannot_read_in_place(device):
    a = arange((6, 4), device)
    b = arange((4, 3), device)
    for lhs, rhs in [(a[::2], b), (a.permute((1, 0)).permute((1, 0)), b[:, ::-1]),
                     (a[:3, :2].broadcast_to((2, 3, 2)), b[:2])]:
        np.testing.assert_allclose((lhs @ rhs).numpy(), lhs.numpy() @ rhs.numpy(), rtol=1e-6)


def test_matmul_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(4, 5\)"):
        nd.array(np.ones((2, 3))) @ nd.array(np.ones((4, 5)))


def test_flip_and_pad_match_numpy(device):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = nd.array(a, device=device)
    for axes in [(0,), (1,), (0, 1), None]:
        np.testing.assert_array_equal(x.flip(axes).numpy(), np.flip(a, axes))
    widths = ((1, 0), (2, 3))
    np.testing.assert_array_equal(x.pad(widths).numpy(), np.pad(a, widths))
    with pytest.raises(ValueError, match="one \\(before, after\\) pair per axis"):
        x.pad(((1, 1),))


def test_module_functions(device):
    a, b = arange((2, 3), device), arange((2, 3), device) * 2.0
    np.testing.assert_array_equal(nd.stack([a, b], 1).numpy(),
                                  np.stack([a.numpy(), b.numpy()], 1))
    np.testing.assert_array_equal(nd.concatenate([a, b], 0).numpy(),
                                  np.concatenate([a.numpy(), b.numpy()], 0))
    np.testing.assert_array_equal(nd.where(a > 2.0, a, b).numpy(),
                                  np.where(a.numpy() > 2, a.numpy(), b.numpy()))
    added = nd.index_add((4,), np.array([0, 0, 3]), nd.array(np.ones(3), device=device))
    np.testing.assert_array_equal(added.numpy(), [2, 0, 0, 1])  # repeats accumulate
    sliced = nd.index_add((2, 4), (slice(None), slice(1, 4)), a)
    np.testing.assert_array_equal(sliced.numpy(), np.pad(a.numpy(), ((0, 0), (1, 0))))
    assert nd.full((2,), 7.0, device=device).numpy().tolist() == [7.0, 7.0]
    assert nd.empty((2, 5), device=device).shape == (2, 5)
    with pytest.raises(ValueError, match="one shape"):
        nd.stack([a, arange((3,), device)])


def test_moving_between_devices_copies():
    x = nd.array(np.arange(3.0))
    y = x.to(ndl.cpu_numpy())
    assert y.device is ndl.cpu_numpy() and x.to(ndl.cpu()) is x
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert "cpu_numpy()" in repr(y)


@pytest.mark.parametrize("shape, axes, permutation", [
    ((6, 5), (0,), None), ((4, 3, 5), (0, 1), None), ((4, 3, 5), (1, 2), None),
    ((2, 3, 4, 5), (0, 2, 3), (0, 3, 1, 2)),   # an NCHW view of NHWC memory
    ((2, 3, 4, 5), (0, 1), (2, 0, 3, 1)),      # kept axes lie in memory in another order
    ((3, 4), (1,), (1, 0)), ((3, 4), None, None), ((0, 4), (0,), None),
    ((4, 3, 5), (-1,), None), ((4, 3, 5), (2, 1), None), ((16, 4, 8, 64), (3,), None),
])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_matches_numpy_on_every_layout(shape: tuple[int, ...], axes: Any,
                                           permutation: Any, keepdims: bool) -> None:
    """Sums over the leading or trailing memory axes run as a BLAS product: the same
    values as numpy's."""
    values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    a = nd.array(values)
    if permutation is not None:
        a, values = a.permute(permutation), values.transpose(permutation)
    np.testing.assert_allclose(a.sum(axes, keepdims=keepdims).numpy(),
                               values.sum(axis=axes, keepdims=keepdims), rtol=1e-5, atol=1e-5)


def test_row_sums_by_blas_are_as_accurate_and_long_rows_use_numpy(monkeypatch) -> None:
    """Rows up to ``TRAILING_MAX`` long are summed as ``rows @ ones``: close to the float64
    sums, and the same for any alignment of the data; longer rows are numpy's own sum."""
    from needle.backend_ndarray import ndarray as module

    values = np.random.default_rng(1).standard_normal((64, 1000)).astype(np.float32)
    exact = values.astype(np.float64).sum(axis=1)
    by_blas = nd.array(values).sum(1).numpy()
    np.testing.assert_allclose(by_blas, exact, rtol=0, atol=5e-5)
    shifted = np.empty(values.size + 1, np.float32)[1:].reshape(values.shape)
    shifted[...] = values
    np.testing.assert_array_equal(module.array_sum(np, shifted, 1), by_blas)
    monkeypatch.setattr(module, "TRAILING_MAX", 999)
    np.testing.assert_array_equal(nd.array(values).sum(1).numpy(), values.sum(axis=1))


def test_in_place_add_writes_through_a_view() -> None:
    base = nd.array(np.zeros((3, 4), np.float32))
    window = base[1:, ::2]
    window += nd.array(np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(base.numpy()[1:, ::2], np.ones((2, 2)))
    assert base.numpy().sum() == 4
    with pytest.raises(ValueError, match=r"\(2, 2\) and \(3,\) cannot be broadcast"):
        window += nd.array(np.ones(3, np.float32))
