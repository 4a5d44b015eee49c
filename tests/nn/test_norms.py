"""LayerNorm (general shape), GroupNorm, InstanceNorm, PReLU against PyTorch with copied
(random) weights: outputs and the gradients of input and parameters, in float64, over
hypothesis-drawn shapes; GeneralRelu against its PyTorch composition; clear shape errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import nn
from oracles import assert_close, check_finite_differences

fast = settings(max_examples=12, deadline=None)


def compare(layer, ref, x, name, params=()):
    """Copy random values into each (needle, torch) parameter pair, then compare the output
    and the gradients of sum(out * projection) for the input and every parameter."""
    rng = np.random.default_rng(0)
    for p, q in params:
        value = rng.standard_normal(p.shape)
        p.data = ndl.Tensor(value, dtype="float64")
        with torch.no_grad():
            q.copy_(torch.tensor(value))
    xs, xt = ndl.Tensor(x, dtype="float64"), torch.tensor(x, requires_grad=True)
    out, want = layer(xs), ref(xt)
    assert_close(out, want, rtol=1e-9, atol=1e-10, what="output", name=name)
    g = rng.standard_normal(out.shape)
    (out * ndl.Tensor(g, dtype="float64")).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    assert_close(xs.grad, xt.grad, rtol=1e-8, atol=1e-9, what="input gradient", name=name)
    for i, (p, q) in enumerate(params):
        assert_close(p.grad, q.grad, rtol=1e-8, atol=1e-9, what=f"parameter {i} gradient",
                     name=name)


def images(seed, shape):
    return 2 + 3 * np.random.default_rng(seed).standard_normal(shape)


@fast
@given(lead=st.sampled_from([(), (2,), (3, 2)]),
       shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       affine=st.booleans(), bias=st.booleans(), seed=st.integers(0, 100))
def test_layer_norm_matches_torch(lead, shape, affine, bias, seed):
    layer = nn.LayerNorm(shape, eps=1e-5, elementwise_affine=affine, bias=bias, dtype="float64")
    ref = torch.nn.LayerNorm(shape, eps=1e-5, elementwise_affine=affine, bias=bias,
                             dtype=torch.float64)
    params = [(p, q) for p, q in ((layer.weight, ref.weight), (layer.bias, ref.bias))
              if p is not None]
    compare(layer, ref, images(seed, lead + shape), f"LayerNorm{shape}", params)


@fast
@given(groups_channels=st.sampled_from([(1, 4), (2, 4), (4, 4), (3, 6), (1, 1)]),
       spatial=st.sampled_from([(), (5,), (3, 4)]), n=st.integers(1, 3),
       affine=st.booleans(), seed=st.integers(0, 100))
def test_group_norm_matches_torch(groups_channels, spatial, n, affine, seed):
    groups, channels = groups_channels
    if not spatial and channels == groups:
        spatial = (2,)  # PyTorch needs more than one value per group
    layer = nn.GroupNorm(groups, channels, affine=affine, dtype="float64")
    ref = torch.nn.GroupNorm(groups, channels, affine=affine, dtype=torch.float64)
    params = [(layer.weight, ref.weight), (layer.bias, ref.bias)] if affine else []
    compare(layer, ref, images(seed, (n, channels) + spatial), f"GroupNorm{groups_channels}",
            params)


@pytest.mark.parametrize("kind, shape", [("1d", (2, 3, 5)), ("2d", (2, 3, 4, 5))])
@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_matches_torch(kind, shape, affine):
    layer = getattr(nn, f"InstanceNorm{kind}")(3, affine=affine, dtype="float64")
    ref = getattr(torch.nn, f"InstanceNorm{kind}")(3, affine=affine, dtype=torch.float64)
    params = [(layer.weight, ref.weight), (layer.bias, ref.bias)] if affine else []
    compare(layer, ref, images(1, shape), f"InstanceNorm{kind}", params)
    check_finite_differences(layer, images(2, shape), name="InstanceNorm")


@pytest.mark.parametrize("num_parameters, shape", [(1, (4, 3)), (1, (2, 3, 4, 4)),
                                                   (3, (2, 3, 4, 4)), (3, (5, 3))])
def test_prelu_matches_torch(num_parameters, shape):
    layer = nn.PReLU(num_parameters, dtype="float64")
    ref = torch.nn.PReLU(num_parameters, dtype=torch.float64)
    assert np.allclose(layer.weight.numpy(), 0.25)
    compare(layer, ref, images(3, shape) - 2, "PReLU", [(layer.weight, ref.weight)])


@pytest.mark.parametrize("leak, sub, maxv", [(None, None, None), (0.1, 0.4, None),
                                             (0.1, 0.4, 6.0), (None, 0.5, 1.0)])
def test_general_relu_matches_its_torch_composition(leak, sub, maxv):
    def ref(x):
        out = torch.nn.functional.leaky_relu(x, leak) if leak else torch.relu(x)
        out = out - sub if sub is not None else out
        return out.clamp(max=maxv) if maxv is not None else out

    x = images(4, (6, 5)) - 2
    compare(nn.GeneralRelu(leak, sub, maxv), ref, x, "GeneralRelu")
    check_finite_differences(nn.GeneralRelu(leak, sub, maxv), x, name="GeneralRelu")


def test_norms_check_their_input_shapes():
    x = ndl.Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"LayerNorm\(\(5,\)\) expects input \(..., 5\), got "
                                         r"shape \(2, 3, 4\)"):
        nn.LayerNorm(5)(x)
    with pytest.raises(ValueError, match=r"GroupNorm expects input \(N, 4, ...\), got shape"):
        nn.GroupNorm(2, 4)(x)
    with pytest.raises(ValueError, match=r"divisible by num_groups \(2\)"):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match="InstanceNorm2d expects 4-D input"):
        nn.InstanceNorm2d(3)(x)
    with pytest.raises(ValueError, match=r"PReLU expects input \(N, 2, ...\)"):
        nn.PReLU(2)(x)


def test_group_and_instance_norm_do_not_depend_on_the_batch():
    x = images(5, (4, 4, 3, 3))
    layer = nn.GroupNorm(2, 4, dtype="float64")
    whole = layer(ndl.Tensor(x, dtype="float64")).numpy()
    one = layer(ndl.Tensor(x[:1], dtype="float64")).numpy()
    np.testing.assert_allclose(whole[:1], one, rtol=1e-12)
