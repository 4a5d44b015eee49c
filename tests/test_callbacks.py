"""Callbacks: checkpoints that resume bit-identically (per-batch one-cycle, mixup, early
stopping), schedulers per batch, clipping, mixup's batches and loss, early stopping, label
smoothing against PyTorch; the command line's --scheduler onecycle and lr-find."""

import json
import math

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn, optim
from needle.callbacks import (Checkpoint, EarlyStopping, GradientClipping, MixUp,
                              ParamScheduler, Recorder, SchedulerStep)
from needle.learner import Learner
from needle.schedules import OneCycleLR, combine_scheds, sched_cos, sched_lin
from test_learner import setup, weights


def learner_with(callbacks, seed=0, epochs=4):
    model, opt, train, test = setup(seed)
    sched = OneCycleLR(opt, max_lr=0.5, epochs=epochs, steps_per_epoch=len(train))
    return Learner(model, train, nn.SoftmaxLoss(), opt, test_loader=test,
                   callbacks=[Recorder(), SchedulerStep(sched, every="batch"), MixUp(0.4),
                              EarlyStopping("test_loss", patience=10), *callbacks])


def test_checkpoint_resume_continues_bit_identically(tmp_path):
    straight = learner_with([]).fit(4)
    path = str(tmp_path / "ckpt.safetensors")
    learner_with([Checkpoint(path)]).fit(2)
    resumed = learner_with([Checkpoint(path, resume=path)]).fit(4)
    assert all(np.array_equal(a, b) for a, b in zip(weights(straight.model),
                                                    weights(resumed.model)))
    assert straight.opt.lr == resumed.opt.lr and straight.opt.momentum == resumed.opt.momentum
    drop = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert drop(straight.find(Recorder).history) == drop(resumed.find(Recorder).history)
    assert straight.find(EarlyStopping).state_dict() == resumed.find(EarlyStopping).state_dict()
    saved = ndl.load(path)
    assert saved["epoch"] == 4 and set(saved["callbacks"]) >= {"Recorder", "SchedulerStep",
                                                               "EarlyStopping"}


def test_param_scheduler_sets_the_lr_of_every_batch():
    model, opt, train, _ = setup()
    schedule = combine_scheds([0.5, 0.5], [sched_lin(0.01, 0.1), sched_cos(0.1, 0.001)])
    recorder = Recorder()
    Learner(model, train, None, opt, callbacks=[recorder, ParamScheduler({"lr": schedule})]).fit(3)
    n = len(train)
    want = [schedule((e + i / n) / 3) for e in range(3) for i in range(n)]
    np.testing.assert_allclose(recorder.lrs, want, rtol=1e-12)
    with pytest.raises(ValueError, match="the optimiser SGD has no 'beta1'"):
        Learner(model, train, None, opt, callbacks=[ParamScheduler({"beta1": schedule})]).fit(1)


def test_gradient_clipping_bounds_the_global_norm():
    norms = []

    class Norm:
        order = 10

        def after_backward(self, learner):
            norms.append(math.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum())
                                       for p in learner.model.parameters())))

    model, opt, train, _ = setup()
    Learner(model, train, None, opt, callbacks=[Norm()]).fit(1)
    unclipped = list(norms)
    norms.clear()
    model, opt, train, _ = setup()
    Learner(model, train, None, opt, callbacks=[GradientClipping(0.1), Norm()]).fit(1)
    assert max(unclipped) > 0.1 and max(norms) <= 0.1 * (1 + 1e-5)
    with pytest.raises(ValueError, match="max_norm > 0, got 0"):
        GradientClipping(0)


def test_mixup_mixes_inputs_and_losses_with_one_lambda():
    """Each training batch is lam x + (1 - lam) x[perm] with MixUp's own RNG draws, and its
    loss lam L(pred, y) + (1 - lam) L(pred, y[perm]); test batches are left alone."""
    checked = []

    class Check:
        def __init__(self, order):
            self.order = order

        def before_batch(self, learner):
            if self.order < 0:  # before MixUp: the batch and the RNG it will draw from
                self.x, self.y, self.rng = learner.inputs[0].numpy(), learner.target, \
                    np.random.get_state()

        def after_loss(self, learner):
            if self.order < 0:
                return
            first, mix = learner.callbacks[0], learner.find(MixUp)
            if not learner.training:
                assert mix.lam is None
                np.testing.assert_array_equal(learner.inputs[0].numpy(), first.x)
                return
            np.random.set_state(first.rng)
            lam = float(np.random.beta(0.4, 0.4))
            lam, perm = max(lam, 1 - lam), np.random.permutation(len(first.x))
            assert mix.lam == lam
            np.testing.assert_allclose(learner.inputs[0].numpy(),
                                       lam * first.x + (1 - lam) * first.x[perm], rtol=1e-6)
            loss = nn.SoftmaxLoss()
            y = first.y.numpy()
            want = lam * float(loss(learner.preds, ndl.Tensor(y)).numpy()) + \
                (1 - lam) * float(loss(learner.preds, ndl.Tensor(y[perm])).numpy())
            assert float(learner.loss.numpy()) == pytest.approx(want, rel=1e-5)
            checked.append(lam)

    model, opt, train, test = setup()
    learner = Learner(model, train, nn.SoftmaxLoss(), opt, test_loader=test,
                      callbacks=[Check(-10), MixUp(0.4), Check(10)])
    loss_fn = learner.loss_fn
    learner.fit(2)
    assert len(checked) == 2 * len(train) and learner.loss_fn is loss_fn


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    scripted = [1.0, 0.9, 0.95, 0.91, 0.92, 0.5]

    class Script:
        order = -15  # after the Recorder's entry, before EarlyStopping reads it

        def after_epoch(self, learner):
            learner.find(Recorder).history[-1]["test_loss"] = scripted[learner.epoch]

    model, opt, train, test = setup()
    recorder = Recorder()
    Learner(model, train, None, opt, test_loader=test,
            callbacks=[recorder, Script(), EarlyStopping(patience=3)]).fit(6)
    assert len(recorder.history) == 5
    with pytest.raises(ValueError, match="no 'val_acc' in the history"):
        Learner(model, train, None, opt, callbacks=[recorder, EarlyStopping("val_acc")]).fit(1)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_torch(eps):
    from oracles import check_finite_differences, check_torch

    rng = np.random.default_rng(0)
    logits, y = rng.standard_normal((6, 5)), rng.integers(0, 5, 6)
    check_torch(lambda a: nn.LabelSmoothingCrossEntropy(eps)(a, ndl.Tensor(y)),
                lambda a: torch.nn.functional.cross_entropy(a, torch.tensor(y),
                                                            label_smoothing=eps),
                logits, rtol=1e-9, atol=1e-12, name="label smoothing")
    check_finite_differences(lambda a: nn.LabelSmoothingCrossEntropy(eps)(a, ndl.Tensor(y)),
                             logits, name="label smoothing")


def test_cli_onecycle_steps_per_batch_and_lr_find_writes_its_plot(tmp_path, capsys):
    from needle import __main__ as cli

    cli.main(["train", "--epochs", "2", "--scheduler", "onecycle", "--lr", "0.01",
              "--no-progress", "--out", str(tmp_path / "run")])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[0]["lr"] == pytest.approx(0.01 / 25)  # one-cycle starts at max_lr / 25
    assert history[1]["lr"] > history[0]["lr"]
    cli.main(["lr-find", "--steps", "30", "--no-progress", "--out", str(tmp_path / "lr")])
    printed = capsys.readouterr().out
    found = json.loads((tmp_path / "lr" / "lr_find.json").read_text())
    assert f"suggested learning rate {found['suggestion']:.3g}" in printed
    assert len(found["lrs"]) <= 30 and found["lrs"][0] == pytest.approx(1e-7)
    assert (tmp_path / "lr" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
