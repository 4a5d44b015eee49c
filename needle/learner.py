"""One training loop for every task, with the features plugged in as callbacks.

``Learner(model, train_loader, loss_fn, opt).fit(epochs)`` runs, for each epoch, a training
pass over ``train_loader`` (a step per batch) and, when there is a ``test_loader``, an
evaluation pass (``model.eval()``, no graph). It fires named events; a callback is any
object with methods of those names, each called with the learner:

    before_fit
      before_epoch
        before_batch  after_pred  after_loss  [after_backward  after_step]  after_batch
        ... every batch of the training pass, then of the test pass (learner.training)
      after_epoch
    after_fit

A callback may raise ``CancelBatch`` (skip the rest of this batch), ``CancelEpoch`` (the
rest of this epoch) or ``CancelFit`` (stop training); the matching ``after_*`` event still
fires. Callbacks run in ascending ``order``. A batch is ``(*inputs, target)``:
``learner.inputs`` and ``learner.target`` may be replaced in ``before_batch`` (MixUp) and
``learner.preds`` in ``after_pred`` (a recurrent model's hidden state). What the loop holds
(``model, opt, loss_fn, epoch, epochs, iter, n_iter, training, preds, loss``) is public.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any, Callable, Iterable, Sequence, Sized

import numpy as np

from . import nn
from .autograd import Tensor, no_grad
from .optim import Optimizer

EVENTS = ("before_fit", "before_epoch", "before_batch", "after_pred", "after_loss",
          "after_backward", "after_step", "after_batch", "after_epoch", "after_fit")


class CancelBatch(Exception):
    """Raised by a callback: skip the rest of this batch."""


class CancelEpoch(Exception):
    """Raised by a callback: skip the rest of this epoch."""


class CancelFit(Exception):
    """Raised by a callback: stop training."""


class Callback:
    """Base class for callbacks (optional: any object with event methods works).

    ``order``: callbacks run in ascending order. ``in_lr_find``: whether ``lr_find`` keeps
    this callback (those that change the step do; recorders and savers do not)."""

    order = 0
    in_lr_find = True


def _check_events(callback: Any) -> None:
    """Every ``before_*`` / ``after_*`` method of ``callback`` names a known event."""
    for name in dir(callback):
        if name.startswith(("before_", "after_")) and name not in EVENTS:
            close = difflib.get_close_matches(name, EVENTS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{type(callback).__name__}.{name}: unknown callback event"
                             f"{hint}; the events are {', '.join(EVENTS)}")


class Learner:
    """A model, its data, loss and optimiser, and the callbacks that train it."""

    def __init__(self, model: nn.Module, train_loader: Iterable[Any],
                 loss_fn: Callable[[Any, Tensor], Tensor] | None = None,
                 opt: Optimizer | None = None, *, test_loader: Iterable[Any] | None = None,
                 callbacks: Sequence[Any] = ()):
        self.model, self.train_loader, self.test_loader = model, train_loader, test_loader
        self.loss_fn = loss_fn or nn.SoftmaxLoss()
        self.opt = opt
        self.callbacks: list[Any] = []
        self.epoch, self.epochs, self.start_epoch, self.iter, self.n_iter = 0, 0, 0, 0, 0
        self.training = False
        self.inputs: tuple[Any, ...] = ()
        self.target: Any = None
        self.preds: Any = None
        self.loss: Any = None
        self._handlers: dict[str, list[Callable[[Learner], None]]] = {}
        for callback in callbacks:
            _check_events(callback)
            self.callbacks.append(callback)
        self._index()

    # ------------------------------------------------------------------ callbacks
    def add_callback(self, callback: Any) -> Learner:
        _check_events(callback)
        self.callbacks.append(callback)
        self._index()
        return self

    def remove_callback(self, callback: Any) -> Learner:
        self.callbacks.remove(callback)
        self._index()
        return self

    def _index(self) -> None:
        """Each event's handlers in callback order, looked up once (not at every batch)."""
        self.callbacks.sort(key=lambda cb: getattr(cb, "order", 0))
        self._handlers = {e: [getattr(cb, e) for cb in self.callbacks if hasattr(cb, e)]
                          for e in EVENTS}

    def callback(self, event: str) -> None:
        """Fire ``event``: call each callback's method of that name with this learner."""
        handlers = self._handlers.get(event)
        if handlers is None:
            raise ValueError(f"unknown callback event {event!r}; the events are "
                             f"{', '.join(EVENTS)}")
        for handler in handlers:
            handler(self)

    def find(self, kind: type) -> Any:
        """The first callback that is an instance of ``kind``, or None."""
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    # ------------------------------------------------------------------ the loop
    def fit(self, epochs: int) -> Learner:
        """Train until ``epochs`` epochs in all (a resumed run counts the ones it has)."""
        if self.opt is None:
            raise ValueError("Learner.fit needs an optimiser (opt=...)")
        self.epochs, self.start_epoch = epochs, 0
        try:
            self.callback("before_fit")
            for self.epoch in range(self.start_epoch, epochs):
                self._run_epoch()
        except CancelFit:
            pass
        self.callback("after_fit")
        return self

    def _run_epoch(self) -> None:
        try:
            self.callback("before_epoch")
            self.run_pass(training=True)
            if self.test_loader is not None:
                self.run_pass(training=False)
        except CancelEpoch:
            pass
        self.callback("after_epoch")

    def run_pass(self, training: bool) -> None:
        """Every batch of the training loader (a step each) or of the test loader."""
        loader = self.train_loader if training else self.test_loader
        if loader is None:
            raise ValueError("Learner: no test_loader to evaluate on")
        self.training = training
        self.model.train(training)
        self.n_iter = len(loader) if isinstance(loader, Sized) else 0
        if training:
            for self.iter, batch in enumerate(loader):
                self.run_batch(batch)
            return
        with no_grad():
            for self.iter, batch in enumerate(loader):
                self.run_batch(batch)

    def run_batch(self, batch: Sequence[Any]) -> None:
        """One batch ``(*inputs, target)``: predict and score, and in training a step."""
        self.inputs, self.target = tuple(batch[:-1]), batch[-1]
        self.preds = self.loss = None
        try:
            self.callback("before_batch")
            self.preds = self.model(*self.inputs)
            self.callback("after_pred")
            self.loss = self.loss_fn(self.preds, self.target)
            self.callback("after_loss")
            if self.training:
                self._step()
        except CancelBatch:
            pass
        self.callback("after_batch")

    def _step(self) -> None:
        assert self.opt is not None
        self.opt.reset_grad()
        self.loss.backward()
        self.callback("after_backward")
        self.opt.step()
        self.callback("after_step")

    # ------------------------------------------------------------------ the LR finder
    def lr_find(self, start: float = 1e-7, end: float = 10.0, steps: int = 100) -> Any:
        """An exponential learning-rate sweep from ``start`` to ``end`` over at most
        ``steps`` batches, stopped when the loss exceeds 4x its best; the model, optimiser
        and numpy's RNG are restored afterwards. Returns an ``LRFinder`` (``lrs``,
        ``losses``, ``suggestion``, ``plot(path)``)."""
        from .callbacks import LRFinder

        if self.opt is None:
            raise ValueError("Learner.lr_find needs an optimiser (opt=...)")
        finder = LRFinder(start, end, steps)
        model_state, opt_state = self.model.state_dict(), copy.deepcopy(self.opt.state_dict())
        lr, rng = self.opt.lr, np.random.get_state()
        callbacks, test_loader = self.callbacks, self.test_loader
        self.callbacks = [cb for cb in callbacks if getattr(cb, "in_lr_find", True)] + [finder]
        self._index()
        self.test_loader = None
        try:
            self.fit(finder.epochs_for(self.train_loader))
        finally:
            self.callbacks, self.test_loader = callbacks, test_loader
            self._index()
            self.model.load_state_dict(model_state)
            self.opt.load_state_dict(opt_state)
            self.opt.lr = lr
            np.random.set_state(rng)
        return finder
