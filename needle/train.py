"""Training loops: one ``epoch`` over a DataLoader, and ``fit`` with history and checkpoints.

In a data-parallel job (``needle.distributed``) every rank runs the same loop on its share
of the data: ``epoch`` sums errors, samples and losses over the ranks, ``fit`` sets the
epoch of a ``DistributedSampler`` and only rank 0 writes checkpoints.

``fit`` keeps one history entry per epoch (losses, accuracies, learning rate, seconds),
can save a checkpoint after every epoch and resume from one: a checkpoint holds the model,
the optimiser (moments, step counter), the scheduler, the history and numpy's global RNG
state, so a resumed run continues bit-identically where it stopped.

Other tasks plug in through ``epoch_fn``: any function ``(loader, model, loss_fn, opt)``
returning ``(error_rate, mean_loss)`` or a dict of named metrics (e.g. ``{"loss": ...,
"ppl": ...}``), recorded as ``train_<name>`` and ``test_<name>``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

import numpy as np

from . import distributed as dist
from . import nn
from .backend_ndarray import allocator
from .autograd import Tensor, no_grad
from .optim import Optimizer
from .serialization import load, save

Metrics = dict[str, float]
EpochFn = Callable[..., Any]


def _progress(iterable: Iterable[Any], enabled: bool, desc: str) -> Iterable[Any]:
    """``iterable`` wrapped in a tqdm progress bar when enabled and tqdm is installed."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the progress extra is optional
        return iterable
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


def epoch(dataloader: Iterable[Any], model: nn.Module, loss_fn: nn.Module | None = None,
          opt: Optimizer | None = None, progress: bool = False) -> tuple[float, float]:
    """One pass over ``dataloader``: training (``model.train()``, a step per batch) when
    ``opt`` is given, else evaluation (``model.eval()``, no graph).

    Returns (error rate, mean loss) over all samples, of every rank in a distributed job
    (sums over the ranks, not means of their means); there every rank starts the pass
    with rank 0's buffers (BatchNorm's running statistics), so it evaluates one model."""
    loss_fn = loss_fn or nn.SoftmaxLoss()
    dist.broadcast_buffers(model)
    model.train(opt is not None)
    errors, samples, loss_sum = 0, 0, 0.0
    for x, y in _progress(dataloader, progress and dist.is_main_process(),
                          "train" if opt else "eval"):
        if opt is None:
            with no_grad():
                logits = model(x)
                loss = loss_fn(logits, y)
        else:
            opt.reset_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            opt.step()
        errors += int((logits.numpy().argmax(axis=1) != y.numpy()).sum())
        samples += y.shape[0]
        loss_sum += float(loss.numpy()) * y.shape[0]
    errors, samples, loss_sum = dist.all_reduce(np.array([errors, samples, loss_sum])).tolist()
    if not samples:
        raise ValueError("epoch: the dataloader yielded no batches")
    return errors / samples, loss_sum / samples


def _as_metrics(result: Any) -> Metrics:
    """An epoch function's result as named metrics: (error, loss) -> loss and accuracy."""
    if isinstance(result, dict):
        return {k: float(v) for k, v in result.items()}
    error, loss = result
    return {"loss": float(loss), "acc": 1.0 - float(error)}


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": keys, "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def _set_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state((state["name"], np.asarray(state["keys"], dtype=np.uint32),
                         state["pos"], state["has_gauss"], state["cached_gaussian"]))


def save_checkpoint(path: str, model: nn.Module, opt: Optimizer | None,
                    history: list[Metrics], scheduler: Any = None) -> None:
    """Model, optimiser, scheduler, history and numpy's RNG state, written atomically."""
    save({"model": model.state_dict(), "optimizer": opt.state_dict() if opt else None,
          "scheduler": scheduler.state_dict() if scheduler else None,
          "history": history, "epoch": len(history), "rng": _rng_state()}, path)


def load_checkpoint(path: str, model: nn.Module, opt: Optimizer | None = None,
                    scheduler: Any = None) -> list[Metrics]:
    """Restore what ``save_checkpoint`` wrote into ``model``, ``opt`` and ``scheduler``,
    set numpy's RNG state, and return the history so far."""
    state = load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a needle training checkpoint (no 'model' entry)")
    model.load_state_dict(state["model"])
    if opt is not None and state.get("optimizer") is not None:
        opt.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return list(state["history"])


def fit(model: nn.Module, train_loader: Iterable[Any], opt: Optimizer, epochs: int, *,
        test_loader: Iterable[Any] | None = None, loss_fn: nn.Module | None = None,
        scheduler: Any = None, checkpoint: str | None = None, resume: str | None = None,
        epoch_fn: EpochFn = epoch, progress: bool = False,
        on_epoch: Callable[[Metrics], None] | None = None) -> list[Metrics]:
    """Train for ``epochs`` epochs in total and return the history: one dict per epoch with
    ``epoch, train_loss, train_acc, [test_loss, test_acc,] lr, seconds``.

    ``checkpoint``: a path written after every epoch. ``resume``: a checkpoint to continue
    from (its epochs count towards ``epochs``). ``scheduler.step()`` runs after each epoch;
    ``on_epoch`` receives each new history entry (e.g. to print it). Turns on the allocator
    tuning (``backend_ndarray.allocator.enable``)."""
    allocator.enable()
    history = load_checkpoint(resume, model, opt, scheduler) if resume else []
    dist.decorrelate_rng()
    for index in range(len(history), epochs):
        start, lr = time.perf_counter(), opt.lr
        entry: Metrics = {"epoch": index + 1}
        _set_epoch(train_loader, index)
        result = epoch_fn(train_loader, model, loss_fn, opt, progress=progress)
        entry.update({f"train_{k}": v for k, v in _as_metrics(result).items()})
        if test_loader is not None:
            result = epoch_fn(test_loader, model, loss_fn, None, progress=progress)
            entry.update({f"test_{k}": v for k, v in _as_metrics(result).items()})
        if scheduler is not None:
            scheduler.step()
        entry.update(lr=lr, seconds=time.perf_counter() - start)
        history.append(entry)
        if checkpoint and dist.is_main_process():
            os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
            save_checkpoint(checkpoint, model, opt, history, scheduler)
        if on_epoch is not None:
            on_epoch(entry)
    return history


def _set_epoch(loader: Any, index: int) -> None:
    """Tell the loader's sampler (a DistributedSampler) which epoch's order to draw."""
    set_epoch = getattr(getattr(loader, "sampler", None), "set_epoch", None)
    if set_epoch is not None:
        set_epoch(index)


def predict(model: nn.Module, x: Tensor) -> np.ndarray:
    """Class predictions (argmax of the logits) of ``model`` in eval mode."""
    model.eval()
    with no_grad():
        return model(x).numpy().argmax(axis=-1)
