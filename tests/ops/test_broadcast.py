"""Implicit broadcasting becomes explicit BroadcastTo nodes; mismatches name both shapes."""

import numpy as np
import pytest
import torch

import needle as ndl
from strategies import check_op, normal


def test_implicit_broadcasting_records_a_broadcast_to_node():
    x, y = ndl.Tensor(np.ones((3, 1))), ndl.Tensor(np.ones(4))
    out = x + y
    assert out.shape == (3, 4)
    assert [type(node.op).__name__ for node in out.inputs] == ["BroadcastTo", "BroadcastTo"]
    same = x + ndl.Tensor(np.ones((3, 1)))
    assert all(node.op is None for node in same.inputs)  # equal shapes: no extra node


def test_broadcast_gradient_sums_over_the_repeated_axes():
    a, b = normal(0, (3, 1, 2), (4, 1))
    check_op(lambda x, y: x * y, lambda x, y: x * y, a, b, name="(3,1,2) * (4,1)")


def test_numpy_arrays_and_numbers_are_constants_on_the_tensors_device():
    x = ndl.Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert (x + 1).dtype == np.float32  # a Python number takes the tensor's dtype
    out = x * np.array([1.0, 2.0, 3.0], np.float32) + 1
    assert out.dtype == np.float32 and out.device == x.device
    assert (x * np.ones(3)).dtype == (torch.ones(3) * torch.ones(3).double()).numpy().dtype
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 2, 3], [1, 2, 3]])
    torch_x = torch.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(out.numpy(), (torch_x * torch.tensor([1.0, 2, 3]) + 1).numpy())


def test_incompatible_shapes_name_both_shapes():
    x, y = ndl.Tensor(np.zeros((2, 3))), ndl.Tensor(np.zeros((4,)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\) cannot be broadcast"):
        x + y
