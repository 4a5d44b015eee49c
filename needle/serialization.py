"""``save`` and ``load``: checkpoints in the safetensors format, written atomically.

A file holds a tree of dicts, lists, numbers, strings and arrays (a ``state_dict``, an
optimiser's state, a whole training checkpoint). Arrays are stored as safetensors tensors
named by their path (``model/modules.0.weight``); everything else is JSON in the header's
``__metadata__``. Loading parses bytes only: it never runs code (no pickle). Saving writes
a temporary file beside the target and renames it over the target, so a crash mid-save
leaves the previous file intact.

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
>>> save({"w": np.ones((2, 3), np.float32), "step": 3}, path)
>>> state = load(path)
>>> state["w"].shape, state["step"]
((2, 3), 3)
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import Any

import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U64": np.uint64,
           "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_TREE_KEY = "needle.tree"
_MAX_HEADER = 100 * 2 ** 20


def _as_array(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array when it is array-like data (arrays, Tensors, numpy
    scalars), else None."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    if hasattr(value, "numpy") and hasattr(value, "shape"):  # Tensor, NDArray
        return np.asarray(value.numpy())
    return None


def _flatten(value: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON skeleton of ``value``; its arrays are moved into ``arrays`` by path."""
    array = _as_array(value)
    if array is not None:
        if array.dtype not in _CODES:
            raise TypeError(f"save: {path or 'value'} has dtype {array.dtype}, which the "
                            f"safetensors format cannot hold")
        if path in arrays:
            raise ValueError(f"save: two entries are both named {path!r}")
        arrays[path] = array
        return {"__tensor__": path}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"save: dict keys must be strings, got {list(value)} at "
                            f"{path or 'the top'}")
        return {k: _flatten(v, f"{path}/{k}" if path else k, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_flatten(v, f"{path}/{i}" if path else str(i), arrays)
                for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save: cannot store {type(value).__name__} at {path or 'the top'}; "
                    f"use arrays, Tensors, numbers, strings, lists and dicts")


def _unflatten(skeleton: Any, arrays: dict[str, np.ndarray], filename: str) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            name = skeleton["__tensor__"]
            if name not in arrays:
                raise ValueError(f"{filename}: the header names tensor {name!r} but the file "
                                 f"does not hold it")
            return arrays[name]
        return {k: _unflatten(v, arrays, filename) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_unflatten(v, arrays, filename) for v in skeleton]
    return skeleton


def _encode(value: Any) -> bytes:
    """The safetensors bytes of ``value``: header length, JSON header, then the data."""
    arrays: dict[str, np.ndarray] = {}
    skeleton = _flatten(value, "", arrays)
    header: dict[str, Any] = {"__metadata__": {_TREE_KEY: json.dumps(skeleton)}}
    blobs, offset = [], 0
    for name, array in arrays.items():
        blob = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def save(value: Any, path: str | os.PathLike[str]) -> None:
    """Write ``value`` (a state dict or any tree of arrays and plain data) to ``path`` in
    the safetensors format, atomically (``atomic_write``)."""
    atomic_write(path, _encode(value))


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, fsync-ed and renamed
    over ``path``: a crash mid-write leaves the previous file intact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_header(raw: bytes, filename: str) -> dict[str, Any]:
    if len(raw) < 8:
        raise ValueError(f"{filename}: not a safetensors file (only {len(raw)} bytes)")
    (size,) = struct.unpack("<Q", raw[:8])
    if size > min(len(raw) - 8, _MAX_HEADER):
        raise ValueError(f"{filename}: not a safetensors file or truncated (header of {size} "
                         f"bytes, file of {len(raw)})")
    try:
        header = json.loads(raw[8:8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{filename}: not a safetensors file (bad header: {exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{filename}: not a safetensors file (header is not a JSON object)")
    return header


def _read_tensor(raw: memoryview, name: str, entry: Any, filename: str) -> np.ndarray:
    try:
        dtype, shape = np.dtype(_DTYPES[entry["dtype"]]), tuple(entry["shape"])
        start, end = entry["data_offsets"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{filename}: bad header entry for tensor {name!r}: {entry}") from exc
    if not 0 <= start <= end <= len(raw) or end - start != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{filename}: tensor {name!r} ({entry['dtype']} {list(shape)}) does not "
                         f"fit bytes [{start}, {end}) of {len(raw)}: the file is truncated "
                         f"or corrupt")
    array = np.frombuffer(raw[start:end], dtype=dtype.newbyteorder("<")).reshape(shape)
    return array.astype(dtype)  # native byte order, and a writable copy


def load(path: str | os.PathLike[str]) -> Any:
    """What ``save`` wrote to ``path``; a safetensors file from elsewhere loads as a dict
    of numpy arrays by tensor name. Nothing in the file is executed."""
    filename = os.fspath(path)
    with open(filename, "rb") as f:
        raw = f.read()
    header = _read_header(raw, filename)
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(raw)[8 + struct.unpack("<Q", raw[:8])[0]:]
    arrays = {name: _read_tensor(body, name, entry, filename) for name, entry in header.items()}
    if _TREE_KEY not in metadata:
        return arrays
    return _unflatten(json.loads(metadata[_TREE_KEY]), arrays, filename)
