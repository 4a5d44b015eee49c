"""float64 end to end: tensors made from float64 numpy arrays (no dtype given) stay float64
through every op's forward and backward, so a course-style finite-difference check (inputs
perturbed in place through ``.flat``) reaches 1e-6."""

import numpy as np
import pytest

import needle as ndl
from needle import ops

_MASK = np.array([[True, False, True, True], [False, True, False, True], [True] * 4])

OPS = {  # name: (function of Tensors, input shapes, positive inputs)
    "add": (lambda a, b: a + b, [(3, 4), (4,)], False),
    "sub": (lambda a, b: a - b, [(3, 4), (3, 1)], False),
    "multiply": (lambda a, b: a * b, [(3, 4), (3, 4)], False),
    "divide": (lambda a, b: a / b, [(3, 4), (3, 4)], True),
    "power": (lambda a, b: a ** b, [(3, 4), (3, 4)], True),
    "scalar ops": (lambda a: ((a + 1.5) * 2.0 - 0.5) / 3.0 + 2.0 / a, [(3, 4)], True),
    "power_scalar": (lambda a: ops.power_scalar(a, 3), [(3, 4)], False),
    "negate": (lambda a: -a, [(3, 4)], False),
    "log": (ops.log, [(3, 4)], True), "exp": (ops.exp, [(3, 4)], False),
    "sqrt": (ops.sqrt, [(3, 4)], True), "relu": (ops.relu, [(3, 4)], False),
    "tanh": (ops.tanh, [(3, 4)], False), "sigmoid": (ops.sigmoid, [(3, 4)], False),
    "erf": (ops.erf, [(3, 4)], False), "maximum": (ops.maximum, [(3, 4), (3, 4)], False),
    "matmul": (ops.matmul, [(3, 4), (4, 2)], False),
    "matmul N-D @ 2-D": (ops.matmul, [(2, 3, 4), (4, 2)], False),
    "matmul 1-D": (ops.matmul, [(4,), (2, 4, 3)], False),
    "summation": (lambda a: ops.summation(a, (0,)), [(3, 4)], False),
    "mean": (lambda a: ops.mean(a, 1, keepdims=True), [(3, 4)], False),
    "max": (lambda a: ops.amax(a, 1), [(3, 4)], False),
    "broadcast_to": (lambda a: ops.broadcast_to(a, (2, 3, 4)), [(3, 1)], False),
    "reshape": (lambda a: ops.reshape(a, (4, 3)), [(3, 4)], False),
    "transpose": (ops.transpose, [(2, 3, 4)], False),
    "permute": (lambda a: ops.permute(a, (2, 0, 1)), [(2, 3, 4)], False),
    "logsumexp": (lambda a: ops.logsumexp(a, (1,)), [(3, 4)], False),
    "logsoftmax": (ops.logsoftmax, [(3, 4)], False),
    "softmax": (ops.softmax, [(3, 4)], False),
    "softmax_cross_entropy": (lambda a: ops.softmax_cross_entropy(a, np.array([0, 3, 1])),
                              [(3, 4)], False),
    "stack": (lambda a, b: ops.stack([a, b], 1), [(3, 4), (3, 4)], False),
    "split": (lambda a: ops.split(a, 1)[2] * 2.0, [(3, 4)], False),
    "concatenate": (lambda a, b: ops.concatenate([a, b], 0), [(3, 4), (2, 4)], False),
    "flip": (lambda a: ops.flip(a, (0, 1)), [(3, 4)], False),
    "pad": (lambda a: ops.pad(a, ((1, 0), (0, 2))), [(3, 4)], False),
    "dilate": (lambda a: ops.dilate(a, (0,), 1), [(3, 4)], False),
    "undilate": (lambda a: ops.undilate(a, (1,), 1), [(3, 4)], False),
    "getitem": (lambda a: a[1:, np.array([0, 2])], [(3, 4)], False),
    "where": (lambda a, b: ops.where(ndl.Tensor(_MASK), a, b), [(3, 4), (3, 4)], False),
    "linear": (ops.linear, [(3, 4), (4, 2), (2,)], False),
    "normalize": (lambda x, w, b: ops.normalize(x, -1, 1e-5, w, b), [(3, 4), (4,), (4,)],
                  False),
    "conv": (lambda a, b: ops.conv(a, b, stride=1, padding=1), [(2, 4, 4, 2), (3, 3, 2, 3)],
             False),
    "conv_transpose": (lambda a, b: ops.conv_transpose(a, b, stride=2),
                       [(1, 3, 3, 2), (3, 3, 3, 2)], False),
    "max_pool2d": (lambda a: ops.max_pool2d(a, 2), [(1, 4, 4, 2)], False),
    "avg_pool2d": (lambda a: ops.avg_pool2d(a, 2), [(1, 4, 4, 2)], False),
    "im2col": (lambda a: ops.im2col(a, 3, padding=1), [(1, 3, 3, 2)], False),
}


def _inputs(shapes, positive, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(0.5, 2.0, s) if positive else rng.standard_normal(s) for s in shapes]
    return [ndl.Tensor(a) for a in arrays]  # no dtype: float64 arrays must stay float64


@pytest.mark.parametrize("name", sorted(OPS))
def test_float64_forward_and_backward_reach_1e_6(name):
    fn, shapes, positive = OPS[name]
    args = _inputs(shapes, positive, seed=len(name))
    out = fn(*args)
    assert out.dtype == np.float64, f"{name}: output is {out.dtype}"
    projection = ndl.Tensor(np.random.default_rng(1).standard_normal(out.shape))

    def objective():
        with ndl.no_grad():
            return float((fn(*args) * projection).sum().numpy())

    (out * projection).sum().backward()
    eps = 1e-6
    for i, x in enumerate(args):
        assert x.grad.dtype == np.float64, f"{name}: gradient {i} is {x.grad.dtype}"
        numeric = np.zeros(x.shape)
        flat = x.realize_cached_data().flat
        for j in range(x.size):  # the course's way: perturb the tensor's memory in place
            flat[j] += eps
            upper = objective()
            flat[j] -= 2 * eps
            lower = objective()
            flat[j] += eps
            numeric.flat[j] = (upper - lower) / (2 * eps)
        analytic = x.grad.numpy()
        error = np.linalg.norm(analytic - numeric) / max(
            np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-12)
        assert error < 1e-6, f"{name}: input {i} relative error {error:.2e}"


@pytest.mark.parametrize("layer", ["Linear", "LayerNorm1d", "BatchNorm1d", "Conv", "LSTM"])
def test_float64_layers_keep_float64(layer):
    np.random.seed(0)
    nn = ndl.nn
    build = {"Linear": lambda: (nn.Linear(4, 3, dtype="float64"), (5, 4)),
             "LayerNorm1d": lambda: (nn.LayerNorm1d(4, dtype="float64"), (5, 4)),
             "BatchNorm1d": lambda: (nn.BatchNorm1d(4, dtype="float64"), (5, 4)),
             "Conv": lambda: (nn.Conv(2, 3, 3, dtype="float64"), (2, 2, 5, 5)),
             "LSTM": lambda: (nn.LSTM(4, 3, dtype="float64"), (6, 2, 4))}
    module, shape = build[layer]()
    out = module(ndl.Tensor(np.random.randn(*shape)))
    out = out[0] if isinstance(out, tuple) else out
    assert out.dtype == np.float64
    out.backward()
    assert all(p.grad.dtype == np.float64 for p in module.parameters())
