"""Doctest collection of ``needle`` skips the modules of optional extras that are missing."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("onnx") else [
    "needle/onnx/graph.py", "needle/onnx/exporter.py"]
