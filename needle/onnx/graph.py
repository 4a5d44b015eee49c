"""GraphBuilder: the ONNX nodes and initializers of an export, built with the ``onnx`` package.

Converters call ``node`` (one ONNX operator), ``constant`` (an initializer) and ``reduce``
(the ReduceX operators, whose ``axes`` moved from an attribute to an input in opset 18).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphBuilder:
    """Nodes and initializers of one ONNX graph, with unique names."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used: set[str] = set()

    def fresh(self, hint: str) -> str:
        """A name not used before, from ``hint``."""
        name, i = hint, 1
        while name in self._used:
            name, i = f"{hint}_{i}", i + 1
        self._used.add(name)
        return name

    def constant(self, array: Any, hint: str = "const") -> str:
        """An initializer holding ``array`` (a numpy array or number); its name."""
        name = self.fresh(hint)
        value = np.ascontiguousarray(np.asarray(array))
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        """An int64 initializer (shapes, axes, split sizes)."""
        return self.constant(np.asarray(list(values), dtype=np.int64), hint)

    def node(self, op_type: str, inputs: Sequence[str], outputs: int = 1,
             **attributes: Any) -> Any:
        """Append one ONNX operator; its output name (a list when ``outputs`` > 1)."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=self.fresh(f"{op_type}_node"), **attributes))
        return names[0] if outputs == 1 else names

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None,
               keepdims: bool) -> str:
        """ReduceSum/ReduceMax/ReduceMean/... over ``axes`` (None: all)."""
        keep = int(keepdims)
        if axes is None:
            return self.node(op_type, [x], keepdims=keep)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes, "axes")], keepdims=keep)
        return self.node(op_type, [x], axes=list(axes), keepdims=keep)

    def tensor(self, value: Any) -> Any:
        """The ONNX name of a traced needle value (an initializer for a constant)."""
        raise NotImplementedError

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.node("Unsqueeze", [x, self.ints(axes, "axes")])

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.node("Squeeze", [x, self.ints(axes, "axes")])


def tensor_type(dtype: Any) -> int:
    """The ONNX element type of a numpy dtype."""
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
