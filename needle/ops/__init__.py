"""needle's ops: one small class per primitive (``compute`` + ``gradient``), a lowercase
function for each, and compositions with no backward code of their own.

``ops/`` holds the elementary ops and the compositions; ``ops/fused/`` the speed
primitives, each replacing a composition from here (in reference mode the composition
runs). The names below are the fast forms where one exists.
"""

from . import fused
from .aliases import argmax, argmin, cat, clamp, torch_keywords
from .axes import keepdims_shape, normalize_axes, reduced_shape
from .broadcast import broadcast_tensors
from .compose import mean, sqrt, sub
from .convolution import out_size
from .einsum import Einsum, einsum
from .elementwise import (AddScalar, AsType, Compare, DivScalar, EWiseAdd, EWiseDiv, EWiseMul,
                          EWisePow, Exp, Log, LogicalNot, Maximum, MulScalar, Negate,
                          PowerScalar, ReLU, Tanh, add, add_scalar, astype, divide,
                          divide_scalar, equal, exp, greater, greater_equal, less, less_equal,
                          log, logical_not, maximum, mul_scalar, multiply, negate, not_equal,
                          power, power_scalar)
from .fused.activation import ReLUGrad, Sigmoid, SigmoidGrad, TanhGrad, relu, sigmoid, tanh
from .fused.conv import (Col2Im, Conv, ConvTranspose, ConvWeight, Im2Col, avg_pool2d, col2im,
                         conv, conv_transpose, conv_weight, im2col, max_pool2d)
from .fused.cross_entropy import (SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad,
                                  softmax_cross_entropy)
from .fused.linear import Linear, linear
from .fused.normalization import (Normalize, NormalizeAffineGrad, NormalizeGrad, batch_norm,
                                  normalize)
from .fused.softmax import Softmax, softmax
from .indexing import GetItem, IndexAdd, Where, getitem, index_add, setitem, where
from .fused.conv_bn import ConvBatchNorm, Recorded, conv_batch_norm
from .fused.linear_bn import LinearBatchNorm, linear_batch_norm
from .fused.lstm import LSTMSequence, LSTMSequenceGrad, lstm_sequence
from .fused.pool import MaxPool, MaxPoolGrad, max_pool
from .logarithmic import LogSoftmax, LogSumExp, logsoftmax, logsumexp
from .loss import class_ids
from .matmul import MatMul, ProductAdjoint, matmul
from .reduce import Max, Summation, amax, summation
from .sampling import multinomial
from .shape import (BroadcastTo, Concatenate, Dilate, Flip, Pad, Permute, Reshape, Split, Stack,
                    UnDilate, broadcast_to, concatenate, dilate, flip, pad, permute, reshape,
                    split, stack, transpose, undilate)
from .special import Erf, erf
from .tuple import MakeTensorTuple, TupleElementAdjoint, TupleGetItem, make_tuple, tuple_get_item

__all__ = [
    "AddScalar", "AsType", "BroadcastTo", "Compare", "Concatenate", "Dilate", "DivScalar",
    "EWiseAdd", "EWiseDiv", "EWiseMul", "EWisePow", "Exp", "Flip", "GetItem", "IndexAdd", "Log",
    "LogSoftmax", "LogSumExp", "LogicalNot", "MakeTensorTuple", "MatMul", "Max", "Maximum",
    "MulScalar", "Negate", "Pad", "Permute", "PowerScalar", "ProductAdjoint", "ReLU", "Reshape",
    "Split", "Stack", "Summation", "Tanh", "TupleElementAdjoint", "TupleGetItem", "UnDilate",
    "Where",
    "add", "add_scalar", "amax", "astype", "broadcast_tensors", "broadcast_to", "class_ids",
    "concatenate", "dilate", "divide", "divide_scalar", "equal", "exp", "flip", "fused",
    "getitem", "greater", "greater_equal", "index_add", "keepdims_shape", "less", "less_equal",
    "log", "logical_not", "logsoftmax", "logsumexp", "make_tuple", "matmul", "maximum", "mean",
    "mul_scalar", "multiply", "negate", "normalize_axes", "not_equal", "out_size", "pad",
    "permute", "power", "power_scalar", "reduced_shape", "relu", "reshape", "split", "sqrt",
    "stack", "sub", "summation", "tanh", "transpose", "tuple_get_item", "undilate", "where",
    "Erf", "erf",
    # speed primitives (ops/fused/): each replaces a composition of the ops above
    "Col2Im", "Conv", "ConvBatchNorm", "ConvTranspose", "ConvWeight", "Im2Col", "LSTMSequence",
    "LSTMSequenceGrad", "Linear", "LinearBatchNorm", "MaxPool", "MaxPoolGrad", "Normalize",
    "NormalizeAffineGrad", "NormalizeGrad", "Recorded", "Sigmoid", "SigmoidGrad", "Softmax",
    "SoftmaxCrossEntropy", "SoftmaxCrossEntropyGrad", "TanhGrad", "ReLUGrad",
    "avg_pool2d", "batch_norm", "col2im", "conv", "conv_batch_norm", "conv_transpose",
    "conv_weight", "im2col", "linear", "linear_batch_norm", "lstm_sequence", "max_pool",
    "max_pool2d", "normalize", "sigmoid", "softmax", "softmax_cross_entropy",
]
# PyTorch's names and index reductions (issue 10)
__all__ += ["argmax", "argmin", "cat", "clamp", "multinomial", "setitem", "torch_keywords"]
__all__ += ["Einsum", "einsum"]
