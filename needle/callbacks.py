"""The Learner's features, one callback each (see ``needle.learner`` for the events).

- ``Recorder``: per-epoch history (``train_loss, train_acc, test_..., lr, seconds``) and the
  per-batch training losses and learning rates.
- ``ProgressBar``: a tqdm bar per pass. ``OnEpochEnd(fn)``: ``fn(entry)`` after each epoch.
- ``Checkpoint``: saves model, optimiser, every callback's state and numpy's RNG after each
  epoch; ``resume=`` continues bit-identically.
- ``SchedulerStep``: steps an ``optim.LRScheduler`` per epoch or per batch (``OneCycleLR``).
  ``ParamScheduler``: sets optimiser attributes from ``schedules`` functions every batch.
- ``EarlyStopping``, ``GradientClipping``, ``MixUp``; ``RecurrentState`` carries a
  recurrent model's hidden state from batch to batch; ``LRFinder`` runs ``lr_find``.
- ``DistributedTrainer``: data-parallel training on MPI (``needle.distributed``): rank 0's
  weights everywhere, each epoch's ``DistributedSampler`` order, each pass from rank 0's
  buffers. Recorder sums over the ranks and only rank 0 writes checkpoints (at world size
  1 all of it is a no-op).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from . import distributed as dist
from . import optim
from .autograd import Tensor
from .learner import Callback, CancelFit, Learner
from .schedules import Schedule
from .serialization import load, save

Metrics = dict[str, float]
Metric = Callable[[Any, Any], float]


def accuracy(preds: Tensor, target: Tensor) -> float:
    """The fraction of rows of ``preds`` (N, C) whose argmax is ``target`` (N,)."""
    return float((preds.numpy().argmax(axis=-1) == target.numpy()).mean())


def perplexity(metrics: Metrics) -> float:
    """exp(mean cross-entropy) of a pass's averaged metrics (capped to stay finite)."""
    return math.exp(min(metrics["loss"], 700.0))


class Recorder(Callback):
    """History per epoch: the mean loss and ``metrics`` (each ``fn(preds, target)``) over
    the samples of each pass, weighted by batch size, then ``summaries`` (functions of the
    means, e.g. perplexity), the lr at the epoch's start and its seconds. Also ``losses``
    and ``lrs``: every training batch's loss and learning rate.

    In a data-parallel job the means are over the samples of every rank: the counts and
    sums are all-reduced (one collective, when ``means`` or ``after_epoch`` first needs
    them), not the ranks' means averaged; so every rank must call ``means`` alike."""

    order = -20
    in_lr_find = False

    def __init__(self, metrics: Mapping[str, Metric] | None = None,
                 summaries: Mapping[str, Callable[[Metrics], float]] | None = None):
        self.metrics = {"acc": accuracy} if metrics is None else dict(metrics)
        self.summaries = dict(summaries or {})
        self.history: list[Metrics] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, dict[str, float]] = {"train": {}, "test": {}}
        self.counts = {"train": 0, "test": 0}
        self.given: dict[str, Metrics] = {}
        self._totals: dict[str, tuple[int, Metrics]] | None = None

    def before_fit(self, learner: Learner) -> None:
        self.history, self.losses, self.lrs = [], [], []

    def before_epoch(self, learner: Learner) -> None:
        self._reset()
        self.entry: Metrics = {"epoch": learner.epoch + 1}
        self.lr = learner.opt.lr if learner.opt else float("nan")
        self.start = time.perf_counter()

    def after_batch(self, learner: Learner) -> None:
        if learner.loss is None:
            return
        split = "train" if learner.training else "test"
        n, loss = learner.target.shape[0], float(learner.loss.numpy())
        sums = self.sums[split]
        sums["loss"] = sums.get("loss", 0.0) + loss * n
        for name, fn in self.metrics.items():
            sums[name] = sums.get(name, 0.0) + fn(learner.preds, learner.target) * n
        self.counts[split] += n
        self._totals = None
        if learner.training:
            self.losses.append(loss)
            self.lrs.append(learner.opt.lr if learner.opt else float("nan"))

    def totals(self) -> dict[str, tuple[int, Metrics]]:
        """Each split's sample count and sums (loss, metrics) so far, over all ranks."""
        if self._totals is None:
            names = ["loss", *self.metrics]
            local = np.array([[self.counts[split], *(self.sums[split].get(k, 0.0)
                                                     for k in names)]
                              for split in ("train", "test")], dtype=np.float64)
            total = dist.all_reduce(local)  # a no-op in one process
            self._totals = {split: (int(row[0]), dict(zip(names, row[1:].tolist())))
                            for split, row in zip(("train", "test"), total)}
        return self._totals

    def means(self, split: str) -> Metrics:
        """The current pass's averages: loss, metrics, then summaries."""
        count, sums = self.totals()[split]
        if not count:
            raise ValueError(f"Recorder: the {split} loader yielded no batches")
        out = {"loss": sums["loss"] / count}
        out.update({name: fn(out) for name, fn in self.summaries.items()})
        out.update({name: sums[name] / count for name in self.metrics})
        return out

    def record(self, split: str, metrics: Metrics) -> None:
        """Metrics of this epoch's ``split`` measured elsewhere (a custom epoch function)."""
        self.given[split] = dict(metrics)

    def after_epoch(self, learner: Learner) -> None:
        totals = self.totals()
        for split in ("train", "test"):
            if split in self.given or totals[split][0] or split == "train":
                values = self.given.get(split) or self.means(split)
                self.entry.update({f"{split}_{k}": float(v) for k, v in values.items()})
        self.entry.update(lr=self.lr, seconds=time.perf_counter() - self.start)
        self.history.append(self.entry)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history = [dict(e) for e in state["history"]]


class ProgressBar(Callback):
    """A tqdm progress bar for each pass ("train", "eval"), when tqdm is installed."""

    in_lr_find = False

    def __init__(self) -> None:
        self.bar: Any = None
        self.training: bool | None = None

    def before_batch(self, learner: Learner) -> None:
        if self.bar is not None and self.training == learner.training:
            return
        self.close()
        try:
            from tqdm.auto import tqdm
        except ImportError:  # the progress extra is optional
            return
        self.training = learner.training
        self.bar = tqdm(total=learner.n_iter or None, desc="train" if learner.training
                        else "eval", leave=False, dynamic_ncols=True)

    def after_batch(self, learner: Learner) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self, learner: Learner | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.training = None, None

    after_epoch = after_fit = close


class OnEpochEnd(Callback):
    """``fn(entry)`` with each new history entry (after it is checkpointed)."""

    order = -5
    in_lr_find = False

    def __init__(self, fn: Callable[[Metrics], None]):
        self.fn = fn

    def after_epoch(self, learner: Learner) -> None:
        recorder = learner.find(Recorder)
        if recorder is not None and recorder.history:
            self.fn(recorder.history[-1])


# ---------------------------------------------------------------------------- checkpoints
def rng_state() -> dict[str, Any]:
    """numpy's global RNG state as a tree ``save`` can write."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": keys, "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def set_rng_state(state: Mapping[str, Any]) -> None:
    np.random.set_state((state["name"], np.asarray(state["keys"], dtype=np.uint32),
                         state["pos"], state["has_gauss"], state["cached_gaussian"]))


def _stateful(callbacks: Iterable[Any]) -> dict[str, Any]:
    """Callbacks with a ``state_dict``, keyed by class name (``Name_1`` for a second one)."""
    named: dict[str, Any] = {}
    for cb in callbacks:
        if hasattr(cb, "state_dict") and not isinstance(cb, Checkpoint):
            base = type(cb).__name__
            key = base if base not in named else f"{base}_{len(named)}"
            named[key] = cb
    return named


class Checkpoint(Callback):
    """After every epoch, ``path`` holds the model, the optimiser, each stateful callback
    (history, scheduler, early stopping), the epochs done and numpy's RNG state, written
    atomically; ``resume`` (a path) restores all of it before training continues.

    In a data-parallel job rank 0 alone writes (the ranks hold the same state) and every
    rank restores; the RNG state is each rank's own (``rank_rngs``: their dropout streams
    differ), so a resumed job continues bit-identically when it has as many ranks."""

    order = -10
    in_lr_find = False

    def __init__(self, path: str | None = None, resume: str | None = None):
        self.path, self.resume = path, resume
        self.restored_rank_rngs = False

    def before_fit(self, learner: Learner) -> None:
        self.restored_rank_rngs = False
        if self.resume:
            learner.start_epoch = self.load(learner, self.resume)

    def after_epoch(self, learner: Learner) -> None:
        if not self.path:
            return
        rank_rngs = dist.all_gather_object(rng_state()) if dist.world_size() > 1 else None
        if dist.is_main_process():
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self.save(learner, self.path, rank_rngs)

    @staticmethod
    def save(learner: Learner, path: str, rank_rngs: list[Any] | None = None) -> None:
        named = _stateful(learner.callbacks)
        recorder, scheduler = learner.find(Recorder), learner.find(SchedulerStep)
        save({"model": learner.model.state_dict(),
              "optimizer": learner.opt.state_dict() if learner.opt else None,
              "scheduler": scheduler.state_dict() if scheduler else None,
              "history": recorder.history if recorder else [],
              "callbacks": {k: cb.state_dict() for k, cb in named.items()},
              "epoch": learner.epoch + 1, "rng": rng_state(),
              **({"rank_rngs": rank_rngs} if rank_rngs else {})}, path)

    def load(self, learner: Learner, path: str) -> int:
        """Restore ``path`` into the learner and its callbacks; returns the epochs done."""
        state = load(path)
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{path}: not a needle training checkpoint (no 'model' entry)")
        learner.model.load_state_dict(state["model"])
        if learner.opt is not None and state.get("optimizer") is not None:
            learner.opt.load_state_dict(state["optimizer"])
        saved = dict(state.get("callbacks") or {})
        saved.setdefault("Recorder", {"history": state.get("history", [])})
        if state.get("scheduler") is not None:
            saved.setdefault("SchedulerStep", state["scheduler"])
        for key, cb in _stateful(learner.callbacks).items():
            if key in saved:
                cb.load_state_dict(saved[key])
        rank_rngs = list(state.get("rank_rngs") or [])
        self.restored_rank_rngs = len(rank_rngs) == dist.world_size() > 1
        set_rng_state(rank_rngs[dist.rank()] if self.restored_rank_rngs else state["rng"])
        return int(state.get("epoch", len(state.get("history", []))))


# ---------------------------------------------------------------------------- schedules
class SchedulerStep(Callback):
    """``scheduler.step()`` after every epoch (``every="epoch"``) or every optimiser step
    (``every="batch"``, e.g. ``OneCycleLR``)."""

    order = -30
    in_lr_find = False

    def __init__(self, scheduler: optim.LRScheduler, every: str = "epoch"):
        if every not in ("epoch", "batch"):
            raise ValueError(f"SchedulerStep: every must be 'epoch' or 'batch', got {every!r}")
        self.scheduler, self.every = scheduler, every

    def after_step(self, learner: Learner) -> None:
        if self.every == "batch":
            self.scheduler.step()

    def after_epoch(self, learner: Learner) -> None:
        if self.every == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(dict(state))


class ParamScheduler(Callback):
    """Before each training batch, ``opt.<name> = schedule(pos)`` for each entry, where pos
    in [0, 1) is the position in the whole fit (epoch + batch / batches) / epochs."""

    in_lr_find = False

    def __init__(self, schedules: Mapping[str, Schedule]):
        self.schedules = dict(schedules)

    def before_batch(self, learner: Learner) -> None:
        if not learner.training:
            return
        pos = (learner.epoch + learner.iter / max(learner.n_iter, 1)) / learner.epochs
        for name, schedule in self.schedules.items():
            if not hasattr(learner.opt, name):
                raise ValueError(f"ParamScheduler: the optimiser "
                                 f"{type(learner.opt).__name__} has no {name!r}")
            setattr(learner.opt, name, schedule(pos))


# ---------------------------------------------------------------------------- training step
class EarlyStopping(Callback):
    """Stop (``CancelFit``) when ``monitor`` (a history key) has not improved by
    ``min_delta`` for ``patience`` epochs; ``mode`` "min" (losses) or "max" (accuracy)."""

    order = 100
    in_lr_find = False

    def __init__(self, monitor: str = "test_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "min"):
        if mode not in ("min", "max") or patience < 1:
            raise ValueError(f"EarlyStopping needs mode 'min' or 'max' and patience >= 1, "
                             f"got {mode!r} and {patience}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, \
            min_delta, mode
        self.best, self.wait = math.inf if mode == "min" else -math.inf, 0

    def before_fit(self, learner: Learner) -> None:
        if learner.find(Recorder) is None:
            raise ValueError("EarlyStopping needs a Recorder among the callbacks")

    def after_epoch(self, learner: Learner) -> None:
        entry = learner.find(Recorder).history[-1]
        if self.monitor not in entry:
            raise ValueError(f"EarlyStopping: no {self.monitor!r} in the history; it has "
                             f"{sorted(entry)}")
        value = entry[self.monitor]
        better = value < self.best - self.min_delta if self.mode == "min" else \
            value > self.best + self.min_delta
        self.best, self.wait = (value, 0) if better else (self.best, self.wait + 1)
        if self.wait >= self.patience:
            raise CancelFit

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])


class GradientClipping(Callback):
    """Scale the gradients so that their global L2 norm is at most ``max_norm``; with a
    ``DistributedOptimizer``, the gradients averaged over the ranks (``synchronize()``
    first, Horovod's order)."""

    def __init__(self, max_norm: float):
        if not max_norm > 0:
            raise ValueError(f"GradientClipping needs max_norm > 0, got {max_norm}")
        self.max_norm = max_norm

    def after_backward(self, learner: Learner) -> None:
        synchronize = getattr(learner.opt, "synchronize", None)
        if synchronize is not None:
            synchronize()
        optim.clip_grad_norm(learner.model.parameters(), self.max_norm)


class MixUp(Callback):
    """mixup (Zhang et al. 2018): each training batch becomes lam x + (1 - lam) x[perm]
    with lam ~ Beta(alpha, alpha) (the larger of lam, 1 - lam), and the loss
    lam L(pred, y) + (1 - lam) L(pred, y[perm]); evaluation is unchanged."""

    def __init__(self, alpha: float = 0.4):
        if not alpha > 0:
            raise ValueError(f"MixUp needs alpha > 0, got {alpha}")
        self.alpha = alpha
        self.lam: float | None = None

    def before_fit(self, learner: Learner) -> None:
        self.loss_fn, learner.loss_fn = learner.loss_fn, self.loss

    def after_fit(self, learner: Learner) -> None:
        learner.loss_fn = self.loss_fn

    def before_batch(self, learner: Learner) -> None:
        self.lam = None
        if not learner.training:
            return
        lam = float(np.random.beta(self.alpha, self.alpha))
        self.lam = max(lam, 1 - lam)
        perm = np.random.permutation(learner.target.shape[0])
        x = learner.inputs[0]
        learner.inputs = (x * self.lam + x[perm] * (1 - self.lam), *learner.inputs[1:])
        self.other = learner.target[perm]

    def loss(self, preds: Tensor, target: Tensor) -> Tensor:
        if self.lam is None:
            return self.loss_fn(preds, target)
        return self.loss_fn(preds, target) * self.lam + \
            self.loss_fn(preds, self.other) * (1 - self.lam)


def detach_state(h: Any) -> Any:
    """A hidden state (None, a Tensor or a tuple of them) cut off from its graph."""
    if h is None:
        return None
    if isinstance(h, (tuple, list)):
        return tuple(detach_state(x) for x in h)
    return h.detach()


class RecurrentState(Callback):
    """A recurrent model's hidden state carried from each batch to the next in a pass (truncated
    BPTT): the model is called as ``model(x, h)`` with h detached and returns
    ``(logits, h)``; ``learner.preds`` becomes the logits."""

    def __init__(self) -> None:
        self.h: Any = None

    def before_batch(self, learner: Learner) -> None:
        if learner.iter == 0:
            self.h = None
        learner.inputs = (*learner.inputs, detach_state(self.h))

    def after_pred(self, learner: Learner) -> None:
        learner.preds, self.h = learner.preds


# ---------------------------------------------------------------------------- data-parallel
def set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader's sampler (a DistributedSampler) which epoch's order to draw."""
    set_epoch = getattr(getattr(loader, "sampler", None), "set_epoch", None)
    if set_epoch is not None:
        set_epoch(epoch)


class DistributedTrainer(Callback):
    """Data-parallel training (``needle.distributed``; with the optimiser wrapped in
    ``DistributedOptimizer`` and each rank's loaders on its share of the data): before the
    fit (after a resume) rank 0's parameters and buffers go to every rank and each rank gets
    its own RNG stream (dropout; a resume with as many ranks restores each one's); each
    epoch sets the training sampler's epoch; each pass starts from rank 0's buffers
    (BatchNorm's running statistics, as PyTorch's DDP), so all ranks evaluate one model.
    In one process only ``set_epoch`` does anything."""

    order = -9  # after Checkpoint's resume, before the other callbacks' epochs

    def before_fit(self, learner: Learner) -> None:
        dist.broadcast_parameters(learner.model)
        checkpoint = learner.find(Checkpoint)
        if checkpoint is None or not checkpoint.restored_rank_rngs:
            dist.decorrelate_rng()

    def before_epoch(self, learner: Learner) -> None:
        set_sampler_epoch(learner.train_loader, learner.epoch)

    def before_batch(self, learner: Learner) -> None:
        if learner.iter == 0:
            dist.broadcast_buffers(learner.model)


# ---------------------------------------------------------------------------- LR finder
class LRFinder(Callback):
    """The LR range test: the lr grows exponentially from ``start`` to ``end`` over
    ``steps`` training batches; stops early when the smoothed loss exceeds 4x its best.

    ``suggestion`` is the lr of the lowest smoothed loss divided by 10 (fast.ai's rule);
    ``steepest`` the lr where the smoothed loss falls fastest."""

    order = 50

    def __init__(self, start: float = 1e-7, end: float = 10.0, steps: int = 100,
                 beta: float = 0.98):
        if not 0 < start < end or steps < 2:
            raise ValueError(f"lr_find needs 0 < start < end and steps >= 2, got start "
                             f"{start}, end {end}, steps {steps}")
        self.start, self.end, self.steps, self.beta = start, end, steps, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []

    def epochs_for(self, loader: Any) -> int:
        """Epochs of ``loader`` that hold ``steps`` batches."""
        return -(-self.steps // max(len(loader), 1))

    def before_fit(self, learner: Learner) -> None:
        self.lrs, self.losses, self.smoothed, self.best, self.average = [], [], [], math.inf, 0.0

    def before_batch(self, learner: Learner) -> None:
        lr = self.start * (self.end / self.start) ** (len(self.lrs) / (self.steps - 1))
        setattr(learner.opt, "lr", lr)
        self.lrs.append(lr)

    def after_batch(self, learner: Learner) -> None:
        loss = float(learner.loss.numpy())
        self.average = self.beta * self.average + (1 - self.beta) * loss
        smooth = self.average / (1 - self.beta ** (len(self.losses) + 1))
        self.losses.append(loss)
        self.smoothed.append(smooth)
        if not math.isfinite(smooth) or smooth > 4 * self.best or len(self.lrs) >= self.steps:
            raise CancelFit
        self.best = min(self.best, smooth)

    @property
    def suggestion(self) -> float:
        if not self.smoothed:
            raise ValueError("lr_find recorded no batches")
        return self.lrs[int(np.nanargmin(self.smoothed))] / 10

    @property
    def steepest(self) -> float:
        slopes = np.gradient(np.asarray(self.smoothed), np.log(self.lrs))
        return self.lrs[int(np.nanargmin(slopes))]

    def plot(self, path: str) -> None:
        """Loss against learning rate (log scale), the suggestion marked, as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(self.lrs, self.losses, alpha=0.3, label="loss")
        ax.plot(self.lrs, self.smoothed, label="smoothed")
        ax.axvline(self.suggestion, color="k", ls="--",
                   label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
