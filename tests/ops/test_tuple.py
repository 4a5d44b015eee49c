"""make_tuple / tuple_get_item and TensorTuple: gradients flow to the element taken only."""

import numpy as np
import torch

import needle as ndl
from strategies import check_op, normal


def test_tuple_get_item_routes_the_gradient_to_its_element():
    a, b = normal(0, (2, 3), (3,))
    for i, torch_fn in enumerate([lambda x, y: x * 2, lambda x, y: y * 2]):
        check_op(lambda x, y: ndl.tuple_get_item(ndl.make_tuple(x, y), i) * 2, torch_fn, a, b,
                 name=f"tuple_get_item {i}")


def test_every_element_of_a_tuple_gets_its_own_gradient():
    a, b = normal(1, (2, 3), (2, 3))
    check_op(lambda x, y: [t * t for t in ndl.make_tuple(x, y)], lambda x, y: [x * x, y * y],
             a, b, name="iterate a TensorTuple")


def test_tensor_tuple_protocol():
    x, y = ndl.Tensor([1.0, 2.0]), ndl.Tensor([3.0])
    pair = ndl.make_tuple(x, y)
    assert len(pair) == 2 and isinstance(pair, ndl.TensorTuple)
    np.testing.assert_array_equal(pair[1].numpy(), [3.0])
    doubled = pair + pair
    np.testing.assert_array_equal(doubled.tuple()[0].numpy(), [2.0, 4.0])
    detached = pair.detach()
    assert not detached.requires_grad and detached.op is None
    assert "TensorTuple" in repr(pair)


def test_split_outputs_used_unevenly_still_get_torch_gradients():
    (a,) = normal(2, (3, 2))
    check_op(lambda x: ndl.split(x, 0)[2] * ndl.split(x, 0)[0],
             lambda x: torch.unbind(x, 0)[2] * torch.unbind(x, 0)[0], a, name="split twice")
