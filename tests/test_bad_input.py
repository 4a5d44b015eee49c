"""Bad input anywhere in needle gives a clear error saying what was expected and what came:
one case per validation path (ops, layers, optimisers, schedulers, data, files, autograd)."""

from __future__ import annotations

import json
import struct
from typing import Any, Callable

import numpy as np
import pytest

import needle as ndl
from needle import data, nn, ops, optim


def t(*shape: int, dtype: Any = np.float32) -> ndl.Tensor:
    return ndl.Tensor(np.ones(shape, dtype))


def _file(tmp: Any, raw: bytes) -> str:
    path = tmp / "bad.safetensors"
    path.write_bytes(raw)
    return str(path)


def _header(obj: Any, body: bytes = b"") -> bytes:
    text = json.dumps(obj).encode()
    return struct.pack("<Q", len(text)) + text + body


def _empty_epoch() -> Any:
    from needle import train
    loader = data.DataLoader(data.NDArrayDataset(np.zeros((0, 2), np.float32),
                                                 np.zeros(0, np.int64)), 2)
    return train.epoch(loader, nn.Linear(2, 2))


X = t(2, 3)
IMAGE = t(1, 4, 4, 2)
CASES: dict[str, tuple[Callable[[Any], Any], type[Exception], str]] = {
    # reductions and axes (every reduction goes through normalize_axes)
    "sum axis out of range": (lambda _: X.sum(5), ValueError, r"axis 5 is out of range .* 2 dims"),
    "sum axis repeated": (lambda _: X.sum((1, 1)), ValueError, r"repeated axis in \(1, 1\)"),
    "max axis out of range": (lambda _: ndl.max(X, 2), ValueError, "axis 2 is out of range"),
    "logsumexp axis repeated": (lambda _: ndl.logsumexp(X, (0, -2)), ValueError,
                                r"repeated axis in \(0, -2\)"),
    "split axis": (lambda _: ndl.split(X, 3), ValueError, "axis 3 is out of range"),
    # shapes
    "transpose of 1-D": (lambda _: ndl.transpose(t(2)), ValueError,
                         r"at least 2 dims, got shape \(2,\)"),
    "matmul of 0-d": (lambda _: ndl.matmul(t(), X), ValueError, r"at least 1 dim.*\(\) @"),
    "matmul inner sizes": (lambda _: X @ X, ValueError, "inner dimensions differ"),
    # products do not promote (as in PyTorch), on the fused path as in the composition
    "linear of mixed dtypes": (lambda _: nn.Linear(3, 2)(t(4, 3, dtype=np.float64)), TypeError,
                               r"linear needs operands of one dtype, got float64 \(shape "
                               r"\(4, 3\)\), float32"),
    "conv of mixed dtypes": (lambda _: nn.Conv(2, 3, 3)(t(1, 2, 5, 5, dtype=np.float64)),
                             TypeError, "conv needs operands of one dtype, got float64"),
    "reshape size": (lambda _: X.reshape((4,)), ValueError, r"\(2, 3\).*into shape \(4,\)"),
    "broadcast shapes": (lambda _: X.broadcast_to((3, 3)), ValueError, "cannot be broadcast"),
    "permute repeated": (lambda _: ndl.permute(X, (0, 0)), ValueError, "permutation"),
    "stack shapes": (lambda _: ndl.stack([X, t(3, 2)]), ValueError, "of one shape"),
    "concatenate shapes": (lambda _: ndl.concatenate([X, t(2, 2, 2)], 0), ValueError,
                           "match on every other axis"),
    "pad negative width": (lambda _: ndl.pad(X, ((0, -1), (0, 0))), ValueError,
                           r"non-negative ints per axis of a tensor of shape \(2, 3\)"),
    "pad wrong count": (lambda _: ndl.pad(X, ((0, 1),)), ValueError, "pair of non-negative"),
    "dilate negative": (lambda _: ndl.dilate(X, (0,), -1), ValueError,
                        "dilation must be an int >= 0, got -1"),
    "undilate negative": (lambda _: ndl.undilate(X, (0,), -2), ValueError,
                          "dilation must be an int >= 0, got -2"),
    "getitem out of range": (lambda _: X[np.array([0, 5])], IndexError,
                             r"getitem: .*shape \(2, 3\).*index 5"),
    "getitem int out of range": (lambda _: X[7], IndexError, "index 7"),
    "index_add out of range": (lambda _: ndl.index_add(t(2, 3), np.array([0, 9]), (3, 3)),
                               IndexError, r"index_add: .*shape \(3, 3\).*index 9"),
    "where shapes": (lambda _: ndl.where(t(2, 2, dtype=bool), X, X), ValueError,
                     "cannot be broadcast"),
    "where condition dtype": (lambda _: ndl.where(X, X, X), TypeError, "must be boolean"),
    "getitem float index": (lambda _: X[np.array([0.5])], IndexError, "integers or booleans"),
    # convolution
    "conv kernel 0": (lambda _: ndl.conv(IMAGE, t(0, 0, 2, 3)), ValueError,
                      "kernel size must be positive, got 0x0"),
    "conv channels": (lambda _: ndl.conv(IMAGE, t(3, 3, 5, 3)), ValueError,
                      "has 2 channels .* C_in=5"),
    "conv stride 0": (lambda _: ndl.conv(IMAGE, t(3, 3, 2, 3), stride=0), ValueError,
                      "stride must be a positive int"),
    "Conv layer kernel 0": (lambda _: nn.Conv(2, 3, 0), ValueError,
                            "kernel_size must be a positive int, got 0"),
    "pool kernel too large": (lambda _: ndl.max_pool2d(t(1, 2, 2, 1), 3), ValueError,
                              "kernel 3x3 is larger than the padded input 2x2"),
    "conv_transpose output_padding": (
        lambda _: ndl.conv_transpose(t(1, 3, 3, 2), t(3, 3, 1, 2), stride=2,
                                     output_padding=2), ValueError, "output_padding"),
    # layers
    "Linear features": (lambda _: nn.Linear(4, 2)(X), ValueError, r"inputs \(\.\.\., 4\)"),
    "LayerNorm width": (lambda _: nn.LayerNorm1d(4)(X), ValueError, "last axis of 4"),
    "BatchNorm dim": (lambda _: nn.BatchNorm1d(4)(X), ValueError, r"input \(N, 4\)"),
    "LSTM state not a tuple": (lambda _: nn.LSTM(3, 4)(t(2, 2, 3), t(1, 2, 4)), ValueError,
                               r"tuple \(h0, c0\)"),
    "Embedding ids": (lambda _: nn.Embedding(4, 2)(ndl.Tensor(np.array([[7.0]], np.float32))),
                      IndexError, r"\[0, 4\).*\[7, 7\]"),
    "cross-entropy labels": (lambda _: nn.SoftmaxLoss()(X, ndl.Tensor([0, 5])), IndexError,
                             r"labels must lie in \[0, 3\)"),
    "cross-entropy fractions": (lambda _: ops.softmax_cross_entropy(X, [0.5, 1]), ValueError,
                                "whole numbers"),
    "Dropout p": (lambda _: nn.Dropout(1.5), ValueError, r"in \[0, 1\), got 1.5"),
    "randb p": (lambda _: ndl.init.randb(3, p=1.5), ValueError, r"p must be .* got 1.5"),
    # optimisers and schedulers
    "duplicate params": (lambda _: optim.SGD([X, X]), ValueError, "more than once"),
    "empty params": (lambda _: optim.Adam([]), ValueError, "empty parameter list"),
    "Adam beta2": (lambda _: optim.Adam([X], beta2=1.0), ValueError, r"beta2 must be in \[0, 1\)"),
    "clip max_norm": (lambda _: nn.utils.clip_grad_norm_([X], -1), ValueError,
                      "max_norm must be a number >= 0"),
    "StepLR step_size": (lambda _: optim.StepLR(optim.SGD([t(1)]), step_size=0), ValueError,
                         "step_size must be a positive integer, got 0"),
    "CosineAnnealingLR T_max": (lambda _: optim.CosineAnnealingLR(optim.SGD([t(1)]), T_max=-1),
                                ValueError, "T_max must be a positive integer, got -1"),
    "LinearLR start_factor": (lambda _: optim.LinearLR(optim.SGD([t(1)]), start_factor=2),
                              ValueError, "0 < start_factor <= 1"),
    # data
    "empty loader": (lambda _: _empty_epoch(), ValueError, "yielded no batches"),
    "loader batch size": (lambda _: data.DataLoader(data.NDArrayDataset(np.zeros((3, 2))), 0),
                          ValueError, "batch_size must be a positive integer, got 0"),
    "RandomCrop padding": (lambda _: data.RandomCrop(-1), ValueError,
                           "padding must be >= 0, got -1"),
    # files
    "file too short": (lambda tmp: ndl.load(_file(tmp, b"abc")), ValueError,
                       r"not a safetensors file \(only 3 bytes\)"),
    "header longer than the file": (lambda tmp: ndl.load(_file(tmp, struct.pack("<Q", 10**6))),
                                    ValueError, "truncated"),
    "header not JSON": (lambda tmp: ndl.load(_file(tmp, struct.pack("<Q", 3) + b"{x}")),
                        ValueError, "bad header"),
    "header not an object": (lambda tmp: ndl.load(_file(tmp, _header([1, 2]))), ValueError,
                             "header is not a JSON object"),
    "tensor past the end": (
        lambda tmp: ndl.load(_file(tmp, _header({"w": {"dtype": "F32", "shape": [4],
                                                       "data_offsets": [0, 16]}}, b"\0" * 8))),
        ValueError, "'w'"),
    "save unsupported value": (lambda tmp: ndl.save({"f": object()}, str(tmp / "x")), TypeError,
                               "cannot store object"),
    # tensors and autograd
    "Tensor complex dtype": (lambda _: ndl.Tensor(np.array([1 + 2j])), TypeError,
                             "unsupported dtype complex128"),
    "Tensor of strings": (lambda _: ndl.Tensor(["a"]), TypeError, "unsupported dtype"),
    "backward without grad": (lambda _: ndl.Tensor([1.0], requires_grad=False).backward(),
                              RuntimeError, "does not require grad"),
    "out_grad shape": (lambda _: (X * 2).backward(t(3)), ValueError,
                       r"out_grad has shape \(3,\), expected the output's shape \(2, 3\)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_clear_error(name: str, tmp_path: Any) -> None:
    call, error, match = CASES[name]
    with pytest.raises(error, match=match):
        call(tmp_path)
