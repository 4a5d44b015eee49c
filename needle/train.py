"""Training loops: one ``epoch`` over a DataLoader, and ``fit`` with history and checkpoints.

``fit`` keeps one history entry per epoch (losses, accuracies, learning rate, seconds),
can save a checkpoint after every epoch and resume from one: a checkpoint holds the model,
the optimiser (moments, step counter), the scheduler, the history and numpy's global RNG
state, so a resumed run continues bit-identically where it stopped.

Other tasks plug in through ``epoch_fn``: any function ``(loader, model, *, opt, loss_fn,
progress)`` (called with keywords) returning ``(error_rate, mean_loss)`` or a dict of named metrics (e.g. ``{"loss": ...,
"ppl": ...}``), recorded as ``train_<name>`` and ``test_<name>``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable

import numpy as np

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


def epoch(dataloader: Iterable[Any], model: nn.Module, opt: Optimizer | None = None, *,
          loss_fn: nn.Module | None = None, progress: bool = False) -> tuple[float, float]:
    """One pass over ``dataloader``: training (``model.train()``, a step per batch) when
    ``opt`` is given, else evaluation (``model.eval()``, no graph). The seed's and the
    course's order: ``epoch(dataloader, model, opt)``; the loss (default ``SoftmaxLoss``)
    is a keyword.

    Returns (error rate over all samples, mean of the per-batch losses)."""
    loss_fn = loss_fn or nn.SoftmaxLoss()
    model.train(opt is not None)
    errors, samples, losses = 0, 0, []
    for x, y in _progress(dataloader, progress, "train" if opt else "eval"):
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
        losses.append(float(loss.numpy()))
    if not samples:
        raise ValueError("epoch: the dataloader yielded no batches")
    return errors / samples, float(np.mean(losses))


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
    for index in range(len(history), epochs):
        start, lr = time.perf_counter(), opt.lr
        entry: Metrics = {"epoch": index + 1}
        result = epoch_fn(train_loader, model, opt=opt, loss_fn=loss_fn, progress=progress)
        entry.update({f"train_{k}": v for k, v in _as_metrics(result).items()})
        if test_loader is not None:
            result = epoch_fn(test_loader, model, opt=None, loss_fn=loss_fn, progress=progress)
            entry.update({f"test_{k}": v for k, v in _as_metrics(result).items()})
        if scheduler is not None:
            scheduler.step()
        entry.update(lr=lr, seconds=time.perf_counter() - start)
        history.append(entry)
        if checkpoint:
            os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
            save_checkpoint(checkpoint, model, opt, history, scheduler)
        if on_epoch is not None:
            on_epoch(entry)
    return history


def predict(model: nn.Module, x: Tensor) -> np.ndarray:
    """Class predictions (argmax of the logits) of ``model`` in eval mode."""
    model.eval()
    with no_grad():
        return model(x).numpy().argmax(axis=-1)
