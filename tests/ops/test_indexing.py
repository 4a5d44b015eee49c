"""getitem (slices, ints, None, Ellipsis, integer arrays, masks), index_add and where."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import needle as ndl
from strategies import broadcast_pairs, check_op, fast, normal, seeds, shapes


def torch_getitem(index, shape):
    """numpy's ``a[index]`` in PyTorch, as a gather of flat positions (PyTorch has no
    negative-step slices)."""
    positions = torch.as_tensor(np.arange(int(np.prod(shape))).reshape(shape)[index].copy())
    return lambda x: x.reshape(-1)[positions]


@fast
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), seed=seeds)
def test_getitem_basic_indices(shape, data, seed):
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    (a,) = normal(seed, shape)
    check_op(lambda x: x[index], torch_getitem(index, shape), a,
             name=f"{shape}[{index}]")
    np.testing.assert_array_equal(ndl.Tensor(a, dtype="float64")[index].numpy(), a[index])


@fast
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), seed=seeds)
def test_getitem_integer_arrays_scatter_the_gradient_back(shape, data, seed):
    index = data.draw(hnp.integer_array_indices(shape, result_shape=shapes(max_dims=2)))
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.getitem(x, index), torch_getitem(index, shape), a,
             name=f"{shape}[integer arrays]")


@fast
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), seed=seeds)
def test_getitem_boolean_masks(shape, data, seed):
    mask = data.draw(hnp.arrays(np.bool_, shape))
    (a,) = normal(seed, shape)
    check_op(lambda x: x[mask], lambda x: x[torch.as_tensor(mask)], a, name=f"{shape}[mask]")


def test_getitem_common_forms():
    (a,) = normal(0, (4, 5))
    rows, labels = np.arange(4), np.array([1, 0, 4, 4])
    for index in [(slice(1, 3),), (1,), (-1, slice(None, None, 2)), (rows, labels),
                  (Ellipsis, 0), ([0, 0, 2],), (slice(None), [4, 4, 1])]:
        check_op(lambda x: x[index], torch_getitem(index, a.shape), a, name=f"x[{index}]")
    x = ndl.Tensor(a)
    label_tensor = ndl.Tensor(labels)  # integer Tensors index like arrays
    np.testing.assert_array_equal(x[rows, label_tensor].numpy(), a[rows, labels])


def test_getitem_of_a_slice_is_a_view_of_the_same_memory():
    x = ndl.Tensor(np.arange(12.0).reshape(3, 4))
    assert np.shares_memory(x[1:3].numpy(), x.numpy())


def test_getitem_rejects_float_index_arrays():
    with pytest.raises(IndexError, match="integers or booleans"):
        ndl.Tensor(np.zeros(3))[np.array([0.5])]


@fast
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), seed=seeds)
def test_index_add_accumulates_repeated_positions(shape, data, seed):
    index = data.draw(hnp.integer_array_indices(shape, result_shape=shapes(max_dims=2)))
    (values,) = normal(seed, np.zeros(shape)[index].shape)
    flat = torch.as_tensor(np.arange(int(np.prod(shape))).reshape(shape)[index].copy()).reshape(-1)

    def torch_index_add(v):
        out = v.new_zeros(int(np.prod(shape)))
        return out.index_add(0, flat, v.reshape(-1)).reshape(shape)

    check_op(lambda v: ndl.index_add(v, index, shape), torch_index_add, values,
             name=f"index_add into {shape}")



@pytest.mark.parametrize("shape", [(7, 3), (5, 2, 4), (4, 0)])
def test_index_add_of_whole_rows_equals_numpys_add_at_bitwise(shape, monkeypatch):
    # an Embedding's gradient: rows picked by one integer array, repeated and negative ones
    from needle.backend_ndarray import ndarray

    taken = []
    real = ndarray._add_rows_at
    monkeypatch.setattr(ndarray, "_add_rows_at", lambda *args: taken.append(1) or real(*args))
    rows = np.array([0, 3, -1, 3, 3, 1, -7 % shape[0] - shape[0], 2])
    values = np.random.default_rng(6).standard_normal((len(rows), *shape[1:]))
    values = values.astype(np.float32)
    expected = np.zeros(shape, np.float32)
    np.add.at(expected, rows, values)
    got = ndl.index_add(ndl.Tensor(values), rows, shape).numpy()
    np.testing.assert_array_equal(got, expected)
    assert taken == [1]

@fast
@given(pair=broadcast_pairs(), seed=seeds)
def test_where(pair, seed):
    a, b = normal(seed, *pair)
    condition = normal(seed + 1, np.broadcast_shapes(*pair))[0] > 0
    cond_ndl, cond_torch = ndl.Tensor(condition), torch.as_tensor(condition)
    check_op(lambda x, y: ndl.where(cond_ndl, x, y), lambda x, y: torch.where(cond_torch, x, y),
             a, b, name=f"where {pair}")
    check_op(lambda x: ndl.where(cond_ndl, x, 0.5), lambda x: torch.where(cond_torch, x, 0.5),
             a, name="where with a number")


def test_where_condition_from_a_comparison_gets_no_gradient():
    x = ndl.Tensor(np.array([-1.0, 2.0, -3.0]))
    y = ndl.where(x > 0, x, x * 0.1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.1, 1.0, 0.1], rtol=1e-6)
