"""Training loops: one ``epoch`` over a DataLoader, and ``fit`` with history and checkpoints.

Both are thin wrappers over ``needle.learner.Learner`` and its callbacks: ``fit`` is a
Learner with ``Recorder`` (one history entry per epoch: losses, accuracies, learning rate,
seconds), ``SchedulerStep`` (the scheduler stepped after each epoch), ``Checkpoint`` (saved
after every epoch; ``resume`` continues bit-identically: model, optimiser, scheduler,
history and numpy's global RNG state), ``ProgressBar`` and ``OnEpochEnd``.

In a data-parallel job (``needle.distributed``) every rank runs the same loop on its share
of the data, through ``DistributedTrainer`` (each epoch's ``DistributedSampler`` order,
rank 0's weights and buffers): ``epoch`` and the history sum errors, samples and losses
over the ranks (``Recorder``) and only rank 0 writes checkpoints.

Other tasks plug in through ``epoch_fn``: any function ``(loader, model, *, opt, loss_fn,
progress)`` (called with keywords) returning ``(error_rate, mean_loss)`` or a dict of named
metrics (e.g. ``{"loss": ..., "ppl": ...}``), recorded as ``train_<name>`` and
``test_<name>``; or, better, through callbacks on a Learner.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from . import nn
from .backend_ndarray import allocator
from .autograd import Tensor, no_grad
from .callbacks import (Checkpoint, DistributedTrainer, OnEpochEnd, ProgressBar, Recorder,
                        SchedulerStep, rng_state, set_rng_state)
from .learner import Callback, CancelEpoch, Learner
from .optim import Optimizer
from .serialization import load, save

Metrics = dict[str, float]
EpochFn = Callable[..., Any]


def epoch(dataloader: Iterable[Any], model: nn.Module, opt: Optimizer | None = None, *,
          loss_fn: nn.Module | None = None, progress: bool = False) -> tuple[float, float]:
    """One pass over ``dataloader``: training (``model.train()``, a step per batch) when
    ``opt`` is given, else evaluation (``model.eval()``, no graph). The seed's and the
    course's order: ``epoch(dataloader, model, opt)``; the loss (default ``SoftmaxLoss``)
    is a keyword.

    Returns (error rate over all samples, mean loss over all samples), of every rank in a
    distributed job (sums over the ranks, not means of their means); there every rank
    starts the pass with rank 0's buffers (BatchNorm's running statistics)."""
    recorder, bar = Recorder(), ProgressBar()
    callbacks = [recorder, DistributedTrainer()] + ([bar] if progress else [])
    learner = Learner(model, dataloader, loss_fn, opt, test_loader=dataloader,
                      callbacks=callbacks)
    learner.run_pass(training=opt is not None)
    bar.close()
    try:
        metrics = recorder.means("train" if opt is not None else "test")
    except ValueError:
        raise ValueError("epoch: the dataloader yielded no batches") from None
    return 1.0 - metrics["acc"], metrics["loss"]


def _as_metrics(result: Any) -> Metrics:
    """An epoch function's result as named metrics: (error, loss) -> loss and accuracy."""
    if isinstance(result, dict):
        return {k: float(v) for k, v in result.items()}
    error, loss = result
    return {"loss": float(loss), "acc": 1.0 - float(error)}


class EpochFunction(Callback):
    """Runs a whole epoch with a custom ``epoch_fn`` instead of the Learner's batches."""

    def __init__(self, epoch_fn: EpochFn, progress: bool):
        self.epoch_fn, self.progress = epoch_fn, progress

    def before_epoch(self, learner: Learner) -> None:
        recorder = learner.find(Recorder)
        result = self.epoch_fn(learner.train_loader, learner.model, opt=learner.opt,
                               loss_fn=learner.loss_fn, progress=self.progress)
        recorder.record("train", _as_metrics(result))
        if learner.test_loader is not None:
            result = self.epoch_fn(learner.test_loader, learner.model, opt=None,
                                   loss_fn=learner.loss_fn, progress=self.progress)
            recorder.record("test", _as_metrics(result))
        raise CancelEpoch


def save_checkpoint(path: str, model: nn.Module, opt: Optimizer | None,
                    history: list[Metrics], scheduler: Any = None) -> None:
    """Model, optimiser, scheduler, history and numpy's RNG state, written atomically."""
    save({"model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
          "scheduler": scheduler.state_dict() if scheduler else None,
          "history": history, "epoch": len(history), "rng": rng_state()}, path)


def load_checkpoint(path: str, model: nn.Module, opt: Optimizer | None = None,
                    scheduler: Any = None) -> list[Metrics]:
    """Restore what ``save_checkpoint`` (or the ``Checkpoint`` callback) wrote into
    ``model``, ``opt`` and ``scheduler``, set numpy's RNG state; return the history."""
    state = load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a needle training checkpoint (no 'model' entry)")
    model.load_state_dict(state["model"])
    if opt is not None and state.get("optimizer") is not None:
        opt.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return list(state["history"])


def fit(model: nn.Module, train_loader: Iterable[Any], opt: Optimizer, epochs: int, *,
        test_loader: Iterable[Any] | None = None, loss_fn: nn.Module | None = None,
        scheduler: Any = None, checkpoint: str | None = None, resume: str | None = None,
        epoch_fn: EpochFn | None = None, progress: bool = False,
        on_epoch: Callable[[Metrics], None] | None = None) -> list[Metrics]:
    """Train for ``epochs`` epochs in total and return the history: one dict per epoch with
    ``epoch, train_loss, train_acc, [test_loss, test_acc,] lr, seconds``.

    ``checkpoint``: a path written after every epoch. ``resume``: a checkpoint to continue
    from (its epochs count towards ``epochs``). ``scheduler.step()`` runs after each epoch;
    ``on_epoch`` receives each new history entry (e.g. to print it). Turns on the allocator
    tuning (``backend_ndarray.allocator.enable``)."""
    allocator.enable()
    callbacks = [Recorder()] + fit_callbacks(scheduler=scheduler, checkpoint=checkpoint,
                                             resume=resume, progress=progress,
                                             on_epoch=on_epoch)
    if epoch_fn is not None and epoch_fn is not epoch:
        callbacks.append(EpochFunction(epoch_fn, progress))
    learner = Learner(model, train_loader, loss_fn, opt, test_loader=test_loader,
                      callbacks=callbacks)
    learner.fit(epochs)
    return learner.find(Recorder).history


def fit_callbacks(*, scheduler: Any = None, checkpoint: str | None = None,
                  resume: str | None = None, progress: bool = False,
                  on_epoch: Callable[[Metrics], None] | None = None) -> list[Any]:
    """The callbacks behind ``fit``'s arguments (a Recorder aside): the scheduler stepped
    per epoch (or a given ``SchedulerStep``), checkpoints, progress bars, ``on_epoch``;
    and ``DistributedTrainer`` (data-parallel when started under an MPI launcher)."""
    callbacks: list[Any] = [DistributedTrainer()]
    if scheduler is not None:
        callbacks.append(scheduler if isinstance(scheduler, SchedulerStep)
                         else SchedulerStep(scheduler))
    if checkpoint or resume:
        callbacks.append(Checkpoint(checkpoint, resume))
    if progress:
        callbacks.append(ProgressBar())
    if on_epoch is not None:
        callbacks.append(OnEpochEnd(on_epoch))
    return callbacks


def predict(model: nn.Module, x: Tensor) -> np.ndarray:
    """Class predictions (argmax of the logits) of ``model`` in eval mode."""
    model.eval()
    with no_grad():
        return model(x).numpy().argmax(axis=-1)
