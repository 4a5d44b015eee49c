"""needle.Solver and its update rules: cs231n's interface, rules against torch.optim."""

import json

import numpy as np
import pytest
import torch

import needle as ndl
from needle import solver as rules
from needle.models import FullyConnectedNet


def _steps(rule, config, torch_opt, steps=4, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(3, 4))
    p = torch.tensor(w.copy(), requires_grad=True)
    opt = torch_opt([p])
    for _ in range(steps):
        dw = rng.normal(size=w.shape)
        w, config = rule(w, dw, config)
        p.grad = torch.tensor(dw)
        opt.step()
    return w, p.detach().numpy()


@pytest.mark.parametrize("rule, config, torch_opt", [
    (rules.sgd, {"learning_rate": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1)),
    (rules.sgd_momentum, {"learning_rate": 0.1, "momentum": 0.8},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8)),
    (rules.rmsprop, {"learning_rate": 0.01, "decay_rate": 0.9},
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8)),
    (rules.adam, {"learning_rate": 0.01, "beta1": 0.5},
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.999), eps=1e-8)),
])
def test_update_rules_match_torch_optim(rule, config, torch_opt):
    ours, theirs = _steps(rule, config, torch_opt)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_rules_fill_in_cs231n_defaults():
    _, config = rules.adam(np.zeros(2), np.ones(2))
    assert (config["learning_rate"], config["beta1"], config["beta2"], config["t"]) == \
        (1e-3, 0.9, 0.999, 1)
    assert rules.sgd_momentum(np.zeros(1), np.ones(1))[1]["momentum"] == 0.9
    assert rules.rmsprop(np.zeros(1), np.ones(1))[1]["decay_rate"] == 0.99


def _data(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] > 0).astype(np.int64)
    return {"X_train": X, "y_train": y, "X_val": X[:20], "y_val": y[:20]}


def test_solver_defaults_histories_lr_decay_and_best_params():
    np.random.seed(0)
    model = FullyConnectedNet([10], input_dim=6, num_classes=2, weight_scale=0.1)
    solver = ndl.Solver(model, _data(), update_rule="sgd_momentum",
                        optim_config={"learning_rate": 0.5}, lr_decay=0.5, num_epochs=3,
                        batch_size=20, verbose=False)
    assert (solver.num_train_samples, solver.num_val_samples, solver.print_every,
            solver.checkpoint_name) == (1000, None, 10, None)
    solver.train()
    assert len(solver.loss_history) == 9  # 3 epochs of 60 / 20 steps
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4  # start + 3
    assert solver.optim_configs["W1"]["learning_rate"] == pytest.approx(0.5 * 0.5 ** 3)
    assert solver.best_val_acc == max(solver.val_acc_history)
    for name, value in solver.best_params.items():
        np.testing.assert_array_equal(model.params[name], value)
    assert solver.best_val_acc >= 0.8  # the sign of x0: learnt in 9 steps


def test_check_accuracy_batches_and_subsamples():
    class Fixed:
        params = {}

        def loss(self, X, y=None):
            return np.stack([X[:, 0], -X[:, 0]], axis=1)  # class 0 when x0 > 0

    data = _data(n=250)
    solver = ndl.Solver(Fixed(), data, verbose=False)
    X, y = data["X_train"], 1 - data["y_train"]
    assert solver.check_accuracy(X, y, batch_size=7) == 1.0
    assert solver.check_accuracy(X, 1 - y, num_samples=30) == 0.0


def test_checkpoints_are_safetensors_and_json(tmp_path):
    np.random.seed(0)
    model = FullyConnectedNet([4], input_dim=6, num_classes=2)
    name = str(tmp_path / "ckpt")
    ndl.Solver(model, _data(), num_epochs=2, batch_size=30, checkpoint_name=name,
               verbose=False).train()
    state = json.loads((tmp_path / "ckpt_epoch_2.json").read_text())
    assert state["epoch"] == 2 and len(state["loss_history"]) == 4
    assert set(ndl.load(tmp_path / "ckpt_epoch_2.safetensors")) == set(model.params)


def test_bad_arguments_list_what_exists():
    model = FullyConnectedNet([4], input_dim=6, num_classes=2)
    with pytest.raises(ValueError, match=r"Unrecognized arguments learning_rate, num_epoch; "
                                         r"Solver takes update_rule, optim_config"):
        ndl.Solver(model, _data(), num_epoch=3, learning_rate=1)
    with pytest.raises(ValueError, match="invalid update_rule 'adagrad'; the update rules are: "
                                         "sgd, sgd_momentum, rmsprop, adam"):
        ndl.Solver(model, _data(), update_rule="adagrad")
    with pytest.raises(ValueError, match="missing X_val, y_val"):
        ndl.Solver(model, {"X_train": 0, "y_train": 0})
