"""The Learner: event order, Cancel exceptions, unknown events, one loop equal to the plain
training loop, and the lr finder (restores the model and optimiser, stops on divergence)."""

import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.callbacks import LRFinder, Recorder
from needle.learner import EVENTS, CancelBatch, CancelEpoch, CancelFit, Learner


def setup(seed=0, n=96, batch=32):
    np.random.seed(seed)
    data = np.random.default_rng(1)
    x = data.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + 2 * (x[:, 3] > 0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = ndl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train = ndl.data.DataLoader(ndl.data.NDArrayDataset(x[:64], y[:64]), batch, shuffle=True)
    test = ndl.data.DataLoader(ndl.data.NDArrayDataset(x[64:], y[64:]), batch)
    return model, opt, train, test


def weights(model):
    return [p.numpy().copy() for p in model.parameters()]


class Log:
    def __init__(self):
        self.events = []

    def __getattr__(self, name):
        if name not in EVENTS:
            raise AttributeError(name)
        return lambda learner: self.events.append((name, learner.training))


def test_events_fire_in_order_for_training_and_test_batches():
    model, opt, train, test = setup()
    log = Log()
    Learner(model, train, nn.SoftmaxLoss(), opt, test_loader=test, callbacks=[log]).fit(1)
    step = ["before_batch", "after_pred", "after_loss", "after_backward", "after_step",
            "after_batch"]
    evaluate = ["before_batch", "after_pred", "after_loss", "after_batch"]
    want = ["before_fit", "before_epoch"] + step * 2 + evaluate + ["after_epoch", "after_fit"]
    assert [e for e, _ in log.events] == want
    assert [t for e, t in log.events if e == "after_batch"] == [True, True, False]


def test_callbacks_run_in_order_of_their_order_attribute():
    seen = []

    class A:
        order = 5

        def before_fit(self, learner):
            seen.append("A")

    class B:
        order = -5

        def before_fit(self, learner):
            seen.append("B")

    model, opt, train, _ = setup()
    Learner(model, train, None, opt, callbacks=[A(), B()]).fit(0)
    assert seen == ["B", "A"]


def test_unknown_event_names_are_clear_errors():
    class Typo:
        def after_bach(self, learner):
            pass

    model, opt, train, _ = setup()
    with pytest.raises(ValueError, match=r"Typo.after_bach: unknown callback event \(did you "
                                         r"mean 'after_batch'\?\); the events are before_fit"):
        Learner(model, train, None, opt, callbacks=[Typo()])
    with pytest.raises(ValueError, match="unknown callback event 'after_everything'"):
        Learner(model, train, None, opt).callback("after_everything")


def test_cancel_batch_skips_the_step_but_not_after_batch():
    class SkipStep:
        def __init__(self):
            self.after = 0

        def after_loss(self, learner):
            raise CancelBatch

        def after_batch(self, learner):
            self.after += 1

    model, opt, train, _ = setup()
    before, skip = weights(model), SkipStep()
    Learner(model, train, None, opt, callbacks=[skip]).fit(2)
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model)))
    assert skip.after == 2 * len(train) and opt.t == 0


def test_cancel_epoch_and_cancel_fit():
    class StopAt:
        def __init__(self, exc, epoch):
            self.exc, self.epoch, self.log = exc, epoch, Log()

        def before_epoch(self, learner):
            if learner.epoch >= self.epoch:
                raise self.exc

    model, opt, train, _ = setup()
    log = Log()
    Learner(model, train, None, opt, callbacks=[StopAt(CancelEpoch, 1), log]).fit(3)
    names = [e for e, _ in log.events]
    assert names.count("after_epoch") == 3 and names.count("after_step") == len(train)
    log = Log()
    Learner(model, train, None, opt, callbacks=[log, StopAt(CancelFit, 1)]).fit(3)
    names = [e for e, _ in log.events]
    assert names.count("before_epoch") == 2 and names.count("after_epoch") == 1
    assert names[-1] == "after_fit"


def test_the_learner_trains_exactly_like_the_plain_loop():
    """Same seed, same batches: the weights after a Learner fit equal a hand-written loop's."""
    model, opt, train, test = setup(seed=5)
    recorder = Recorder()
    Learner(model, train, nn.SoftmaxLoss(), opt, test_loader=test, callbacks=[recorder]).fit(3)

    plain, plain_opt, plain_train, plain_test = setup(seed=5)
    loss_fn, losses = nn.SoftmaxLoss(), []
    for _ in range(3):
        plain.train()
        for x, y in plain_train:
            plain_opt.reset_grad()
            loss = loss_fn(plain(x), y)
            loss.backward()
            plain_opt.step()
            losses.append(float(loss.numpy()))
        plain.eval()
        with ndl.no_grad():
            for x, y in plain_test:
                plain(x)
    assert all(np.array_equal(a, b) for a, b in zip(weights(model), weights(plain)))
    assert recorder.losses == losses
    first = losses[:len(train)]
    sizes = [32, 32]
    assert recorder.history[0]["train_loss"] == pytest.approx(np.average(first, weights=sizes))
    assert [e["epoch"] for e in recorder.history] == [1, 2, 3]


def test_lr_find_sweeps_exponentially_and_restores_model_and_optimiser():
    model, opt, train, _ = setup(n=640)
    Learner(model, train, None, opt).fit(1)  # some optimiser state to restore
    before, opt_before, rng_before = weights(model), opt.state_dict(), np.random.get_state()[1]
    learner = Learner(model, train, nn.SoftmaxLoss(), opt, callbacks=[Recorder()])
    finder = learner.lr_find(start=1e-4, end=1e3, steps=60)
    assert isinstance(finder, LRFinder)
    assert len(finder.lrs) < 60, "a sweep to lr 1000 must stop when the loss explodes"
    ratios = np.diff(np.log(finder.lrs))
    np.testing.assert_allclose(ratios, np.log(1e7) / 59, rtol=1e-9)
    assert finder.lrs[0] == pytest.approx(1e-4)
    assert finder.smoothed[-1] > 4 * min(finder.smoothed[:-1])
    best = int(np.argmin(finder.smoothed))
    assert finder.suggestion == pytest.approx(finder.lrs[best] / 10)
    assert finder.lrs[0] < finder.suggestion < finder.lrs[-1] / 10
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model)))
    after = opt.state_dict()
    assert after["step"] == opt_before["step"] and opt.lr == 0.1
    assert all(np.array_equal(a["u"], b["u"]) for a, b in zip(after["state"],
                                                              opt_before["state"]))
    assert np.array_equal(np.random.get_state()[1], rng_before)
    assert learner.find(Recorder).history == [] and learner.find(LRFinder) is None
    losses = {}
    for lr in (finder.lrs[0], finder.suggestion):  # the suggestion trains, the start does not
        model, opt, train, _ = setup(n=640)
        opt.lr = lr
        recorder = Recorder()
        Learner(model, train, None, opt, callbacks=[recorder]).fit(2)
        losses[lr] = recorder.history[-1]["train_loss"]
    assert losses[finder.suggestion] < 0.8 * losses[finder.lrs[0]]


def test_lr_find_and_fit_need_an_optimiser():
    model, _, train, _ = setup()
    with pytest.raises(ValueError, match="needs an optimiser"):
        Learner(model, train).fit(1)
    with pytest.raises(ValueError, match="0 < start < end and steps >= 2"):
        Learner(model, train, None, ndl.optim.SGD(model.parameters())).lr_find(1.0, 0.1)
