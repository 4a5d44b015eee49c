"""Collectives: each rank contributes (rank + 1) times a known array, so every result is
known in closed form for any world size; float32 and float64, compact and strided inputs,
Tensors, NDArrays and numpy arrays."""

import numpy as np
import pytest

import needle as ndl
from needle import distributed as dist
from needle.backend_ndarray import NDArray

W, R = dist.world_size(), dist.rank()
BASE = np.arange(12, dtype=np.float64).reshape(3, 4) - 5.0
DTYPES = ["float32", "float64"]


def contribution(dtype: str) -> np.ndarray:
    return ((R + 1) * BASE).astype(dtype)


def make(kind: str, values: np.ndarray):
    """``values`` as a compact or non-compact Tensor, NDArray or numpy array; the
    non-compact ones are transposed views of a (4, 3) array (or [:, ::2] slices)."""
    if kind == "numpy":
        return values.copy()
    if kind == "numpy_strided":
        return np.ascontiguousarray(values.T).T
    array = NDArray(values, dtype=values.dtype)
    if kind == "ndarray_strided":
        array = NDArray(np.ascontiguousarray(values.T), dtype=values.dtype).permute((1, 0))
        assert not array.is_compact()
    return ndl.Tensor.make_const(array) if kind == "tensor" else array


KINDS = ["numpy", "numpy_strided", "ndarray", "ndarray_strided", "tensor"]


def values_of(x) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_all_reduce_sum_and_mean_in_place(kind, dtype):
    x = make(kind, contribution(dtype))
    assert dist.all_reduce(x) is x
    np.testing.assert_allclose(values_of(x), BASE * W * (W + 1) / 2, rtol=1e-6)
    assert values_of(x).dtype == dtype
    y = make(kind, contribution(dtype))
    dist.all_reduce(y, op="mean")
    np.testing.assert_allclose(values_of(y), BASE * (W + 1) / 2, rtol=1e-6)


def test_all_reduce_writes_through_a_strided_view_only():
    full = NDArray(np.full((3, 8), 7.0), dtype="float64")
    view = full[:, ::2]
    view[...] = NDArray(contribution("float64"), dtype="float64")
    dist.all_reduce(view)
    np.testing.assert_allclose(full.numpy()[:, ::2], BASE * W * (W + 1) / 2)
    np.testing.assert_array_equal(full.numpy()[:, 1::2], 7.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_broadcast_from_the_last_rank(kind, dtype):
    x = make(kind, contribution(dtype))
    assert dist.broadcast(x, root=W - 1) is x
    np.testing.assert_array_equal(values_of(x), (W * BASE).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_all_gather_stacks_every_rank_in_rank_order(kind, dtype):
    x = make(kind, contribution(dtype))
    out = dist.all_gather(x)
    assert type(out) is type(x) and out.shape == (W, 3, 4)
    expected = np.stack([(r + 1) * BASE for r in range(W)]).astype(dtype)
    np.testing.assert_array_equal(values_of(out), expected)
    np.testing.assert_array_equal(values_of(x), contribution(dtype))  # input unchanged


def test_integers_sum_and_objects_gather():
    counts = np.array([R, 1], dtype=np.int64)
    dist.all_reduce(counts)
    np.testing.assert_array_equal(counts, [W * (W - 1) // 2, W])
    assert dist.all_gather_object({"rank": R}) == [{"rank": r} for r in range(W)]
    assert dist.broadcast_object(R * 10, root=W - 1) == (W - 1) * 10
    dist.barrier()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.zeros(3), op="max")
    with pytest.raises(TypeError, match="needs a floating array"):
        dist.all_reduce(np.zeros(3, dtype=np.int64), op="mean")
    with pytest.raises(ValueError, match="root must be a rank"):
        dist.broadcast(np.zeros(3), root=W)
    with pytest.raises(TypeError, match="Tensor, an NDArray or a numpy array"):
        dist.all_reduce([1.0, 2.0])


def test_all_gather_of_different_shapes_names_them():
    if W == 1:
        pytest.skip("one rank cannot disagree with itself")
    with pytest.raises(ValueError, match="same shape and dtype"):
        dist.all_gather(np.zeros(R + 1))


def test_world_of_one_without_a_launcher():
    assert dist.is_initialized() and 0 <= R < W
    assert dist.is_main_process() == (R == 0)
    if not dist.under_launcher():
        assert (W, R) == (1, 0)
