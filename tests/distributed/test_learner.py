"""The Learner data-parallel (``fit`` with ``DistributedTrainer``): W ranks from different
initial weights end where one process ends on the global batches, with the same history
(sums over the ranks); each epoch reshuffles (``set_epoch``); only rank 0 writes the
checkpoint; a resumed distributed run ends where an uninterrupted one does."""

import os
import tempfile

import numpy as np
import pytest

import needle as ndl
from needle import distributed as dist
from needle import nn
from needle.callbacks import DistributedTrainer, GradientClipping, Recorder
from needle.distributed import DistributedOptimizer, DistributedSampler
from needle.learner import Learner

W, R = dist.world_size(), dist.rank()
GLOBAL_BATCH, STEPS, DIM, EPOCHS = 64, 4, 12, 2


def model(seed=0, drop_prob=0.0):
    np.random.seed(seed)
    return ndl.models.MLPResNet(DIM, hidden_dim=16, num_blocks=1, num_classes=5,
                                norm=nn.LayerNorm1d, drop_prob=drop_prob)


def datasets():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((GLOBAL_BATCH * STEPS + 37, DIM)).astype(np.float32)
    y = rng.integers(0, 5, len(x))
    train = ndl.data.NDArrayDataset(x[:GLOBAL_BATCH * STEPS], y[:GLOBAL_BATCH * STEPS])
    return train, ndl.data.NDArrayDataset(x[GLOBAL_BATCH * STEPS:], y[GLOBAL_BATCH * STEPS:])


def sgd(net):
    return ndl.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)


def fit_on_ranks(net, epochs, **kwargs):
    """``fit`` on this rank's shares: training from a shuffled DistributedSampler, the
    held-out set once each (pad=False)."""
    train, test = datasets()
    train_loader = ndl.data.DataLoader(train, GLOBAL_BATCH // W,
                                       sampler=DistributedSampler(train, seed=3))
    test_loader = ndl.data.DataLoader(test, 10, sampler=DistributedSampler(
        test, shuffle=False, pad=False))
    return ndl.train.fit(net, train_loader, DistributedOptimizer(sgd(net)), epochs,
                         test_loader=test_loader, scheduler=None, **kwargs)


def fit_alone(net, epochs):
    """One process, a Learner per epoch, on the global batches in the sampler's order."""
    train, test = datasets()
    sampler, opt, history = DistributedSampler(train, seed=3), sgd(net), []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        learner = Learner(net, ndl.data.DataLoader(train, GLOBAL_BATCH, sampler=sampler.order()),
                          opt=opt, test_loader=ndl.data.DataLoader(test, 37),
                          callbacks=[Recorder()])
        history += learner.fit(1).find(Recorder).history
    return history


def test_fit_on_ranks_equals_one_process_on_the_global_batches():
    ours = model(seed=R)  # rank 0's weights reach every rank
    history = fit_on_ranks(ours, EPOCHS)
    reference = model(seed=0)
    alone = fit_alone(reference, EPOCHS)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, reference.state_dict()[name], atol=1e-5,
                                   err_msg=name)
    start = model(seed=0).state_dict()
    assert max(float(np.abs(v - start[k]).max()) for k, v in ours.state_dict().items()) > 1e-2
    for mine, theirs in zip(history, alone, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-5), key
    summary = [(e["train_loss"], e["test_acc"]) for e in history]
    assert dist.all_gather_object(summary) == [summary] * W  # one history on every rank


def test_gradient_clipping_clips_the_averaged_gradients():
    """GradientClipping on W ranks clips what one process clips: the global gradient."""
    train, _ = datasets()
    sampler = DistributedSampler(train, seed=3)
    ours, reference = model(), model()
    clip = [GradientClipping(0.05), DistributedTrainer()]
    big_steps = lambda net: ndl.optim.SGD(net.parameters(), lr=2.0)  # noqa: E731
    Learner(ours, ndl.data.DataLoader(train, GLOBAL_BATCH // W, sampler=sampler),
            opt=DistributedOptimizer(big_steps(ours)), callbacks=clip).fit(1)
    Learner(reference, ndl.data.DataLoader(train, GLOBAL_BATCH, sampler=sampler.order()),
            opt=big_steps(reference), callbacks=[GradientClipping(0.05)]).fit(1)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, reference.state_dict()[name], atol=1e-5,
                                   err_msg=name)


def test_each_epoch_draws_a_new_order():
    train, _ = datasets()
    sampler = DistributedSampler(train, seed=3)
    loader = ndl.data.DataLoader(train, GLOBAL_BATCH // W, sampler=sampler)
    seen = []

    class Orders:
        def after_epoch(self, learner):
            seen.append((sampler.epoch, sampler.order()))
    net = model()
    learner = Learner(net, loader, opt=DistributedOptimizer(sgd(net)),
                      callbacks=[Recorder(), Orders(), *ndl.train.fit_callbacks()])
    learner.fit(2)
    assert [epoch for epoch, _ in seen] == [0, 1]
    assert not np.array_equal(seen[0][1], seen[1][1])


def shared_folder():
    """A fresh folder named by rank 0 (every rank reads rank 0's files, as on one
    machine or a shared file system)."""
    return dist.broadcast_object(tempfile.mkdtemp() if R == 0 else None)


def test_only_rank_zero_writes_the_checkpoint_and_resuming_continues_exactly():
    """With dropout: each rank's own RNG stream is saved and restored."""
    folder = shared_folder()
    path = os.path.join(folder, f"written-by-rank-{R}.safetensors")
    fit_on_ranks(model(drop_prob=0.3), 1, checkpoint=path)
    dist.barrier()
    assert sorted(os.listdir(folder)) == ["written-by-rank-0.safetensors"]

    resumed = model(seed=5, drop_prob=0.3)  # the checkpoint's weights replace these
    history = fit_on_ranks(resumed, EPOCHS, resume=os.path.join(
        folder, "written-by-rank-0.safetensors"))
    straight = model(drop_prob=0.3)
    straight_history = fit_on_ranks(straight, EPOCHS)
    assert [e["epoch"] for e in history] == [1, 2]
    for name, value in resumed.state_dict().items():
        np.testing.assert_array_equal(value, straight.state_dict()[name], err_msg=name)
    assert history[1]["train_loss"] == straight_history[1]["train_loss"]
