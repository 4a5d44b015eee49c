"""Parameter groups, betas=, zero_grad(set_to_none=), nn.utils.clip_grad_norm_ against
torch.optim; the fast (flat) and readable (per-parameter) rules agree; two optimisers over
one model do not interfere."""

import math

import numpy as np
import pytest
import torch

import needle as ndl
from needle import optim

rng = np.random.default_rng(1)
SHAPES = [(3, 4), (4,), (2, 2), (5,)]
WEIGHTS = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
GRADS = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(8)]


def _run(make, make_torch, steps=8):
    """Both optimisers (given the parameter lists) on the same gradients: final values."""
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    tparams = [torch.nn.Parameter(torch.tensor(w.copy())) for w in WEIGHTS]
    opt, topt = make(params), make_torch(tparams)
    for k in range(steps):
        for p, t, g in zip(params, tparams, GRADS[k]):
            p.grad, t.grad = ndl.Tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    return params, tparams, opt


GROUP_CASES = {
    "sgd": (lambda p: optim.SGD([{"params": p[:2]}, {"params": p[2:], "lr": 0.3,
                                                      "weight_decay": 0.1}], lr=0.1),
            lambda p: torch.optim.SGD([{"params": p[:2]}, {"params": p[2:], "lr": 0.3,
                                                            "weight_decay": 0.1}], lr=0.1)),
    "sgd momentum": (
        lambda p: optim.SGD([{"params": p[:1], "momentum": 0.5}, {"params": p[1:]}], lr=0.1,
                            momentum=0.9),
        lambda p: torch.optim.SGD([{"params": p[:1], "momentum": 0.5, "lr": 0.1 * 0.5},
                                   {"params": p[1:]}], lr=0.1 * 0.1, momentum=0.9)),
    "adam betas": (
        lambda p: optim.Adam([{"params": p[:3], "betas": (0.5, 0.9)}, {"params": p[3:]}],
                             lr=0.01, betas=(0.8, 0.99)),
        lambda p: torch.optim.Adam([{"params": p[:3], "betas": (0.5, 0.9)},
                                    {"params": p[3:]}], lr=0.01, betas=(0.8, 0.99))),
    "adamw": (lambda p: optim.AdamW([{"params": p[:2], "weight_decay": 0.0},
                                     {"params": p[2:]}], lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW([{"params": p[:2], "weight_decay": 0.0},
                                           {"params": p[2:]}], lr=0.01, weight_decay=0.1)),
    "rmsprop": (lambda p: optim.RMSprop([{"params": p[:2], "centered": True},
                                         {"params": p[2:], "momentum": 0.5}], lr=0.01),
                lambda p: torch.optim.RMSprop([{"params": p[:2], "centered": True},
                                               {"params": p[2:], "momentum": 0.5}], lr=0.01)),
    "adagrad": (lambda p: optim.Adagrad([{"params": p[:2], "lr": 0.05}, {"params": p[2:]}],
                                        lr=0.1, initial_accumulator_value=0.1),
                lambda p: torch.optim.Adagrad([{"params": p[:2], "lr": 0.05},
                                               {"params": p[2:]}], lr=0.1,
                                              initial_accumulator_value=0.1)),
}


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "reference"])
@pytest.mark.parametrize("name", sorted(GROUP_CASES))
def test_param_groups_match_torch(name, reference):
    with ndl.reference_mode(reference):
        params, tparams, opt = _run(*GROUP_CASES[name])
    for i, (p, t) in enumerate(zip(params, tparams)):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: parameter {i}")
    assert len(opt.param_groups) == 2 and all("params" in g for g in opt.param_groups)


def test_add_param_group_and_per_group_lr_match_torch():
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    tparams = [torch.nn.Parameter(torch.tensor(w.copy())) for w in WEIGHTS]
    opt = optim.Adam(params[:2], lr=0.01)
    topt = torch.optim.Adam(tparams[:2], lr=0.01)
    for k in range(6):
        if k == 2:
            opt.add_param_group({"params": params[2:], "lr": 0.05})
            topt.add_param_group({"params": tparams[2:], "lr": 0.05})
        for p, t, g in zip(params, tparams, GRADS[k]):
            p.grad, t.grad = ndl.Tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    # needle counts step() calls (t = 6) for the late group too, torch per parameter (4):
    # compare the first group, which both count alike, and the late group's lr only
    for p, t in zip(params[:2], tparams[:2]):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.05]


def test_setting_lr_sets_every_group():
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    opt = optim.SGD([{"params": params[:2]}, {"params": params[2:], "lr": 1.0}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = 0.5
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]


@pytest.mark.parametrize("bad, match", [
    ({"params": [], "lr": 0.1}, "non-empty list of Tensors"),
    ({"params": [np.ones(2)]}, "non-empty list of Tensors"),
    ({"params": "P0", "lr": -1.0}, "lr must be >= 0, got -1.0"),
    ({"params": "P0", "momentum": 1.5}, r"momentum must be in \[0, 1\)"),
    ({"params": "P0", "betas": (0.9, 0.99)}, r"unknown hyper-parameters \['betas'\]"),
    ({"params": "SHARED"}, "the same parameter more than once"),
])
def test_bad_param_groups_are_clear_errors(bad, match):
    shared = ndl.nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([shared], lr=0.1)
    group = dict(bad)
    if group["params"] == "P0":
        group["params"] = [ndl.nn.Parameter(np.ones(2, np.float32))]
    elif group["params"] == "SHARED":
        group["params"] = [shared]
    with pytest.raises((ValueError, TypeError), match=match):
        opt.add_param_group(group)


def test_betas_and_beta1_beta2_are_the_same_setting():
    a = _run(lambda p: optim.Adam(p, lr=0.01, betas=(0.7, 0.95)),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.7, 0.95)))
    b = _run(lambda p: optim.Adam(p, lr=0.01, beta1=0.7, beta2=0.95),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.7, 0.95)))
    for p, q, t in zip(a[0], b[0], a[1]):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="betas must be a pair"):
        optim.Adam(a[0], betas=(0.9,))


def test_zero_grad_set_to_none_or_zeros_as_torch():
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    tparams = [torch.nn.Parameter(torch.tensor(w.copy())) for w in WEIGHTS]
    opt, topt = optim.SGD(params, lr=0.1), torch.optim.SGD(tparams, lr=0.1)
    for p, t, g in zip(params, tparams, GRADS[0]):
        p.grad, t.grad = ndl.Tensor(g), torch.tensor(g)
    opt.zero_grad(set_to_none=False)
    topt.zero_grad(set_to_none=False)
    for p, t in zip(params, tparams):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())
        assert p.grad.shape == p.shape and p.grad.dtype == p.dtype
    opt.zero_grad()
    topt.zero_grad()
    assert all(p.grad is None for p in params) and all(t.grad is None for t in tparams)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.1, 100.0])
def test_nn_utils_clip_grad_norm_matches_torch(norm_type, max_norm):
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    tparams = [torch.nn.Parameter(torch.tensor(w.copy())) for w in WEIGHTS]
    for p, t, g in zip(params[:3], tparams[:3], GRADS[1]):  # the last one has no gradient
        p.grad, t.grad = ndl.Tensor(g * 2), torch.tensor(g * 2)
    norm = ndl.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    assert math.isclose(norm, float(tnorm), rel_tol=1e-5)
    for p, t in zip(params[:3], tparams[:3]):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert params[3].grad is None


@pytest.mark.parametrize("max_norm", [-1.0, float("nan"), "1"])
def test_clip_grad_norm_rejects_a_bad_max_norm(max_norm):
    p = ndl.nn.Parameter(np.ones(2, np.float32))
    p.grad = ndl.Tensor(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="max_norm must be a number >= 0"):
        ndl.nn.utils.clip_grad_norm_([p], max_norm)


ALL = {
    "sgd": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True),
    "adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01, centered=True, momentum=0.3),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01,
                                       initial_accumulator_value=0.2),
}


def _trajectory(make, reference_at=(), skip=False):
    """Final values after 8 steps, those in ``reference_at`` taken in reference mode; with
    ``skip`` the second parameter has no gradient at odd steps."""
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    opt = make(params)
    for k in range(8):
        for i, (p, g) in enumerate(zip(params, GRADS[k])):
            p.grad = None if skip and i == 1 and k % 2 else ndl.Tensor(g)
        with ndl.reference_mode(k in reference_at):
            opt.step()
    return [p.numpy() for p in params], opt


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("name", sorted(ALL))
def test_fast_and_reference_rules_agree(name, skip):
    """The flat rule, the per-parameter rule, and switches between them mid-training: the
    fast rule after reference steps continues from the state those steps left."""
    fast, _ = _trajectory(ALL[name], skip=skip)
    reference, _ = _trajectory(ALL[name], reference_at=range(8), skip=skip)
    switched, _ = _trajectory(ALL[name], reference_at=(4, 5), skip=skip)
    back_and_forth, _ = _trajectory(ALL[name], reference_at=(0, 2, 3, 6), skip=skip)
    for f, r, s, b in zip(fast, reference, switched, back_and_forth):
        np.testing.assert_allclose(r, f, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(s, f, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(b, f, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("chunk, direct_min", [(5, 10 ** 9), (5, 1), (8, 6)],
                         ids=["copied", "in-place", "both"])
@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("name", sorted(ALL))
def test_the_flat_rule_in_cache_sized_spans_equals_one_pass(name, skip, chunk, direct_min,
                                                            monkeypatch):
    """The fast rule runs over spans of ``CACHE_CHUNK`` elements, on copies of the values
    or (parameters of ``DIRECT_MIN`` elements or more) in the parameters' storage. Spans of
    5 or 8 elements cut through the parameters (12, 4, 4 and 5 elements) and, with
    ``skip``, end at the one without a gradient; the trajectory stays the same."""
    whole, _ = _trajectory(ALL[name], skip=skip)
    monkeypatch.setattr(optim, "CACHE_CHUNK", chunk)
    monkeypatch.setattr(optim, "DIRECT_MIN", direct_min)
    chunked, opt = _trajectory(ALL[name], skip=skip)
    assert len(opt._flats[0][1].all_spans) > 2
    for w, c in zip(whole, chunked):
        np.testing.assert_array_equal(c, w, err_msg=name)


READ_ONLY_CASES = {**ALL,
                   "sgd-plain": lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01),
                   "sgd-momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9,
                                                       weight_decay=0.01),
                   "rmsprop-plain": lambda p: optim.RMSprop(p, lr=0.01, weight_decay=0.01)}


@ndl.reference_mode(False)
@pytest.mark.parametrize("direct_min", [10 ** 9, 1], ids=["copied", "in-place"])
@pytest.mark.parametrize("name", sorted(READ_ONLY_CASES))
def test_the_fast_rules_leave_the_gradients_as_they_are(name, direct_min, monkeypatch):
    """A span of a large parameter is updated from its gradient's own storage, so a rule
    must only read ``g``: after two steps every ``p.grad`` holds what backward left."""
    monkeypatch.setattr(optim, "CACHE_CHUNK", 5)
    monkeypatch.setattr(optim, "DIRECT_MIN", direct_min)
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    opt = READ_ONLY_CASES[name](params)
    for k in range(2):
        for p, g in zip(params, GRADS[k]):
            p.grad = ndl.Tensor(g.copy())
        opt.step()
        for p, g in zip(params, GRADS[k]):
            np.testing.assert_array_equal(p.grad.numpy(), g, err_msg=name)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_a_zero_learning_rate_moves_the_moments_not_the_weights(name):
    """lr 0 (CosineAnnealingLR's value at T_max with eta_min 0): the fast rule, which
    divides by the bias-corrected lr, agrees with the reference rule: same moments, the
    weights left as they are."""
    results = []
    for reference in (False, True):
        params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
        opt = optim.Adam(params, lr=0.0) if name == "adam" else optim.AdamW(params, lr=0.0)
        for p, g in zip(params, GRADS[0]):
            p.grad = ndl.Tensor(g)
        with ndl.reference_mode(reference):
            opt.step()
        results.append(([p.numpy() for p in params],
                        [opt.state[p]["m"].numpy() for p in params]))
    (fast_w, fast_m), (ref_w, ref_m) = results
    for w, fw, rw, fm, rm in zip(WEIGHTS, fast_w, ref_w, fast_m, ref_m):
        np.testing.assert_array_equal(fw, w)
        np.testing.assert_array_equal(rw, w)
        np.testing.assert_allclose(fm, rm, rtol=1e-6)


def test_spans_cut_parameters_and_stop_at_gaps():
    """Pieces (parameter, first, end element) of spans of at most 4 elements, over
    parameters of 3, 6, 2 and 1 elements, with and without the second."""
    params = [ndl.nn.Parameter(np.zeros(n, np.float32)) for n in (3, 6, 2, 1)]
    flat = optim._Flat(params, {}, ())
    flat.span_size = 4
    assert flat.spans([True] * 4) == [
        (slice(0, 4), [(0, 0, 3), (1, 0, 1)]), (slice(4, 8), [(1, 1, 5)]),
        (slice(8, 12), [(1, 5, 6), (2, 0, 2), (3, 0, 1)])]
    assert flat.spans([True, False, True, True]) == [
        (slice(0, 3), [(0, 0, 3)]), (slice(9, 12), [(2, 0, 2), (3, 0, 1)])]
    flat.direct_min = 6  # the second parameter is large: spans of its own
    assert flat.spans([True] * 4) == [
        (slice(0, 3), [(0, 0, 3)]), (slice(3, 7), [(1, 0, 4)]), (slice(7, 9), [(1, 4, 6)]),
        (slice(9, 12), [(2, 0, 2), (3, 0, 1)])]


@ndl.reference_mode(False)
@pytest.mark.parametrize("direct_min", [10 ** 9, 1], ids=["copied", "large"])
def test_a_strided_parameter_cut_between_spans_is_updated_in_place(direct_min, monkeypatch):
    """A parameter whose storage is a transposed view still gets every element back, where
    it lies, when a span boundary falls inside it (copied through the scratch arrays even
    when it is large: only contiguous storage is updated directly)."""
    monkeypatch.setattr(optim, "CACHE_CHUNK", 4)
    monkeypatch.setattr(optim, "DIRECT_MIN", direct_min)
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    p = ndl.nn.Parameter(np.zeros((4, 3), np.float32))
    p.cached_data = ndl.backend_ndarray.array(base).permute((1, 0))
    storage = p.cached_data._array
    assert not storage.flags.c_contiguous
    grad = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    p.grad = ndl.Tensor(grad)
    optim.SGD([p], lr=0.5).step()
    np.testing.assert_allclose(p.numpy(), base.T - 0.5 * grad, rtol=1e-6)
    assert p.cached_data._array is storage


@ndl.reference_mode(False)
def test_two_optimisers_over_one_model_do_not_interfere():
    """Each updates the parameters where they lie (their storage never moves), so the
    second sees the first's update and neither undoes the other's."""
    model = ndl.nn.Linear(3, 2)
    storage = [p.cached_data for p in model.parameters()]
    first = optim.SGD(model.parameters(), lr=0.1)
    second = optim.SGD(model.parameters(), lr=0.01)
    expected = [p.numpy().copy() for p in model.parameters()]
    for k in range(3):
        model(ndl.Tensor(np.ones((4, 3), np.float32))).sum().backward()
        grads = [p.grad.numpy() for p in model.parameters()]
        (first if k % 2 == 0 else second).step()
        lr = 0.1 if k % 2 == 0 else 0.01
        expected = [w - lr * g for w, g in zip(expected, grads)]
    for p, w, array in zip(model.parameters(), expected, storage):
        np.testing.assert_allclose(p.numpy(), w, rtol=1e-6, atol=1e-7)
        assert p.cached_data is array  # updated in place


@ndl.reference_mode(False)
def test_a_parameter_given_new_storage_between_steps_is_updated_there():
    """A parameter whose values are replaced between steps (``p.data = ...``) is read and
    written in its new storage by the next fast step, and the old array is left alone."""
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    opt = optim.SGD(params, lr=0.5)
    for p, g in zip(params, GRADS[0]):
        p.grad = ndl.Tensor(g)
    opt.step()
    old = params[1].cached_data._array
    old_values = old.copy()
    params[1].data = ndl.Tensor(np.full(SHAPES[1], 3.0, np.float32))
    expected = [p.numpy() - 0.5 * g for p, g in zip(params, GRADS[1])]
    for p, g in zip(params, GRADS[1]):
        p.grad = ndl.Tensor(g)
    opt.step()
    for p, want in zip(params, expected):
        np.testing.assert_allclose(p.numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(old, old_values)
