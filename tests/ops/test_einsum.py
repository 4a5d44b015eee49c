"""einsum: hypothesis-drawn subscripts (repeated indices, sums, outer products) against
PyTorch and float64 central differences; ellipsis and broadcasting; second derivatives;
errors that name what was wrong."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import needle as ndl
from oracles import check_finite_differences
from strategies import broadcast_pairs, check_op, fast, normal, seeds


@st.composite
def einsum_cases(draw):
    """(subscripts, shapes): 1-3 operands over letters a-d, any of them repeated (traces,
    diagonals), an explicit output of distinct letters or PyTorch's implicit one."""
    sizes = {c: draw(st.integers(1, 3)) for c in "abcd"}
    terms = draw(st.lists(st.lists(st.sampled_from("abcd"), max_size=3), min_size=1,
                          max_size=3))
    used = sorted(set("".join("".join(t) for t in terms)))
    spec = ",".join("".join(t) for t in terms)
    if draw(st.booleans()):
        out = draw(st.permutations(used)) if used else []
        spec += "->" + "".join(out[:draw(st.integers(0, len(out)))])
    return spec, [tuple(sizes[c] for c in t) for t in terms]


@fast
@given(case=einsum_cases(), seed=seeds)
def test_einsum_matches_torch_and_finite_differences(case, seed):
    spec, shapes = case
    arrays = normal(seed, *shapes)
    check_op(lambda *xs: ndl.einsum(spec, *xs), lambda *xs: torch.einsum(spec, *xs), *arrays,
             name=f"einsum {spec!r} on {shapes}")
    got = ndl.einsum(spec, *[ndl.Tensor(a, dtype="float64") for a in arrays]).numpy()
    np.testing.assert_allclose(got, np.einsum(spec, *arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec, shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("ii->", [(4, 4)]), ("ii->i", [(4, 4)]), ("iij->j", [(3, 3, 2)]), ("ij,jj->i", [(2, 3), (3, 3)]),
    ("i,i->", [(5,), (5,)]), ("i,j->ij", [(2,), (3,)]), ("ij->ji", [(2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("ij,j->i", [(2, 3), (1,)]), ("Ab", [(2, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]), ("...ii->...i", [(2, 3, 3)]),
    ("i...->", [(2, 3, 4)]), ("i...j,j->...i", [(2, 3, 4), (4,)]), ("...,...", [(2, 3), (3,)]),
    ("...ij", [(2, 3, 4)]), ("ij...->i", [(2, 3, 1, 2)]),
])
def test_einsum_named_cases(spec, shapes):
    check_op(lambda *xs: ndl.einsum(spec, *xs), lambda *xs: torch.einsum(spec, *xs),
             *normal(0, *shapes), name=f"einsum {spec!r} on {shapes}")


@fast
@given(pair=broadcast_pairs(max_dims=2, max_side=3), seed=seeds)
def test_einsum_ellipsis_broadcasts_batch_dims(pair, seed):
    a, b = normal(seed, pair[0] + (2, 3), pair[1] + (3,))
    check_op(lambda x, y: ndl.einsum("...ij,...j->...i", x, y),
             lambda x, y: torch.einsum("...ij,...j->...i", x, y), a, b,
             name=f"einsum '...ij,...j->...i' on {a.shape}, {b.shape}")


@pytest.mark.parametrize("spec, shapes", [("ij,jk->ik", [(3, 4), (4, 2)]),
                                          ("ii,ij->j", [(3, 3), (3, 2)]),
                                          ("ij,ij,j->", [(2, 3), (2, 3), (3,)])])
def test_einsum_second_derivatives_match_torch(spec, shapes):
    """d/d(inputs) of sum |dL/dx_i|^2 for L = sum(einsum(...) * g), with create_graph."""
    arrays = normal(1, *shapes)
    g = np.random.default_rng(2).standard_normal(np.einsum(spec, *arrays).shape)
    xs = [ndl.Tensor(a, dtype="float64") for a in arrays]
    ndl.einsum(spec, *xs).backward(ndl.Tensor(g, dtype="float64"), create_graph=True)
    sum((x.grad * x.grad).sum() for x in xs).backward()

    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    grads = torch.autograd.grad((torch.einsum(spec, *ts) * torch.tensor(g)).sum(), ts,
                                create_graph=True)
    sum((gr * gr).sum() for gr in grads).backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_einsum_gradient_is_differentiable_by_finite_differences():
    def first_gradient(a, b):
        with ndl.enable_grad():
            (ndl.einsum("ij,jk->ik", a, b) ** 2).sum().backward(create_graph=True)
        return a.grad

    check_finite_differences(first_gradient, *normal(3, (2, 3), (3, 2)),
                             name="einsum second derivative")


def test_einsum_float32_and_fresh_memory():
    a = np.random.default_rng(4).standard_normal((3, 3)).astype(np.float32)
    x = ndl.Tensor(a)
    out = ndl.einsum("ij->ji", x)
    assert out.dtype == np.float32
    out.realize_cached_data()[0, 1] = 100.0  # a transpose must not alias its input
    np.testing.assert_array_equal(x.numpy(), a)
    np.testing.assert_allclose(ndl.einsum("ii", x).numpy(), np.trace(a), rtol=1e-6)


@pytest.mark.parametrize("spec, shapes, message", [
    ("ij,jk->ik", [(2, 3)], r"name 2 operands, got 1"),
    ("ijk->i", [(2, 3)], r"operand 0 3 dims \('ijk'\), but it has 2"),
    ("ij...->i", [(2,)], r"at least 2 dims"),
    ("ij,jk->ik", [(2, 3), (4, 5)], r"index 'j' has size 3 .* but 4 in operand 1"),
    ("ij->ii", [(2, 2)], r"repeats 'i'"),
    ("ij->k", [(2, 2)], r"'k', which no operand has"),
    ("i1->i", [(2, 2)], r"'1' in 'i1' is not a letter"),
    ("i->i->i", [(2,)], r"more than one '->'"),
])
def test_einsum_bad_subscripts_name_what_was_wrong(spec, shapes, message):
    with pytest.raises(ValueError, match=message):
        ndl.einsum(spec, *[ndl.Tensor(np.zeros(s)) for s in shapes])
