"""needle: a deep-learning framework you can read end to end.

>>> import needle as ndl
>>> x = ndl.Tensor([1.0, 2.0, 3.0])
>>> (x * x).sum().backward()
>>> x.grad.numpy()
array([2., 4., 6.], dtype=float32)
"""

import importlib
from types import ModuleType

from . import backend_ndarray, ops
from . import data, init, nn, optim
from . import distributed, models
from . import interop, onnx
from .autograd import Tensor, TensorTuple, Value, enable_grad, is_grad_enabled, no_grad
from .backend_ndarray import all_devices, cpu, cpu_numpy, cuda, default_device
from .ops import (add, add_scalar, astype, avg_pool2d, broadcast_to, concatenate, conv,
                  conv_transpose, dilate, divide, max_pool2d,
                  divide_scalar, equal, exp, flip, getitem, greater, greater_equal, index_add,
                  less, less_equal, log, logical_not, logsoftmax, logsumexp, make_tuple, matmul,
                  maximum, mean, mul_scalar, multiply, negate, not_equal, pad, permute,
                  power, power_scalar, relu, reshape, sigmoid, softmax, split, sqrt, stack, sub,
                  summation, tanh, transpose, tuple_get_item, undilate, where)
from .interop import from_dlpack
from .ops import amax as max  # noqa: A004  (the contract's name; ops.amax shadows nothing)
from .reference import is_reference_mode, reference_mode
from .serialization import load, save

__version__ = "0.1.0"


def __getattr__(name: str) -> ModuleType:
    """The training layers load on first use: ``import needle`` stays light."""
    if name in ("train", "train_lm", "generate"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'needle' has no attribute {name!r}")
