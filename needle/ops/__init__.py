"""needle's ops: one small class per primitive (``compute`` + ``gradient``), a lowercase
function for each, and compositions with no backward code of their own."""

from .axes import keepdims_shape, normalize_axes, reduced_shape
from .broadcast import broadcast_tensors
from .compose import mean, sqrt, sub
from .conv import (Col2Im, Conv, ConvTranspose, ConvWeight, Im2Col, avg_pool2d, col2im, conv,
                   conv_transpose, conv_weight, im2col, max_pool2d)
from .cross_entropy import SoftmaxCrossEntropy, SoftmaxCrossEntropyGrad, softmax_cross_entropy
from .elementwise import (AddScalar, AsType, Compare, DivScalar, EWiseAdd, EWiseDiv, EWiseMul,
                          EWisePow, Exp, Log, LogicalNot, Maximum, MulScalar, Negate,
                          PowerScalar, ReLU, Tanh, add, add_scalar, astype, divide,
                          divide_scalar, equal, exp, greater, greater_equal, less, less_equal,
                          log, logical_not, maximum, mul_scalar, multiply, negate, not_equal,
                          power, power_scalar, relu, tanh)
from .elementwise import Sigmoid, SigmoidGrad, TanhGrad, sigmoid
from .indexing import GetItem, IndexAdd, Where, getitem, index_add, where
from .linear import Linear, linear
from .conv_bn import ConvBatchNorm, Recorded, conv_batch_norm
from .pool import MaxPool, MaxPoolGrad, max_pool
from .lstm import LSTMSequence, LSTMSequenceGrad, lstm_sequence
from .logarithmic import (LogSoftmax, LogSumExp, Softmax, logsoftmax, logsumexp,
                          softmax)
from .matmul import MatMul, matmul
from .normalization import Normalize, NormalizeAffineGrad, NormalizeGrad, normalize
from .reduce import Max, Summation, max, summation
from .special import Erf, erf
from .shape import (BroadcastTo, Concatenate, Dilate, Flip, Pad, Permute, Reshape, Split, Stack,
                    UnDilate, broadcast_to, concatenate, dilate, flip, pad, permute, reshape,
                    split, stack, transpose, undilate)
from .tuple import MakeTensorTuple, TupleGetItem, make_tuple, tuple_get_item

__all__ = [
    "AddScalar", "AsType", "BroadcastTo", "Compare", "Concatenate", "Dilate", "DivScalar",
    "EWiseAdd", "EWiseDiv", "EWiseMul", "EWisePow", "Exp", "Flip", "GetItem", "IndexAdd", "Log",
    "LogSoftmax", "LogSumExp", "LogicalNot", "MakeTensorTuple", "MatMul", "Max", "Maximum",
    "MulScalar", "Negate", "Pad", "Permute", "PowerScalar", "ReLU", "Reshape", "Split", "Stack",
    "Summation", "Tanh", "TupleGetItem", "UnDilate", "Where",
    "add", "add_scalar", "astype", "broadcast_tensors", "broadcast_to", "concatenate",
    "dilate", "divide", "divide_scalar", "equal", "exp", "flip", "getitem", "greater",
    "greater_equal", "index_add", "keepdims_shape", "less", "less_equal", "log", "logical_not",
    "logsoftmax", "logsumexp", "make_tuple", "matmul", "max", "maximum", "mean", "mul_scalar",
    "multiply", "negate", "normalize_axes", "not_equal", "pad", "permute", "power",
    "power_scalar", "reduced_shape", "relu", "reshape", "sigmoid", "softmax", "split", "sqrt",
    "stack", "sub", "summation", "tanh", "transpose", "tuple_get_item", "undilate", "where",
    # fused ops for speed (Linear, Normalize, SoftmaxCrossEntropy) and erf
    "LSTMSequence", "LSTMSequenceGrad", "lstm_sequence", "MaxPool", "MaxPoolGrad", "max_pool",
    "ConvBatchNorm", "Recorded", "conv_batch_norm",
    "Erf", "Linear", "Normalize", "NormalizeAffineGrad", "NormalizeGrad", "SoftmaxCrossEntropy",
    "SoftmaxCrossEntropyGrad", "erf", "linear", "normalize", "softmax_cross_entropy",
    # convolution and pooling on NHWC images
    "Col2Im", "Conv", "ConvTranspose", "ConvWeight", "Im2Col", "avg_pool2d", "col2im", "conv",
    "conv_transpose", "conv_weight", "im2col", "max_pool2d",
]
__all__ += ["Sigmoid", "SigmoidGrad", "Softmax", "TanhGrad"]
