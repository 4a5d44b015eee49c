"""cs231n's ``Solver``: trains a classification model with a first-order update rule.

    model = needle.models.TwoLayerNet(input_dim=784, hidden_dim=100)
    solver = needle.Solver(model, data, update_rule="adam", optim_config={"learning_rate":
                           1e-3}, lr_decay=0.95, num_epochs=10, batch_size=100)
    solver.train()   # then solver.loss_history, .train_acc_history, .val_acc_history

``data`` holds ``X_train, y_train, X_val, y_val``. The model exposes ``params`` (a dict of
numpy arrays) and ``loss(X, y=None)``: scores (N, C) without ``y``, else ``(loss, grads)``
with ``grads`` shaped like ``params`` (``needle.models.FullyConnectedNet`` computes them with
needle's autograd). After ``train()`` the model holds ``best_params``, the parameters of the
epoch with the best validation accuracy. The update rules are cs231n's functions
``rule(w, dw, config) -> (next_w, config)`` below (``UPDATE_RULES``); a callable works too.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import numpy as np

from .serialization import save

Config = dict[str, Any]
UpdateRule = Callable[[np.ndarray, np.ndarray, Config | None], tuple[np.ndarray, Config]]


# ---------------------------------------------------------------------------- update rules
def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None
        ) -> tuple[np.ndarray, Config]:
    """w - learning_rate * dw (learning_rate 1e-2)."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config | None = None
                 ) -> tuple[np.ndarray, Config]:
    """v = momentum * v - learning_rate * dw; w + v (learning_rate 1e-2, momentum 0.9).
    (needle's ``optim.SGD`` damps its buffer by 1 - momentum instead.)"""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config | None = None
            ) -> tuple[np.ndarray, Config]:
    """cache = decay * cache + (1 - decay) dw²; w - learning_rate dw / (sqrt(cache) + eps)
    (learning_rate 1e-2, decay_rate 0.99, epsilon 1e-8)."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("cache", np.zeros_like(w))
    decay = config["decay_rate"]
    config["cache"] = decay * config["cache"] + (1 - decay) * dw * dw
    next_w = w - config["learning_rate"] * dw / (np.sqrt(config["cache"]) + config["epsilon"])
    return next_w, config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None
         ) -> tuple[np.ndarray, Config]:
    """t += 1; m, v moving averages of dw and dw² (beta1 0.9, beta2 0.999), bias-corrected;
    w - learning_rate m̂ / (sqrt(v̂) + epsilon) (learning_rate 1e-3, epsilon 1e-8)."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    beta1, beta2 = config["beta1"], config["beta2"]
    config["t"] += 1
    config["m"] = beta1 * config["m"] + (1 - beta1) * dw
    config["v"] = beta2 * config["v"] + (1 - beta2) * dw * dw
    m_hat = config["m"] / (1 - beta1 ** config["t"])
    v_hat = config["v"] / (1 - beta2 ** config["t"])
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config


UPDATE_RULES: dict[str, UpdateRule] = {"sgd": sgd, "sgd_momentum": sgd_momentum,
                                       "rmsprop": rmsprop, "adam": adam}


def get_update_rule(rule: str | UpdateRule) -> UpdateRule:
    """A rule by name (or the callable itself); an unknown name lists the rules."""
    if callable(rule):
        return rule
    if rule not in UPDATE_RULES:
        raise ValueError(f"invalid update_rule {rule!r}; the update rules are: "
                         f"{', '.join(UPDATE_RULES)} (or a function (w, dw, config) -> "
                         f"(next_w, config))")
    return UPDATE_RULES[rule]


# ---------------------------------------------------------------------------- Solver
class Solver:
    """Mini-batch training of ``model`` on ``data`` with cs231n's options and defaults:
    update_rule "sgd", optim_config {}, lr_decay 1.0 (multiplies every rule's learning_rate
    after each epoch), batch_size 100, num_epochs 10, num_train_samples 1000 and
    num_val_samples None (the samples each accuracy check uses; None is all),
    checkpoint_name None, print_every 10 (iterations), verbose True."""

    DEFAULTS: dict[str, Any] = {
        "update_rule": "sgd", "optim_config": {}, "lr_decay": 1.0, "batch_size": 100,
        "num_epochs": 10, "num_train_samples": 1000, "num_val_samples": None,
        "checkpoint_name": None, "print_every": 10, "verbose": True}

    def __init__(self, model: Any, data: dict[str, np.ndarray], **kwargs: Any):
        unknown = sorted(set(kwargs) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"Unrecognized arguments {', '.join(unknown)}; Solver takes "
                             f"{', '.join(self.DEFAULTS)}")
        missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
        if missing:
            raise ValueError(f"data needs X_train, y_train, X_val, y_val; missing "
                             f"{', '.join(missing)}")
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        options = {**self.DEFAULTS, **kwargs}
        self.update_rule = get_update_rule(options.pop("update_rule"))
        self.optim_config: Config = dict(options.pop("optim_config"))
        self.lr_decay: float = options["lr_decay"]
        self.batch_size: int = options["batch_size"]
        self.num_epochs: int = options["num_epochs"]
        self.num_train_samples: int | None = options["num_train_samples"]
        self.num_val_samples: int | None = options["num_val_samples"]
        self.checkpoint_name: str | None = options["checkpoint_name"]
        self.print_every: int = options["print_every"]
        self.verbose: bool = options["verbose"]
        self._reset()

    def _reset(self) -> None:
        """Fresh histories, best values and one copy of optim_config per parameter."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.optim_configs = {name: dict(self.optim_config) for name in self.model.params}

    def _step(self) -> None:
        """One update on a random minibatch (drawn with replacement, as cs231n does)."""
        batch = np.random.choice(len(self.X_train), self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch], self.y_train[batch])
        self.loss_history.append(float(loss))
        for name, w in self.model.params.items():
            next_w, config = self.update_rule(w, grads[name], self.optim_configs[name])
            self.model.params[name] = next_w
            self.optim_configs[name] = config

    def _save_checkpoint(self) -> None:
        """``NAME_epoch_E.safetensors`` (the parameters) and ``.json`` (the rest): no pickle,
        so loading a checkpoint never runs code."""
        if self.checkpoint_name is None:
            return
        stem = f"{self.checkpoint_name}_epoch_{self.epoch}"
        save({k: np.asarray(v) for k, v in self.model.params.items()}, stem + ".safetensors")
        state = {"epoch": self.epoch, "lr_decay": self.lr_decay, "batch_size": self.batch_size,
                 "num_train_samples": self.num_train_samples,
                 "num_val_samples": self.num_val_samples,
                 "loss_history": self.loss_history, "train_acc_history": self.train_acc_history,
                 "val_acc_history": self.val_acc_history}
        with open(stem + ".json", "w") as f:
            json.dump(state, f)
        if self.verbose:
            print(f'Saving checkpoint to "{os.path.basename(stem)}.safetensors"')

    def check_accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None,
                       batch_size: int = 100) -> float:
        """Accuracy of the model on (a random ``num_samples`` subset of) X, y, scored in
        batches of ``batch_size``."""
        if num_samples is not None and len(X) > num_samples:
            subset = np.random.choice(len(X), num_samples)
            X, y = X[subset], y[subset]
        predictions = [np.argmax(self.model.loss(X[start:start + batch_size]), axis=1)
                       for start in range(0, len(X), batch_size)]
        return float(np.mean(np.concatenate(predictions) == y))

    def train(self) -> None:
        """num_epochs epochs of len(X_train) / batch_size steps; accuracies checked at the
        start, after each epoch and at the end; the model ends with ``best_params``."""
        iterations_per_epoch = max(len(self.X_train) // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        for t in range(num_iterations):
            self._step()
            if self.verbose and t % self.print_every == 0:
                print(f"(Iteration {t + 1} / {num_iterations}) loss: "
                      f"{self.loss_history[-1]:f}")
            epoch_end = (t + 1) % iterations_per_epoch == 0
            if epoch_end:
                self.epoch += 1
                for config in self.optim_configs.values():
                    config["learning_rate"] = config.get("learning_rate", 1e-2) * self.lr_decay
            if t == 0 or t == num_iterations - 1 or epoch_end:
                self._record_accuracies(num_iterations)
        self.model.params = {k: v.copy() for k, v in self.best_params.items()}

    def _record_accuracies(self, num_iterations: int) -> None:
        train_acc = self.check_accuracy(self.X_train, self.y_train,
                                        num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self._save_checkpoint()
        if self.verbose:
            print(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:f}; "
                  f"val_acc: {val_acc:f}")
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
