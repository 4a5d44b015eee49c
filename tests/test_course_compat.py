"""Code written for the needle course framework (CMU 10-414) runs unchanged on needle:
the homework checks' idioms, one test per point of the contract they rely on."""

import gc

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn, ops


def gradient_check(f, *args, tol=1e-6, backward=False, **kwargs):
    """The course's own checker (hw1-hw4 ``tests/``), verbatim but for the comments: it
    perturbs each input in place through ``.flat`` and calls ``gradient_as_tuple``."""
    eps = 1e-4
    numerical_grads = [np.zeros(a.shape) for a in args]
    for i in range(len(args)):
        for j in range(args[i].realize_cached_data().size):
            args[i].realize_cached_data().flat[j] += eps
            f1 = float(f(*args, **kwargs).numpy().sum())
            args[i].realize_cached_data().flat[j] -= 2 * eps
            f2 = float(f(*args, **kwargs).numpy().sum())
            args[i].realize_cached_data().flat[j] += eps
            numerical_grads[i].flat[j] = (f1 - f2) / (2 * eps)
    if not backward:
        out = f(*args, **kwargs)
        computed_grads = [x.numpy() for x in
                          out.op.gradient_as_tuple(ndl.Tensor(np.ones(out.shape)), out)]
    else:
        out = f(*args, **kwargs).sum()
        out.backward()
        computed_grads = [a.grad.numpy() for a in args]
    error = sum(np.linalg.norm(computed_grads[i] - numerical_grads[i])
                for i in range(len(args)))
    assert error < tol
    return computed_grads


# ---------------------------------------------------------------------------- 1. backward()
def test_backward_without_out_grad_on_a_non_scalar_uses_ones():
    np.random.seed(0)
    model = nn.RNN(3, 4)
    x = ndl.Tensor(np.random.randn(5, 2, 3).astype(np.float32))
    output, h = model(x)
    output.backward()  # course code: ones of output's shape
    expected = [p.grad.numpy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    output, h = model(x)
    output.backward(ndl.Tensor(np.ones(output.shape, np.float32)))
    for p, want in zip(model.parameters(), expected):
        np.testing.assert_array_equal(p.grad.numpy(), want)


# ---------------------------------------------------------------------------- 2/3. the checker
@pytest.mark.parametrize("backward", [False, True])
def test_the_course_gradient_checker_passes_at_1e_6(backward):
    """float64 inputs stay float64 and ``.flat`` writes through, so the checker reaches its
    tolerance; with backward=False it calls each op's gradient directly."""
    np.random.seed(1)
    cases = [(ndl.divide, (5, 4), (5, 4)), (ndl.matmul, (5, 4), (4, 3)),
             (ndl.matmul, (6, 6, 5, 4), (4, 3)), (ndl.matmul, (6, 5, 4), (6, 4, 3)),
             (ndl.summation, (5, 4)), (ndl.logsumexp, (3, 5)), (ndl.tanh, (4, 3)),
             (ndl.broadcast_to, (3, 1)), (ndl.reshape, (3, 4)), (ndl.transpose, (3, 5, 4))]
    kwargs = {ndl.broadcast_to: {"shape": (3, 4)}, ndl.reshape: {"shape": (4, 3)},
              ndl.logsumexp: {"axes": (1,)}, ndl.transpose: {"axes": (0, 2)}}
    for f, *shapes in cases:
        args = [ndl.Tensor(np.random.randn(*s) + (3 if f is ndl.divide else 0)) for s in shapes]
        grads = gradient_check(f, *args, backward=backward, **kwargs.get(f, {}))
        assert [g.shape for g in grads] == [a.shape for a in args]


# ---------------------------------------------------------------------------- 9. op nodes
PUBLIC_OPS = {  # name: (function, input shapes, keyword arguments)
    "add": (ops.add, [(3, 4), (3, 4)], {}), "multiply": (ops.multiply, [(3, 4), (3, 4)], {}),
    "divide": (ops.divide, [(3, 4), (3, 4)], {}), "power": (ops.power, [(3, 4), (3, 4)], {}),
    "add_scalar": (ops.add_scalar, [(3, 4)], {"scalar": 2.0}),
    "mul_scalar": (ops.mul_scalar, [(3, 4)], {"scalar": 2.0}),
    "divide_scalar": (ops.divide_scalar, [(3, 4)], {"scalar": 2.0}),
    "power_scalar": (ops.power_scalar, [(3, 4)], {"scalar": 3}),
    "negate": (ops.negate, [(3, 4)], {}), "log": (ops.log, [(3, 4)], {}),
    "exp": (ops.exp, [(3, 4)], {}), "relu": (ops.relu, [(3, 4)], {}),
    "tanh": (ops.tanh, [(3, 4)], {}), "sigmoid": (ops.sigmoid, [(3, 4)], {}),
    "maximum": (ops.maximum, [(3, 4), (3, 4)], {}),
    "matmul 2-D": (ops.matmul, [(3, 4), (4, 5)], {}),
    "matmul N-D @ 2-D": (ops.matmul, [(6, 6, 5, 4), (4, 3)], {}),
    "matmul 2-D @ N-D": (ops.matmul, [(5, 4), (2, 4, 3)], {}),
    "matmul batched": (ops.matmul, [(2, 5, 4), (2, 4, 3)], {}),
    "matmul broadcast": (ops.matmul, [(2, 1, 5, 4), (3, 4, 2)], {}),
    "matmul 1-D @ 2-D": (ops.matmul, [(4,), (4, 3)], {}),
    "matmul 2-D @ 1-D": (ops.matmul, [(3, 4), (4,)], {}),
    "matmul 1-D @ 1-D": (ops.matmul, [(4,), (4,)], {}),
    "matmul 1-D @ N-D": (ops.matmul, [(4,), (2, 4, 3)], {}),
    "summation": (ops.summation, [(3, 4)], {"axes": (1,)}),
    "summation all": (ops.summation, [(3, 4)], {}),
    "broadcast_to": (ops.broadcast_to, [(3, 1)], {"shape": (2, 3, 4)}),
    "reshape": (ops.reshape, [(3, 4)], {"shape": (2, 6)}),
    "transpose": (ops.transpose, [(3, 4, 5)], {}),
    "transpose axes": (ops.transpose, [(3, 4, 5)], {"axes": (0, 2)}),
    "logsumexp": (ops.logsumexp, [(3, 4)], {"axes": (1,)}),
    "logsoftmax": (ops.logsoftmax, [(3, 4)], {}),
    "flip": (ops.flip, [(3, 4)], {"axes": (0,)}),
    "dilate": (ops.dilate, [(3, 4)], {"axes": (0,), "dilation": 1}),
    "undilate": (ops.undilate, [(6, 4)], {"axes": (0,), "dilation": 1}),
    "conv": (ops.conv, [(2, 5, 5, 3), (3, 3, 3, 4)], {"stride": 1, "padding": 1}),
    "conv stride 2": (ops.conv, [(2, 6, 6, 3), (3, 3, 3, 4)], {"stride": 2, "padding": 0}),
}


@pytest.mark.parametrize("name", sorted(PUBLIC_OPS))
def test_each_public_op_returns_a_node_of_its_own_arguments(name):
    """``out.op.gradient_as_tuple(g, out)`` gives one adjoint per argument (course checkers
    call it directly), equal to PyTorch's gradient of sum(out * g)."""
    fn, shapes, kwargs = PUBLIC_OPS[name]
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0.5, 1.5, s) for s in shapes]
    args = [ndl.Tensor(a) for a in arrays]
    # sigmoid and conv are one node on the default (fast) path, which course code runs on;
    # reference mode composes them from several nodes, so this property is the fast path's
    with ndl.reference_mode(False):
        out = fn(*args, **kwargs)
    assert len(out.inputs) == len(args) and all(x is a for x, a in zip(out.inputs, args))
    g = rng.standard_normal(out.shape)
    grads = out.op.gradient_as_tuple(ndl.Tensor(g), out)
    assert len(grads) == len(args)
    want = _torch_gradients(name, fn, arrays, g, kwargs)
    for got, expected in zip(grads, want):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def _torch_gradients(name, fn, arrays, g, kwargs):
    """PyTorch's adjoints of the same function (needle's as the forward for the shape-only
    ops, whose gradient needle builds from its other ops)."""
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch_fns = {"add": torch.add, "multiply": torch.mul, "divide": torch.div,
                 "power": torch.pow, "maximum": torch.maximum, "negate": torch.neg,
                 "log": torch.log, "exp": torch.exp, "relu": torch.relu, "tanh": torch.tanh,
                 "sigmoid": torch.sigmoid}
    scalar = kwargs.get("scalar")
    base = name.split(" ")[0]
    if base in torch_fns:
        out = torch_fns[base](*inputs)
    elif base == "matmul":
        out = torch.matmul(*inputs)
    elif base in ("add_scalar", "mul_scalar", "divide_scalar", "power_scalar"):
        out = {"add_scalar": lambda x: x + scalar, "mul_scalar": lambda x: x * scalar,
               "divide_scalar": lambda x: x / scalar,
               "power_scalar": lambda x: x ** scalar}[base](inputs[0])
    elif base == "summation":
        out = inputs[0].sum(dim=kwargs.get("axes")) if kwargs else inputs[0].sum()
    elif base == "broadcast_to":
        out = inputs[0].broadcast_to(kwargs["shape"])
    elif base == "reshape":
        out = inputs[0].reshape(kwargs["shape"])
    elif base == "transpose":
        out = inputs[0].transpose(*kwargs.get("axes", (-1, -2)))
    elif base == "logsumexp":
        out = torch.logsumexp(inputs[0], dim=kwargs["axes"])
    elif base == "logsoftmax":
        out = torch.log_softmax(inputs[0], dim=-1)
    elif base == "flip":
        out = torch.flip(inputs[0], kwargs["axes"])
    elif base in ("dilate", "undilate"):  # dilation 1 on axis 0
        x = inputs[0]
        if base == "dilate":
            out = torch.zeros(2 * x.shape[0], x.shape[1], dtype=x.dtype).index_put(
                (torch.arange(0, 2 * x.shape[0], 2),), x)
        else:
            out = x[::2]
    else:  # conv: NHWC input, KKIO weight
        x, w = inputs
        out = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1),
                                         stride=kwargs["stride"], padding=kwargs["padding"])
        out = out.permute(0, 2, 3, 1)
    (out * torch.tensor(g)).sum().backward()
    return [x.grad.numpy() for x in inputs]


def test_matmul_of_mismatched_dtypes_is_a_clear_error():
    a, b = ndl.Tensor(np.ones((2, 3), np.float32)), ndl.Tensor(np.ones((3, 4)))
    with pytest.raises(TypeError, match=r"one dtype.*float32 \(shape \(2, 3\)\) @ float64"):
        a @ b
    with pytest.raises(RuntimeError):  # PyTorch refuses it too
        torch.ones(2, 3) @ torch.ones(3, 4, dtype=torch.float64)


# ---------------------------------------------------------------------------- 8. float64
def test_numpy_arrays_keep_their_floating_dtype_python_values_become_float32():
    assert ndl.Tensor(np.random.randn(5, 4)).dtype == np.float64
    assert ndl.Tensor(np.float64(2.0)).dtype == np.float64
    assert ndl.Tensor(np.ones(3, np.float32)).dtype == np.float32
    assert ndl.Tensor(np.ones(3, np.float16)).dtype == np.float16
    assert ndl.Tensor([1.0, 2.0]).dtype == np.float32 and ndl.Tensor(3.0).dtype == np.float32
    assert ndl.Tensor(np.random.randn(5, 4), dtype="float32").dtype == np.float32
    for array in (np.random.randn(3), np.float64(1.0), np.ones(2, np.float32)):
        assert ndl.Tensor(array).dtype == torch.tensor(array).numpy().dtype


PROMOTIONS = [((3,), "float32", (3,), "float64"), ((3,), "float64", (), "float32"),
              ((3,), "float32", (), "float64"), ((), "float32", (), "float64"),
              ((2, 3), "float64", (3,), "float32"), ((3,), "int64", (3,), "float32"),
              ((3,), "int64", (), "float64"), ((3,), "bool", (3,), "float32"),
              ((3,), "int32", (3,), "int64"), ((3,), "uint8", (3,), "int8")]


@pytest.mark.parametrize("lhs_shape, lhs_dtype, rhs_shape, rhs_dtype", PROMOTIONS)
def test_mixed_dtypes_follow_pytorch_promotion(lhs_shape, lhs_dtype, rhs_shape, rhs_dtype):
    a = np.ones(lhs_shape, lhs_dtype) * 2
    b = np.ones(rhs_shape, rhs_dtype) * 3
    for op in ("add", "mul", "sub", "truediv", "maximum", "eq"):
        torch_fn = getattr(torch, op if op != "truediv" else "true_divide")
        want = torch_fn(torch.tensor(a), torch.tensor(b)).numpy().dtype
        x, y = ndl.Tensor(a, dtype=a.dtype), ndl.Tensor(b, dtype=b.dtype)
        needle_fn = {"add": ndl.add, "mul": ndl.multiply, "sub": lambda p, q: p - q,
                     "truediv": ndl.divide, "maximum": ndl.maximum, "eq": ndl.equal}[op]
        assert needle_fn(x, y).dtype == want, f"{op}: {a.dtype}{a.shape}, {b.dtype}{b.shape}"


@pytest.mark.parametrize("dtype", ["bool", "int64", "uint8", "float32", "float64"])
@pytest.mark.parametrize("scalar", [2, 2.5, np.float64(2.5)])
def test_python_numbers_promote_like_pytorch(dtype, scalar):
    a = np.ones(3, dtype)
    x, t = ndl.Tensor(a, dtype=a.dtype), torch.tensor(a)
    number = float(scalar) if isinstance(scalar, np.floating) else scalar
    pairs = [(x + scalar, t + number), (x * scalar, t * number), (x / scalar, t / number),
             (scalar * x, number * t), (scalar / x, number / t)]
    if dtype != "bool":
        pairs.append((x ** scalar, t ** number))
    if dtype not in ("bool", "uint8"):  # numpy refuses uint8 - 2 (PyTorch wraps around)
        pairs.append((x - scalar, t - number))
    for got, want in pairs:
        assert got.dtype == want.numpy().dtype, (dtype, scalar)


def test_mixed_precision_gradients_come_back_in_each_inputs_dtype():
    a = ndl.Tensor(np.random.randn(3, 4).astype(np.float32))
    b = ndl.Tensor(np.random.randn(3, 4))
    out = (a * b).sum()
    assert out.dtype == np.float64
    out.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.numpy(), b.numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------- 5. modules
class _Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = [nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), (nn.BatchNorm1d(2),)]
        self.heads = {"a": nn.Dropout(0.1), "b": [nn.ReLU(), {"c": nn.BatchNorm1d(2)}]}


def test_sequential_modules_is_the_tuple_of_children():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert isinstance(model.modules, tuple) and len(model.modules) == 3
    assert isinstance(model.modules[0], nn.Linear) and model.modules[2].weight.shape == (4, 2)
    assert len(model.parameters()) == 4


def test_named_modules_and_submodules_walk_nested_containers():
    net = _Nested()
    names = [name for name, _ in net.named_modules()]
    assert names == ["", "blocks.0", "blocks.0.modules.0", "blocks.0.modules.1", "blocks.1.0",
                     "heads.a", "heads.b.0", "heads.b.1.c"]
    assert [m for _, m in net.named_modules()] == net.submodules()
    net.eval()
    assert not any(m.training for m in net.submodules()) and len(net.submodules()) == 8
    net.train()
    assert all(m.training for m in net.submodules())
    torch_names = [n for n, _ in torch.nn.Sequential(torch.nn.Linear(2, 2)).named_modules()]
    assert torch_names == ["", "0"]  # PyTorch's shape: the root first, named ""


# ---------------------------------------------------------------------------- 6. .data
def test_assigning_data_of_another_shape_takes_the_new_shape():
    bias = nn.Parameter(np.zeros((1, 5), np.float32))
    bias.data = ndl.Tensor(np.arange(5, dtype=np.float32))  # a (5,) vector, as course code does
    assert bias.shape == (5,) and bias.requires_grad and bias.op is None
    np.testing.assert_array_equal(bias.numpy(), np.arange(5))
    t = torch.zeros(1, 5)
    t.data = torch.arange(5.0)
    assert tuple(t.shape) == bias.shape


# ---------------------------------------------------------------------------- 7. counter
def _train_step(model, opt, x, y):
    loss = nn.SoftmaxLoss()(model(x), y)
    opt.reset_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("optimizer", [ndl.optim.SGD, ndl.optim.Adam])
def test_tensor_counter_returns_to_its_value_after_a_steps_tensors_are_dropped(optimizer):
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = optimizer(model.parameters(), lr=0.01)
    x = ndl.Tensor(np.random.randn(4, 6).astype(np.float32))
    y = ndl.Tensor(np.array([0, 1, 2, 1]))
    _train_step(model, opt, x, y)  # the optimiser's state is created on the first step
    gc.collect()
    start = ndl.autograd.TENSOR_COUNTER
    for _ in range(3):
        _train_step(model, opt, x, y)
        gc.collect()
        assert ndl.autograd.TENSOR_COUNTER == start
    kept = [x * 2 for _ in range(5)]
    assert ndl.autograd.TENSOR_COUNTER == start + 5
    del kept
    assert ndl.autograd.TENSOR_COUNTER == start


# ---------------------------------------------------------------------------- train.epoch
def test_epoch_takes_the_optimiser_third_as_in_the_seed():
    np.random.seed(0)
    x = np.random.randn(64, 5).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(x, y), batch_size=16)
    model = nn.Sequential(nn.Linear(5, 2))
    opt = ndl.optim.Adam(model.parameters(), lr=0.1)
    before = model.modules[0].weight.numpy().copy()
    error, loss = ndl.train.epoch(loader, model, opt)  # epoch(dl, model, opt), seed 002
    assert not np.array_equal(model.modules[0].weight.numpy(), before) and model.training
    for _ in range(5):
        ndl.train.epoch(loader, model, opt)
    error, loss = ndl.train.epoch(loader, model)
    assert not model.training and error < 0.1
    error_l, _ = ndl.train.epoch(loader, model, loss_fn=nn.SoftmaxLoss())
    assert error_l == error
    with pytest.raises(TypeError):
        ndl.train.epoch(loader, model, opt, nn.SoftmaxLoss())  # the loss is a keyword
