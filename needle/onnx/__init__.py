"""ONNX export: ``ndl.onnx.export(model, example_input, "model.onnx", opset=17)``.

Traces one forward pass in eval mode and writes it with the ``onnx`` package (the optional
extra ``pip install needle[onnx]``, which also brings ONNX Runtime to run it). The op
mapping is the table ``needle.onnx.converters.CONVERTERS``; see docs/interop.md.
"""

from __future__ import annotations

import os
from typing import Any

from ..nn import Module
from .converters import CONVERTERS, MODULE_RULES, UnsupportedOpError
from .trace import Trace, trace


def export(model: Module, example_input: Any, path: str | os.PathLike[str],
           opset: int = 17) -> Any:
    """Trace ``model`` on ``example_input`` (a Tensor, array or tuple of them) in eval mode
    and write the ONNX model to ``path``; returns the ``onnx.ModelProto``."""
    try:
        from .exporter import export as export_onnx
    except ImportError as error:  # the optional extra is missing
        raise ImportError(f"ONNX export needs the onnx package ({error}): "
                          "pip install 'needle[onnx]'") from None
    return export_onnx(model, example_input, path, opset)


__all__ = ["CONVERTERS", "MODULE_RULES", "Trace", "UnsupportedOpError", "export", "trace"]
