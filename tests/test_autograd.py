"""The autograd engine: graph recording, topological order, backward, grad modes, memory."""

import gc
import os
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import autograd
from oracles import check_torch


# ---------------------------------------------------------------------------- Tensor basics
def test_tensor_dtypes_follow_the_contract():
    assert ndl.Tensor([1, 2]).dtype == np.float32  # Python numbers become float32
    assert ndl.Tensor(np.zeros(2)).dtype == np.float64  # numpy arrays keep it (torch.tensor)
    assert ndl.Tensor(np.zeros(2, np.float32)).dtype == np.float32
    assert ndl.Tensor(np.zeros(2), dtype="float64").dtype == np.float64
    labels = ndl.Tensor(np.array([1, 2]))
    assert labels.dtype == np.int64 and not labels.requires_grad  # integers keep their dtype
    assert ndl.Tensor([1.0]).requires_grad
    assert not ndl.Tensor([1.0], requires_grad=False).requires_grad


def test_tensor_methods_match_the_ops():
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = ndl.Tensor(a, dtype="float64")
    pairs = [(x[1:3], a[1:3]), (x.max(1), a.max(1)), (x.mean(), a.mean()), (x.T, a.T),
             (x.exp(), np.exp(a)), (x.sum(0), a.sum(0)), (x.reshape(4, 3), a.reshape(4, 3)),
             (x.transpose(), a.T), (x.broadcast_to((2, 3, 4)), np.broadcast_to(a, (2, 3, 4))),
             (x.tanh(), np.tanh(a)), (x.relu(), np.maximum(a, 0)), (x.flip(0), a[::-1]),
             (x.permute(1, 0), a.T), (x.exp().log(), a), (x.sigmoid(), 1 / (1 + np.exp(-a))),
             (x.exp().sqrt(), np.exp(a / 2)), (x.matmul(x.T), a @ a.T),
             (x.logsumexp(1), np.log(np.exp(a).sum(1)))]
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert x.ndim == 2 and x.size == 12 and len(x) == 3
    assert float(x.sum()) == pytest.approx(a.sum())


def test_detach_and_data_share_values_and_record_nothing():
    x = ndl.Tensor([1.0, 2.0])
    y = x * 3
    for cut in (y.detach(), y.data):
        assert cut.op is None and not cut.requires_grad
        assert np.shares_memory(cut.numpy(), y.numpy())
    x.data = ndl.Tensor([5.0, 6.0])  # replaces the values without recording
    assert x.op is None and x.requires_grad
    np.testing.assert_array_equal(x.numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(y.numpy(), [3.0, 6.0])  # earlier results are unchanged
    x.data = ndl.Tensor([1.0, 2.0, 3.0])  # another shape: the tensor takes it (PyTorch)
    assert x.shape == (3,) and x.requires_grad


def test_requires_grad_propagates_from_any_input():
    w = ndl.Tensor([1.0, 2.0])
    c = ndl.Tensor([3.0, 4.0], requires_grad=False)
    assert (c * w).requires_grad and (w + 1).requires_grad
    const = c * c + 1
    assert not const.requires_grad and const.op is None and const.inputs == ()
    assert not (w > 1).requires_grad  # comparisons have no gradient
    (c * w).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])


# ---------------------------------------------------------------------------- graph walking
def test_find_topo_sort_puts_inputs_first_and_visits_each_node_once():
    x = ndl.Tensor([1.0])
    a, b = x * 2, x + 1
    out = a * b + a
    order = autograd.find_topo_sort([out])
    assert len(order) == len({id(n) for n in order}) == 5
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        assert all(position[id(i)] < position[id(node)] for i in node.inputs)
    assert order[0] is x and order[-1] is out


class _Node:
    def __init__(self, inputs):
        self.inputs = tuple(inputs)


def _recursive_topo_sort(roots):
    """The textbook order: a post-order depth-first search, first input first."""
    order, visited = [], set()

    def visit(node):
        if id(node) not in visited:
            visited.add(id(node))
            for x in node.inputs:
                visit(x)
            order.append(node)

    for root in roots:
        visit(root)
    return order


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_find_topo_sort_is_the_recursive_post_order(data):
    """The order decides in which order a node's adjoints are summed, so the iterative
    walk must give exactly the recursive one's, on DAGs with shared and repeated inputs."""
    nodes = []
    for _ in range(data.draw(st.integers(1, 25))):
        picks = data.draw(st.lists(st.integers(0, len(nodes) - 1), max_size=3)) if nodes \
            else []
        nodes.append(_Node([nodes[i] for i in picks]))
    roots = [nodes[i] for i in data.draw(st.lists(st.integers(0, len(nodes) - 1), min_size=1,
                                                  max_size=3))]
    assert [id(n) for n in autograd.find_topo_sort(roots)] == \
        [id(n) for n in _recursive_topo_sort(roots)]


@pytest.mark.slow  # 50,000 nodes
def test_a_50000_node_chain_needs_no_recursion():
    x = ndl.Tensor([0.5])
    y = x
    for _ in range(50_000):
        y = y + 1.0
    assert 50_000 > sys.getrecursionlimit()
    assert len(autograd.find_topo_sort([y])) == 50_001
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0])


def test_gradients_sum_over_every_path():
    a = np.array([0.3, -1.2, 2.0])
    check_torch(lambda x: x * x + x * 3 + (x + x).exp() - x, lambda x: x * x + x * 3
                + (x + x).exp() - x, a, rtol=1e-12, atol=1e-12, name="several paths")
    x = ndl.Tensor(a, dtype="float64")
    y = x * x
    (y + y * y).sum().backward()  # dy/dx reached through y twice
    np.testing.assert_allclose(x.grad.numpy(), 2 * a + 4 * a ** 3)


def test_compute_gradient_of_variables_sets_grad_on_every_node():
    x = ndl.Tensor([1.0, 2.0])
    h = x * x
    out = h.sum()
    autograd.compute_gradient_of_variables(out, ndl.Tensor(2.0))
    np.testing.assert_array_equal(h.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])
    assert out.grad.numpy() == 2.0


def test_each_backward_assigns_fresh_gradients():
    x = ndl.Tensor([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])  # not [5, 7]


def test_backward_with_out_grad_is_a_vector_jacobian_product():
    x = ndl.Tensor([1.0, 2.0, 3.0])
    y = x * x
    y.backward(ndl.Tensor([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, -6.0])


def test_backward_on_a_non_scalar_without_out_grad_uses_ones():
    x = ndl.Tensor([1.0, 2.0])
    y = x * 2
    y.backward()  # the contract: out_grad defaults to ones of y's shape
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    y = x * 2
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(2,\)"):
        y.backward(ndl.Tensor([1.0, 2.0, 3.0]))


# ---------------------------------------------------------------------------- grad modes
def test_no_grad_records_nothing_and_nests():
    x = ndl.Tensor([1.0])
    with ndl.no_grad():
        assert not ndl.is_grad_enabled()
        with ndl.no_grad():
            y = x * 2
        with ndl.enable_grad():
            z = x * 2
        assert not ndl.is_grad_enabled()
        w = x * 2
    assert ndl.is_grad_enabled()
    assert not y.requires_grad and not w.requires_grad and y.op is None
    assert z.requires_grad


def test_no_grad_as_a_decorator_and_after_an_exception():
    @ndl.no_grad()
    def double(t):
        return t * 2

    x = ndl.Tensor([1.0])
    assert not double(x).requires_grad and ndl.is_grad_enabled()
    with pytest.raises(KeyError), ndl.no_grad():
        raise KeyError("inside")
    assert ndl.is_grad_enabled()


def test_an_op_on_a_tensor_made_under_no_grad_behaves_like_torch():
    for lib in ("needle", "torch"):
        if lib == "needle":
            x, w = ndl.Tensor([1.0, 2.0]), ndl.Tensor([3.0, 4.0])
            with ndl.no_grad():
                y = x * 2
            z = (y * w).sum()
        else:
            x = torch.tensor([1.0, 2.0], requires_grad=True)
            w = torch.tensor([3.0, 4.0], requires_grad=True)
            with torch.no_grad():
                y = x * 2
            z = (y * w).sum()
        assert not y.requires_grad and z.requires_grad, lib
        z.backward()
        np.testing.assert_array_equal(np.asarray(w.grad.numpy()), [2.0, 4.0])
        assert x.grad is None and y.grad is None, lib
    with pytest.raises(RuntimeError, match="does not require grad"):
        (ndl.Tensor([1.0], requires_grad=False) * 2).sum().backward()


# ---------------------------------------------------------------------------- graph lifetime
def test_the_graph_is_freed_after_backward():
    x = ndl.Tensor([1.0, 2.0])
    h = x.exp()
    loss = (h * h).sum()
    loss.backward()
    assert h.inputs == () and loss.inputs == ()
    with pytest.raises(RuntimeError, match="backward through a graph a second time"):
        loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 2).sum().backward()  # a new graph that reaches into the freed one


def test_retain_graph_allows_a_second_backward_with_the_same_gradients():
    x = ndl.Tensor([1.0, 2.0])
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), first)


@pytest.mark.parametrize("name", ["tanh", "cube"])
def test_create_graph_gives_second_derivatives(name):
    a = np.linspace(-2, 2, 7)
    fn = {"tanh": lambda t: t.tanh(), "cube": lambda t: t ** 3}[name]
    analytic = {"tanh": -2 * np.tanh(a) * (1 - np.tanh(a) ** 2), "cube": 6 * a}[name]
    x = ndl.Tensor(a, dtype="float64")
    fn(x).sum().backward(create_graph=True)
    first = x.grad
    assert first.requires_grad
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), analytic, rtol=1e-12, atol=1e-12)
    t = torch.tensor(a, requires_grad=True)
    (g,) = torch.autograd.grad(fn(t).sum(), t, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), t)
    np.testing.assert_allclose(x.grad.numpy(), g2.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.numpy(), g.detach().numpy(), rtol=1e-12)


SECOND_ORDER = {  # name: (needle function, torch function) of one (3, 4) input
    "exp * log": (lambda x: x.exp() * (x * x + 1).log(),) * 2,
    "a / b": (lambda x: x / (x * x + 1),) * 2,
    "x ** 2.5": (lambda x: (x * x + 1) ** 2.5,) * 2,
    "broadcast, sum, getitem": (lambda x: (x[1:] * x[0]).sum(0) * x[:, 2:].sum(),) * 2,
    "matmul, tanh": (lambda x: (x @ x.transpose()).tanh(), lambda x: (x @ x.T).tanh()),
    "logsumexp": (lambda x: ndl.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1)),
    "logsoftmax": (ndl.logsoftmax, lambda x: torch.log_softmax(x, -1)),
    "max, maximum": (lambda x: x * ndl.maximum(x, x.max(1, keepdims=True) * 0.5),
                     lambda x: x * torch.maximum(x, x.amax(1, keepdim=True) * 0.5)),
    "stack, split": (lambda x: ndl.stack(list(ndl.split(x * x, 0)), 1),
                     lambda x: torch.stack(list(torch.unbind(x * x, 0)), 1)),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_derivatives_match_torch_hessian_vector_products(name):
    ndl_fn, torch_fn = SECOND_ORDER[name]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    t = torch.tensor(a, requires_grad=True)
    out = torch_fn(t)
    p, q = rng.standard_normal(tuple(out.shape)), rng.standard_normal(a.shape)
    (g,) = torch.autograd.grad((out * torch.tensor(p)).sum(), t, create_graph=True)
    (hvp,) = torch.autograd.grad((g * torch.tensor(q)).sum(), t)
    x = ndl.Tensor(a, dtype="float64")
    (ndl_fn(x) * ndl.Tensor(p, dtype="float64")).sum().backward(create_graph=True)
    first = x.grad
    (first * ndl.Tensor(q, dtype="float64")).sum().backward()
    np.testing.assert_allclose(first.numpy(), g.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), hvp.numpy(), rtol=1e-10, atol=1e-12)


def test_gradients_are_constants_unless_create_graph():
    x = ndl.Tensor([1.0, 2.0])
    (x * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.op is None


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow  # 10,000 steps
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_flat_over_10000_training_steps():
    rng = np.random.default_rng(0)
    w = ndl.Tensor(rng.standard_normal((8, 4)))
    inputs = ndl.Tensor(rng.standard_normal((16, 8)), requires_grad=False)

    def step():
        loss = (inputs @ w).tanh().sum()
        loss.backward()
        w.data = w.data - 0.01 * w.grad

    for _ in range(1_000):  # warm-up: allocator pools, caches
        step()
    gc.collect()
    before, objects_before = _resident_bytes(), len(gc.get_objects())
    for _ in range(9_000):
        step()
    gc.collect()
    growth = _resident_bytes() - before
    # keeping even one small tensor per step alive adds ~4 MB; a whole graph adds ~20 MB
    assert growth < 2 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MB"
    # and no Python object per step survives (9,000 steps would leave 9,000 of them)
    assert len(gc.get_objects()) - objects_before < 100


# ---------------------------------------------------------------------------- devices
def test_mixing_devices_names_both():
    x = ndl.Tensor([1.0, 2.0], device=ndl.cpu())
    y = ndl.Tensor([1.0, 2.0], device=ndl.cpu_numpy())
    assert ndl.cpu() is not ndl.cpu_numpy()
    for fn in (lambda: x + y, lambda: x * y, lambda: x.reshape(1, 2) @ y.reshape(2, 1)):
        with pytest.raises(ValueError, match=r"different devices: cpu\(\) and cpu_numpy\(\)"):
            fn()
    moved = y.to(ndl.cpu())
    np.testing.assert_array_equal((x + moved).numpy(), [2.0, 4.0])
