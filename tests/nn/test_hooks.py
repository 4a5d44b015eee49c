"""Module hooks: order, replacement of args/outputs/adjoints, removal, fast.ai's Hooks."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn


def _net():
    np.random.seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _x(requires_grad=False):
    return ndl.Tensor(np.random.default_rng(1).standard_normal((5, 4)), dtype="float32",
                      requires_grad=requires_grad)


def test_hooks_fire_in_order_and_stop_after_remove():
    net = _net()
    calls = []
    handles = []
    for i, layer in enumerate(net.children()[:2]):
        handles.append(layer.register_forward_pre_hook(
            lambda m, args, i=i: calls.append(("pre", i, type(m).__name__))))
        handles.append(layer.register_forward_hook(
            lambda m, args, out, i=i: calls.append(("post", i, out.shape))))
    second = net.children()[0].register_forward_hook(lambda m, a, o: calls.append("second"))
    net(_x())
    assert calls == [("pre", 0, "Linear"), ("post", 0, (5, 3)), "second",
                     ("pre", 1, "ReLU"), ("post", 1, (5, 3))]
    for handle in handles:
        handle.remove()
    handles[0].remove()  # idempotent
    calls.clear()
    net(_x())
    assert calls == ["second"]
    with second:
        pass
    calls.clear()
    net(_x())
    assert calls == []


def test_forward_hook_sees_args_and_output_and_may_replace_them():
    net = _net()
    seen = {}
    layer = net.children()[0]
    layer.register_forward_hook(lambda m, args, out: seen.update(args=args, out=out))
    x = _x()
    y = net(x)
    assert seen["args"][0] is x
    np.testing.assert_allclose(seen["out"].numpy(), x.numpy() @ layer.weight.numpy()
                               + layer.bias.numpy(), rtol=1e-5, atol=1e-6)
    handle = layer.register_forward_pre_hook(lambda m, args: args[0] * 0)
    np.testing.assert_allclose(net(x).numpy(), net.children()[2](net.children()[1](
        ndl.Tensor(np.broadcast_to(layer.bias.numpy(), (5, 3))))).numpy(), rtol=1e-6)
    handle.remove()
    layer.register_forward_hook(lambda m, args, out: out * 2)
    relu_in = []
    net.children()[1].register_forward_pre_hook(lambda m, args: relu_in.append(args[0]))
    net(x)
    np.testing.assert_allclose(relu_in[0].numpy(), 2 * seen["out"].numpy(), rtol=1e-6)
    assert not np.allclose(net(x).numpy(), y.numpy())


def test_backward_hook_receives_the_adjoint_of_the_output_as_pytorch_does():
    net = _net()
    torch_net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(),
                                    torch.nn.Linear(3, 2))
    with torch.no_grad():
        for ours, theirs in ((net.children()[0], torch_net[0]), (net.children()[2], torch_net[2])):
            theirs.weight.copy_(torch.tensor(ours.weight.numpy().T))
            theirs.bias.copy_(torch.tensor(ours.bias.numpy().reshape(-1)))
    got, want = [], []
    net.children()[0].register_backward_hook(lambda m, g: got.append((type(m), g)))
    torch_net[0].register_full_backward_hook(lambda m, gi, go: want.append(go))
    x = _x(requires_grad=True)
    (net(x) ** 2).sum().backward()
    (torch_net(torch.tensor(x.numpy(), requires_grad=True)) ** 2).sum().backward()
    assert len(got) == 1 and got[0][0] is nn.Linear and len(got[0][1]) == 1
    np.testing.assert_allclose(got[0][1][0].numpy(), want[0][0].numpy(), rtol=1e-5, atol=1e-6)


def test_backward_hook_may_replace_the_adjoint_and_is_removable():
    net = _net()
    x = _x(requires_grad=True)
    (net(x) ** 2).sum().backward()
    plain = x.grad.numpy()
    handle = net.children()[2].register_backward_hook(lambda m, g: (g[0] * 3,))
    (net(x) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * plain, rtol=1e-5, atol=1e-6)
    handle.remove()
    (net(x) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), plain, rtol=1e-6)


def test_no_backward_hook_without_a_graph():
    net = _net()
    calls = []
    net.children()[0].register_backward_hook(lambda m, g: calls.append(g))
    with ndl.no_grad():
        out = net(_x())
    assert not out.requires_grad and calls == []


def test_hooks_helper_collects_stats_and_removes_on_exit():
    net = _net()

    def append_stats(hook, module, args, output):
        if not hasattr(hook, "stats"):
            hook.stats = ([], [])
        hook.stats[0].append(output.numpy().mean())
        hook.stats[1].append(output.numpy().std())

    x = _x()
    with nn.Hooks(net, append_stats) as hooks:
        assert [h.module for h in hooks] == net.children()
        net(x)
        net(x)
    net(x)
    assert [len(h.stats[0]) for h in hooks] == [2, 2, 2]
    h1 = x.numpy() @ net.children()[0].weight.numpy() + net.children()[0].bias.numpy()
    np.testing.assert_allclose(hooks[0].stats[0][0], h1.mean(), rtol=1e-5)
    np.testing.assert_allclose(hooks[1].stats[1][1], np.maximum(h1, 0).std(), rtol=1e-5)


@pytest.mark.parametrize("kind", ["forward_pre", "forward", "backward"])
def test_a_hook_that_is_not_callable_is_a_clear_error(kind):
    with pytest.raises(TypeError, match=f"register_{kind}_hook expects a callable"):
        getattr(nn.Linear(2, 2), f"register_{kind}_hook")(3)
    with pytest.raises(TypeError, match="Hooks expects Modules, got int"):
        nn.Hooks([1], lambda *a: None)


def test_hooks_are_not_state():
    layer = nn.Linear(2, 2)
    layer.register_forward_hook(lambda m, a, o: None)
    assert sorted(layer.state_dict()) == ["bias", "weight"]
    assert len(layer.parameters()) == 2
