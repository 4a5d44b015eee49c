"""Optimisers and schedulers against torch.optim over 10 steps, state dicts, clipping, and
the flat update's bookkeeping (reassigned data, missing gradients, dtypes, no graph)."""

import math

import numpy as np
import pytest
import torch

import needle as ndl
from needle import optim

SHAPES = [(3, 4), (4,), (2, 2), (1, 5)]
rng = np.random.default_rng(0)
WEIGHTS = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
GRADS = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(10)]


def _trajectories(make_needle, make_torch, steps=10, skip=()):
    """Run both optimisers on the same gradients; yield (step, needle params, torch params).

    Parameters listed in ``skip`` get no gradient (None) at odd steps."""
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    tparams = [torch.nn.Parameter(torch.tensor(w.copy())) for w in WEIGHTS]
    opt, topt = make_needle(params), make_torch(tparams)
    for k in range(steps):
        for i, (p, t, g) in enumerate(zip(params, tparams, GRADS[k])):
            missing = i in skip and k % 2 == 1
            p.grad = None if missing else ndl.Tensor(g)
            t.grad = None if missing else torch.tensor(g)
        opt.step()
        topt.step()
        yield k, params, tparams


CASES = {
    # needle's SGD dampens by (1 - momentum): SGD(lr, m) moves like torch's SGD(lr (1 - m), m)
    "sgd": (lambda p: optim.SGD(p, lr=0.1, weight_decay=0.01),
            lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01)),
    "sgd momentum": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                     lambda p: torch.optim.SGD(p, lr=0.1 * (1 - 0.9), momentum=0.9,
                                               weight_decay=0.01)),
    "sgd nesterov": (lambda p: optim.SGD(p, lr=0.2, momentum=0.8, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.2 * (1 - 0.8), momentum=0.8,
                                               nesterov=True)),
    "adam": (lambda p: optim.Adam(p, lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.01),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)),
    "adamw": (lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    "rmsprop": (lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9, weight_decay=0.01, momentum=0.5),
                lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, weight_decay=0.01,
                                              momentum=0.5)),
    "rmsprop centered": (lambda p: optim.RMSprop(p, lr=0.01, centered=True),
                         lambda p: torch.optim.RMSprop(p, lr=0.01, centered=True)),
    "adagrad": (lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                        initial_accumulator_value=0.1),
                lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                              initial_accumulator_value=0.1)),
}


# Adam, AdamW and Adagrad count step() calls (the contract's one counter); PyTorch counts
# per parameter, so with missing gradients only the counter-free rules can be compared.
COUNTER_FREE = ["sgd", "sgd momentum", "sgd nesterov", "rmsprop", "rmsprop centered"]


@pytest.mark.parametrize("name, skip", [(n, ()) for n in CASES] +
                         [(n, (1, 3)) for n in COUNTER_FREE])
def test_trajectory_matches_torch_over_10_steps(name, skip):
    """``skip``: parameters whose gradient is None at odd steps (the flat update then runs
    per parameter on the others, and the skipped ones keep their state)."""
    for k, params, tparams in _trajectories(*CASES[name], skip=skip):
        for i, (p, t) in enumerate(zip(params, tparams)):
            assert p.dtype == np.float32 and p.requires_grad
            np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name}: step {k}, parameter {i}")


def test_adam_follows_the_contract_formula():
    w, grads = WEIGHTS[0].astype(np.float64), [g[0].astype(np.float64) for g in GRADS]
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + 0.1 * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    p = ndl.nn.Parameter(WEIGHTS[0].copy())
    opt = optim.Adam([p], lr=0.01, weight_decay=0.1)
    for g in GRADS:
        p.grad = ndl.Tensor(g[0])
        opt.step()
    np.testing.assert_allclose(p.numpy(), w, rtol=1e-5, atol=1e-6)


def test_updates_build_no_graph_and_parameters_stay_leaves():
    model = ndl.nn.Linear(3, 2)
    opt = optim.Adam(model.parameters())
    for _ in range(2):
        out = model(ndl.Tensor(np.ones((4, 3), np.float32))).sum()
        out.backward()
        opt.step()
    assert all(p.is_leaf() and p.requires_grad and p.dtype == np.float32
               for p in model.parameters())


def test_reassigned_parameter_data_is_picked_up():
    p = ndl.nn.Parameter(np.zeros(3, np.float32))
    opt = optim.SGD([p], lr=1.0)
    p.grad = ndl.Tensor(np.ones(3, np.float32))
    opt.step()
    p.data = ndl.Tensor(np.full(3, 10.0, np.float32))  # e.g. load_state_dict
    opt.step()
    np.testing.assert_array_equal(p.numpy(), [9.0, 9.0, 9.0])


def test_parameters_of_two_dtypes_are_updated_in_their_own_dtype():
    a = ndl.nn.Parameter(np.ones(2, np.float32))
    b = ndl.Tensor(np.ones(2), dtype="float64")
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = ndl.Tensor(np.ones(2, np.float32)), ndl.Tensor(np.ones(2), dtype="float64")
    opt.step()
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd momentum", "adam", "rmsprop", "adagrad"])
def test_state_dict_resumes_the_same_trajectory(name):
    make, _ = CASES[name]
    full = [p.numpy().copy() for _, p_list, _ in _trajectories(*CASES[name]) for p in p_list][-4:]
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    opt = make(params)
    for k in range(5):
        for p, g in zip(params, GRADS[k]):
            p.grad = ndl.Tensor(g)
        opt.step()
    state = ndl.load(_save(opt.state_dict()))
    resumed = [ndl.nn.Parameter(p.numpy().copy()) for p in params]
    opt2 = make(resumed)
    opt2.load_state_dict(state)
    for k in range(5, 10):
        for p, g in zip(resumed, GRADS[k]):
            p.grad = ndl.Tensor(g)
        opt2.step()
    for a, b in zip(resumed, full):
        np.testing.assert_array_equal(a.numpy(), b)


def _save(state, _counter=[0]):
    import os
    import tempfile
    _counter[0] += 1
    path = os.path.join(tempfile.mkdtemp(), f"opt{_counter[0]}.safetensors")
    ndl.save(state, path)
    return path


def test_load_state_dict_rejects_mismatched_state():
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    state = optim.Adam(params).state_dict()
    with pytest.raises(ValueError, match="holds 4 parameters, this optimizer has 1"):
        optim.Adam(params[:1]).load_state_dict(state)
    state["state"][2]["m"] = np.zeros(7, np.float32)
    with pytest.raises(ValueError, match=r"'m' of parameter 2 has shape \(7,\)"):
        optim.Adam(params).load_state_dict(state)
    with pytest.raises(ValueError, match=r"buffers \['m', 'v'\], expected \['u'\]"):
        optim.SGD(params).load_state_dict(optim.Adam(params).state_dict())


def test_hyper_parameters_are_validated():
    p = [ndl.nn.Parameter(np.ones(2, np.float32))]
    with pytest.raises(ValueError, match="lr must be >= 0, got -1"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match=r"beta1 must be in \[0, 1\), got 1.5"):
        optim.Adam(p, beta1=1.5)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, nesterov=True)


# ---------------------------------------------------------------------------- clipping
def test_clip_grad_norm_matches_torch():
    params = [ndl.nn.Parameter(w.copy()) for w in WEIGHTS]
    tparams = [torch.nn.Parameter(torch.tensor(w.copy())) for w in WEIGHTS]
    for p, t, g in zip(params, tparams, GRADS[0]):
        p.grad, t.grad = ndl.Tensor(g * 3), torch.tensor(g * 3)
    norm = optim.Adam(params).clip_grad_norm(0.25)
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, 0.25)
    assert math.isclose(norm, float(tnorm), rel_tol=1e-5)
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)
    total = math.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in params))
    assert total <= 0.25 + 1e-6


def test_clip_grad_norm_leaves_small_gradients_alone():
    p = ndl.nn.Parameter(np.ones(2, np.float32))
    p.grad = ndl.Tensor(np.array([0.1, 0.0], np.float32))
    assert math.isclose(optim.clip_grad_norm([p], 1.0), 0.1, rel_tol=1e-6)
    np.testing.assert_array_equal(p.grad.numpy(), np.array([0.1, 0.0], np.float32))


# ---------------------------------------------------------------------------- schedulers
@pytest.mark.parametrize("make, make_torch", [
    (lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    (lambda o: optim.CosineAnnealingLR(o, T_max=8, eta_min=0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01)),
    (lambda o: optim.LinearLR(o, start_factor=0.1, total_iters=4),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4)),
], ids=["StepLR", "CosineAnnealingLR", "LinearLR"])
def test_schedulers_match_torch(make, make_torch):
    opt = optim.SGD([ndl.nn.Parameter(np.ones(1, np.float32))], lr=0.1)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    scheduler, tscheduler = make(opt), make_torch(topt)
    for epoch in range(12):
        assert math.isclose(opt.lr, topt.param_groups[0]["lr"], rel_tol=1e-9, abs_tol=1e-12), \
            f"epoch {epoch}"
        topt.step()
        scheduler.step()
        tscheduler.step()
    restored = make(optim.SGD([ndl.nn.Parameter(np.ones(1, np.float32))], lr=0.1))
    restored.load_state_dict(scheduler.state_dict())
    assert restored.get_last_lr() == [opt.lr]


@pytest.mark.parametrize("shape", [(3, 5), (700, 400), (3, 131072), (131073,)])
def test_squared_norm_in_spans_equals_the_float64_sum(shape):
    # arrays of more than one span (BLOCK_ELEMENTS = 131,072) and at a span's edge
    from needle.backend_ndarray import fused

    values = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    expected = float((values.astype(np.float64) ** 2).sum())
    got = fused.squared_norm(ndl.Tensor(values).cached_data)
    assert math.isclose(got, expected, rel_tol=1e-6), (got, expected)
    view = ndl.Tensor(values).cached_data.permute(tuple(reversed(range(len(shape)))))
    assert math.isclose(fused.squared_norm(view), expected, rel_tol=1e-6)  # not contiguous
