"""needle: a deep-learning framework you can read end to end.

>>> import needle as ndl
>>> x = ndl.Tensor([1.0, 2.0, 3.0])
>>> (x * x).sum().backward()
>>> x.grad.numpy()
array([2., 4., 6.], dtype=float32)
"""

import importlib
import os
from typing import Any
from types import ModuleType

if os.environ.get("NEEDLE_SECOND_CORE") == "1":  # before numpy loads OpenBLAS: its idle
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # worker frees the core at once

from . import backend_ndarray, ops
from . import data, init, nn, optim
from . import distributed, models, testing
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
from .ops import argmax, argmin, cat, clamp, einsum, multinomial
from .reference import is_reference_mode, reference_mode
from .serialization import load, save
from .solver import Solver
from . import viz
from .anomaly import detect_anomaly
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .profiler import profile
from .seed import manual_seed

# PyTorch's dim=/keepdim= keywords at the ndl level (the ops themselves stay unwrapped: they are
# on the hot path of every layer)
summation = ops.torch_keywords(ops.summation)
mean = ops.torch_keywords(ops.mean)
max = ops.torch_keywords(ops.amax)  # noqa: A001  (the contract's values-only max)
logsumexp = ops.torch_keywords(ops.logsumexp)
softmax = ops.torch_keywords(ops.softmax)
logsoftmax = ops.torch_keywords(ops.logsoftmax)
stack = ops.torch_keywords(ops.stack)
concatenate = ops.torch_keywords(ops.concatenate)
split = ops.torch_keywords(ops.split)
log_softmax = logsoftmax

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The training layers load on first use: ``import needle`` stays light."""
    if name in ("train", "train_lm", "generate", "learner", "callbacks", "schedules"):
        return importlib.import_module(f".{name}", __name__)
    if name == "Learner":
        return importlib.import_module(".learner", __name__).Learner
    raise AttributeError(f"module 'needle' has no attribute {name!r}")
