"""The ONNX mapping of needle's ops: ``CONVERTERS[op class] = converter``, one small function
per op, and ``MODULE_RULES[module class]`` for the layers exported whole (Embedding as a
Gather of its token-id input, BatchNorm in eval as BatchNormalization).

A converter gets the GraphBuilder, the traced ``Node`` (op, output value, input values) and
the ONNX names of the inputs (a list for a TensorTuple), and returns the name(s) of its
output. Layouts: needle's images are NHWC inside ``ops.conv`` and pooling, ONNX's NCHW, so
those converters transpose in and out explicitly (ONNX Runtime cancels adjacent pairs);
conv weights K×K×C_in×C_out become C_out×C_in×K×K through a Transpose of the initializer.
Op classes are found by their public names in ``needle.ops``: when an op moves, the package
still imports, and a renamed op is one line of ``CONVERTER_NAMES``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import nn, ops
from ..autograd import Value

if TYPE_CHECKING:
    from .graph import GraphBuilder

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]
KKIO_TO_OIKK = [3, 2, 0, 1]


@dataclass
class Node:
    """One traced op application: the op, the value it made and its input values."""

    op: Any  # an Op; its attributes (axes, stride, ...) depend on its class
    value: Value
    inputs: tuple[Value, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.cached_data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.value.cached_data.dtype)

    def input_shape(self, i: int = 0) -> tuple[int, ...]:
        return tuple(self.inputs[i].cached_data.shape)


@dataclass
class Windows:
    """The pending result of ``Im2Col``: the K×K windows of an NHWC image, exported only as
    the pooling that reduces them (a max or a sum over the window axes)."""

    image: str
    op: Any  # ops.Im2Col


Converter = Callable[..., Any]


class UnsupportedOpError(NotImplementedError):
    """An op, module or argument that has no ONNX mapping."""


def _scalar(g: GraphBuilder, node: Node, value: float) -> str:
    return g.constant(np.asarray(value, dtype=node.dtype), "scalar")


def _binary(op_type: str) -> Converter:
    return lambda g, node, a, b: g.node(op_type, [a, b])


def _with_scalar(op_type: str) -> Converter:
    return lambda g, node, a: g.node(op_type, [a, _scalar(g, node, node.op.scalar)])


def _unary(op_type: str) -> Converter:
    return lambda g, node, a: g.node(op_type, [a])


# ---------------------------------------------------------------------- elementwise
def power_scalar(g: GraphBuilder, node: Node, a: str) -> str:
    if node.op.scalar == 0.5:
        return g.node("Sqrt", [a])
    return g.node("Pow", [a, _scalar(g, node, node.op.scalar)])


def as_type(g: GraphBuilder, node: Node, a: str) -> str:
    from .graph import tensor_type

    return g.node("Cast", [a], to=tensor_type(node.dtype))


COMPARISONS = {operator.eq: "Equal", operator.gt: "Greater", operator.ge: "GreaterOrEqual",
               operator.lt: "Less", operator.le: "LessOrEqual"}


def compare(g: GraphBuilder, node: Node, a: str, *b: str) -> str:
    op = node.op
    rhs = b[0] if b else g.constant(np.asarray(op.scalar, node.inputs[0].cached_data.dtype))
    if op.fn is operator.ne:
        return g.node("Not", [g.node("Equal", [a, rhs])])
    if op.fn not in COMPARISONS:
        raise UnsupportedOpError(f"no ONNX mapping for the comparison {op.fn!r}")
    return g.node(COMPARISONS[op.fn], [a, rhs])


# ---------------------------------------------------------------------- shapes
def reshape(g: GraphBuilder, node: Node, a: str) -> str:
    return g.node("Reshape", [a, g.ints(node.shape)])


def broadcast_to(g: GraphBuilder, node: Node, a: str) -> str:
    return g.node("Expand", [a, g.ints(node.shape)])


def permute(g: GraphBuilder, node: Node, a: str) -> str:
    return g.node("Transpose", [a], perm=list(node.op.axes))


def flip(g: GraphBuilder, node: Node, a: str) -> str:
    axes = node.op.axes if node.op.axes is not None else tuple(range(len(node.shape)))
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    n = len(axes)
    return g.node("Slice", [a, g.ints([-1] * n), g.ints([-2 ** 63] * n), g.ints(axes),
                            g.ints([-1] * n)])


def pad(g: GraphBuilder, node: Node, a: str) -> str:
    pads = [lo for lo, _ in node.op.axes] + [hi for _, hi in node.op.axes]
    return g.node("Pad", [a, g.ints(pads)])


def split(g: GraphBuilder, node: Node, a: str) -> list[str]:
    axis = node.op.axis
    count = node.input_shape()[axis]
    parts = g.node("Split", [a, g.ints([1] * count)], outputs=count, axis=axis)
    parts = [parts] if count == 1 else parts
    return [g.squeeze(p, [axis]) for p in parts]


def stack(g: GraphBuilder, node: Node, parts: list[str]) -> str:
    axis = node.op.axis % len(node.shape)
    return g.node("Concat", [g.unsqueeze(p, [axis]) for p in parts], axis=axis)


def concatenate(g: GraphBuilder, node: Node, parts: list[str]) -> str:
    return g.node("Concat", list(parts), axis=node.op.axis)


def make_tuple(g: GraphBuilder, node: Node, *parts: str) -> list[str]:
    return list(parts)


def tuple_get_item(g: GraphBuilder, node: Node, parts: list[str]) -> str:
    return parts[node.op.index]


def getitem(g: GraphBuilder, node: Node, a: str) -> str:
    """Ints and slices as Slice (+ Squeeze); one integer array on axis 0 as Gather."""
    index = node.op.index
    items = index if isinstance(index, tuple) else (index,)
    if len(items) == 1 and isinstance(items[0], np.ndarray):
        return g.node("Gather", [a, g.constant(items[0].astype(np.int64), "indices")], axis=0)
    if not all(isinstance(i, (int, np.integer, slice)) for i in items):
        raise UnsupportedOpError(f"GetItem: no ONNX mapping for the index {index!r} (ints "
                                 f"and slices, or one integer array, are supported)")
    shape = node.input_shape()
    cuts: list[tuple[int, int, int, int]] = []  # (axis, start, stop, step)
    squeezed = []
    for axis, item in enumerate(items):
        if isinstance(item, slice):
            start, stop, step = item.indices(shape[axis])
            if (start, stop, step) != (0, shape[axis], 1):
                # stop -1 from indices() means "past the front": ONNX spells it INT64_MIN
                cuts.append((axis, start, stop if stop >= 0 else -2 ** 63, step))
        else:
            cuts.append((axis, int(item) % shape[axis], int(item) % shape[axis] + 1, 1))
            squeezed.append(axis)
    out = a
    if cuts:
        axes, starts, stops, steps = zip(*cuts)
        out = g.node("Slice", [a, g.ints(starts), g.ints(stops), g.ints(axes), g.ints(steps)])
    return g.squeeze(out, squeezed) if squeezed else g.node("Identity", [out])


def where(g: GraphBuilder, node: Node, condition: str, a: str, b: str) -> str:
    return g.node("Where", [condition, a, b])


# ---------------------------------------------------------------------- reductions
def _axes(node: Node) -> list[int] | None:
    axes = node.op.axes
    if axes is None:
        return None
    return [axes] if isinstance(axes, int) else list(axes)


def _check_window_axes(node: Node) -> None:
    if _axes(node) != [3, 4]:
        raise UnsupportedOpError(f"Im2Col windows export only as a pooling over their window "
                                 f"axes (3, 4), not over axes {_axes(node)}")


def summation(g: GraphBuilder, node: Node, a: Any) -> str:
    if isinstance(a, Windows):
        _check_window_axes(node)
        # avg_pool2d is this sum divided by K²: AveragePool (zero padding counted) times K²
        kernel = a.op.kernel
        pooled = _pool(g, "AveragePool", a, count_include_pad=1)
        return g.node("Mul", [pooled, _scalar(g, node, kernel[0] * kernel[1])])
    return g.reduce("ReduceSum", a, _axes(node), node.op.keepdims)


def reduce_max(g: GraphBuilder, node: Node, a: Any) -> str:
    if isinstance(a, Windows):
        _check_window_axes(node)
        return _pool(g, "MaxPool", a)
    return g.reduce("ReduceMax", a, _axes(node), False)


def logsumexp(g: GraphBuilder, node: Node, a: str) -> str:
    return g.reduce("ReduceLogSumExp", a, _axes(node), False)


def softmax(g: GraphBuilder, node: Node, a: str) -> str:
    return g.node("Softmax", [a], axis=node.op.axis)


def logsoftmax(g: GraphBuilder, node: Node, a: str) -> str:
    return g.node("LogSoftmax", [a], axis=node.op.axis)


# ---------------------------------------------------------------------- linear algebra
def _swap_last(g: GraphBuilder, x: str, ndim: int) -> str:
    perm = list(range(ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return g.node("Transpose", [x], perm=perm)


def matmul(g: GraphBuilder, node: Node, a: str, b: str) -> str:
    op = node.op
    a = _swap_last(g, a, len(node.input_shape(0))) if op.transpose_a else a
    b = _swap_last(g, b, len(node.input_shape(1))) if op.transpose_b else b
    return g.node("MatMul", [a, b])


def linear(g: GraphBuilder, node: Node, x: str, weight: str, bias: str) -> str:
    """x W + b with W (in, out): Gemm, whose C broadcasts a (1, out) or (out,) bias."""
    return g.node("Gemm", [x, weight, bias])


def normalize(g: GraphBuilder, node: Node, x: str, *affine: str) -> str:
    """LayerNormalization over the last axis; any other layout as its composition."""
    op, ndim = node.op, len(node.shape)
    channel = op.channel_axis % ndim
    if tuple(op.axes) == (ndim - 1,) and channel == ndim - 1:
        if not affine:
            size = node.shape[-1]
            affine = (g.constant(np.ones(size, node.dtype)), g.constant(np.zeros(size,
                                                                                  node.dtype)))
        return g.node("LayerNormalization", [x, *affine], axis=-1, epsilon=op.eps)
    mean = g.reduce("ReduceMean", x, list(op.axes), True)
    centered = g.node("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.node("Mul", [centered, centered]), list(op.axes), True)
    std = g.node("Sqrt", [g.node("Add", [var, _scalar(g, node, op.eps)])])
    out = g.node("Div", [centered, std])
    if not affine:
        return out
    shape = [1] * ndim
    shape[channel] = node.shape[channel]
    weight, bias = (g.node("Reshape", [p, g.ints(shape)]) for p in affine)
    return g.node("Add", [g.node("Mul", [out, weight]), bias])


# ---------------------------------------------------------------------- convolution, pooling
def _nchw(g: GraphBuilder, x: str) -> str:
    return g.node("Transpose", [x], perm=NHWC_TO_NCHW)


def _nhwc(g: GraphBuilder, x: str) -> str:
    return g.node("Transpose", [x], perm=NCHW_TO_NHWC)


def conv(g: GraphBuilder, node: Node, a: str, w: str, *bias: str) -> str:
    """ops.conv on NHWC a and K×K×C_in×C_out w: Conv on NCHW and C_out×C_in×K×K."""
    op, kernel = node.op, node.input_shape(1)[:2]
    weight = g.node("Transpose", [w], perm=KKIO_TO_OIKK)
    out = g.node("Conv", [_nchw(g, a), weight, *bias], kernel_shape=list(kernel),
                 strides=[op.stride] * 2, pads=[op.padding] * 4)
    return _nhwc(g, out)


def conv_transpose(g: GraphBuilder, node: Node, a: str, w: str) -> str:
    """The adjoint of conv in its input: ConvTranspose with the conv weight as
    C_out×C_in×K×K (ONNX reads it as input channels × output channels)."""
    op, kernel = node.op, node.input_shape(1)[:2]
    weight = g.node("Transpose", [w], perm=KKIO_TO_OIKK)
    out = g.node("ConvTranspose", [_nchw(g, a), weight], kernel_shape=list(kernel),
                 strides=[op.stride] * 2, pads=[op.padding] * 4,
                 output_padding=list(op.output_padding))
    return _nhwc(g, out)


def im2col(g: GraphBuilder, node: Node, a: str) -> Windows:
    return Windows(a, node.op)


def _pool(g: GraphBuilder, op_type: str, windows: Windows, **attributes: Any) -> str:
    op = windows.op
    out = g.node(op_type, [_nchw(g, windows.image)], kernel_shape=list(op.kernel),
                 strides=[op.stride] * 2, pads=[op.padding] * 4, **attributes)
    return _nhwc(g, out)


def max_pool(g: GraphBuilder, node: Node, a: str) -> str:
    """ops.max_pool (non-overlapping k×k windows of NHWC a): MaxPool, stride k, floor mode."""
    k = node.op.kernel
    out = g.node("MaxPool", [_nchw(g, a)], kernel_shape=[k, k], strides=[k, k])
    return _nhwc(g, out)


def lstm_sequence(g: GraphBuilder, node: Node, x_gates: str, w_hh: str, h: str,
                  c: str) -> str:
    """ops.lstm_sequence, unrolled as needle's per-step LSTM cell: for each step t,
    gates = x_gates[t] + h W_hh, split (i, f, g, o); c = s(f) c + s(i) tanh(g);
    h = s(o) tanh(c); the output stacks [h_t, c_t] along a new first axis."""
    steps = node.input_shape(0)[0]
    hidden = node.input_shape(0)[2] // 4
    rows = g.node("Split", [x_gates, g.ints([1] * steps)], outputs=steps, axis=0)
    states = []
    for x_t in [rows] if steps == 1 else rows:
        gates = g.node("Add", [g.squeeze(x_t, [0]), g.node("MatMul", [h, w_hh])])
        i, f, cell, o = g.node("Split", [gates, g.ints([hidden] * 4)], outputs=4, axis=1)
        c = g.node("Add", [g.node("Mul", [g.node("Sigmoid", [f]), c]),
                           g.node("Mul", [g.node("Sigmoid", [i]), g.node("Tanh", [cell])])])
        h = g.node("Mul", [g.node("Sigmoid", [o]), g.node("Tanh", [c])])
        states.append(g.unsqueeze(g.node("Concat", [h, c], axis=1), [0]))
    return g.node("Concat", states, axis=0)


# ---------------------------------------------------------------------- the table
#: public name in ``needle.ops`` -> converter; when an op moves or is renamed, this is the
#: line to change (``test_every_converter_name_resolves`` lists names that no longer resolve)
CONVERTER_NAMES: dict[str, Converter] = {
    "EWiseAdd": _binary("Add"),
    "EWiseMul": _binary("Mul"),
    "EWiseDiv": _binary("Div"),
    "EWisePow": _binary("Pow"),
    "Maximum": _binary("Max"),
    "AddScalar": _with_scalar("Add"),
    "MulScalar": _with_scalar("Mul"),
    "DivScalar": _with_scalar("Div"),
    "PowerScalar": power_scalar,
    "Negate": _unary("Neg"),
    "Exp": _unary("Exp"),
    "Log": _unary("Log"),
    "ReLU": _unary("Relu"),
    "Tanh": _unary("Tanh"),
    "Sigmoid": _unary("Sigmoid"),
    "Erf": _unary("Erf"),
    "LogicalNot": _unary("Not"),
    "AsType": as_type,
    "Compare": compare,
    "Reshape": reshape,
    "BroadcastTo": broadcast_to,
    "Permute": permute,
    "Flip": flip,
    "Pad": pad,
    "Split": split,
    "Stack": stack,
    "Concatenate": concatenate,
    "MakeTensorTuple": make_tuple,
    "TupleGetItem": tuple_get_item,
    "GetItem": getitem,
    "Where": where,
    "Summation": summation,
    "Max": reduce_max,
    "LogSumExp": logsumexp,
    "Softmax": softmax,
    "LogSoftmax": logsoftmax,
    "MatMul": matmul,
    "Linear": linear,
    "Normalize": normalize,
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "Im2Col": im2col,
    "MaxPool": max_pool,
    "LSTMSequence": lstm_sequence,
}

#: op class -> converter, for the names that ``needle.ops`` has
CONVERTERS: dict[type, Converter] = {getattr(ops, name): converter for name, converter
                                     in CONVERTER_NAMES.items() if hasattr(ops, name)}
UNRESOLVED = sorted(name for name in CONVERTER_NAMES if not hasattr(ops, name))


def _with_subclasses(table: dict[type, Converter]) -> dict[type, Converter]:
    """The table plus each op's subclasses (the fused ``Tanh`` computes what ``Tanh`` does
    and differs only in its gradient), unless they have their own converter."""
    out = dict(table)
    pending: list[type] = list(table)
    while pending:
        cls = pending.pop()
        subclasses: list[type] = cls.__subclasses__()
        for sub in subclasses:
            if sub not in out:
                out[sub] = out[cls]
                pending.append(sub)
    return out


CONVERTERS = _with_subclasses(CONVERTERS)


# ---------------------------------------------------------------------- whole modules
def embedding(g: GraphBuilder, module: nn.Embedding, args: tuple[Any, ...],
              ids: str) -> str:
    """Rows of the table for token ids: Gather (ids cast to int64 when they are floats)."""
    if np.dtype(args[0].dtype).kind not in "iu":
        ids = g.node("Cast", [ids], to=7)  # TensorProto.INT64
    return g.node("Gather", [g.tensor(module.weight), ids], axis=0)


def batch_norm(g: GraphBuilder, module: nn.BatchNorm1d, args: tuple[Any, ...],
               x: str) -> str:
    """BatchNorm in eval: BatchNormalization with the running statistics."""
    inputs = [x] + [g.tensor(t) for t in (module.weight, module.bias, module.running_mean,
                                          module.running_var)]
    return g.node("BatchNormalization", inputs, epsilon=module.eps)


MODULE_RULES: dict[type, Converter] = {
    nn.Embedding: embedding,
    nn.BatchNorm1d: batch_norm,  # and BatchNorm2d, its subclass
}


def no_mapping_message(op_classes: set[type]) -> str:
    names = ", ".join(sorted(c.__name__ for c in op_classes))
    return (f"no ONNX mapping for op {names}: add a converter for it to "
            f"needle.onnx.converters.CONVERTERS")
