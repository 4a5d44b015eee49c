"""Hyper-parameter schedules over training: functions of the position ``pos`` in [0, 1].

fast.ai's annealers (``sched_lin``, ``sched_cos``, ``sched_exp``, ``sched_no``) and
``combine_scheds``, which strings them into phases; ``callbacks.ParamScheduler`` sets an
optimiser attribute from one at every batch. ``OneCycleLR`` is PyTorch's one-cycle policy as
an ``optim.LRScheduler`` stepped once per batch (it also cycles SGD's ``momentum`` or
Adam's ``beta1`` inversely, as PyTorch does).

>>> f = combine_scheds([0.3, 0.7], [sched_cos(0.1, 1.0), sched_cos(1.0, 0.0)])
>>> round(f(0.0), 3), round(f(0.3), 3), round(f(1.0), 3)
(0.1, 1.0, 0.0)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .optim import LRScheduler, Optimizer

Schedule = Callable[[float], float]


def sched_lin(start: float, end: float) -> Schedule:
    """start + pos (end - start)."""
    return lambda pos: start + pos * (end - start)


def sched_cos(start: float, end: float) -> Schedule:
    """start + (1 - cos(pi pos)) (end - start) / 2: flat at both ends."""
    return lambda pos: start + (1 - math.cos(math.pi * pos)) * (end - start) / 2


def sched_exp(start: float, end: float) -> Schedule:
    """start (end / start)^pos: equal ratios in equal steps (start, end > 0)."""
    if start <= 0 or end <= 0:
        raise ValueError(f"sched_exp needs start and end > 0, got {start} and {end}")
    return lambda pos: start * (end / start) ** pos


def sched_no(start: float, end: float) -> Schedule:
    """start, whatever the position."""
    return lambda pos: start


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Schedule]) -> Schedule:
    """Phase i runs ``scheds[i]`` over a fraction ``pcts[i]`` of training (each from its own
    pos 0 to 1); the fractions must be positive and sum to 1."""
    if len(pcts) != len(scheds) or not pcts:
        raise ValueError(f"combine_scheds needs one percentage per schedule, got {len(pcts)} "
                         f"percentages and {len(scheds)} schedules")
    if any(p <= 0 for p in pcts) or not math.isclose(sum(pcts), 1.0, abs_tol=1e-9):
        raise ValueError(f"combine_scheds: the percentages must be positive and sum to 1, "
                         f"got {list(pcts)} (sum {sum(pcts):g})")
    bounds = [0.0]
    for p in pcts:
        bounds.append(bounds[-1] + p)

    def combined(pos: float) -> float:
        i = next((i for i in range(len(pcts)) if pos < bounds[i + 1]), len(pcts) - 1)
        return scheds[i]((pos - bounds[i]) / pcts[i])
    return combined


ANNEALERS: dict[str, Callable[[float, float], Schedule]] = {"cos": sched_cos,
                                                            "linear": sched_lin}


class OneCycleLR(LRScheduler):
    """PyTorch's OneCycleLR (two phases), stepped once per batch: the lr rises from
    max_lr / div_factor to max_lr over ``pct_start`` of ``total_steps``, then falls to
    max_lr / (div_factor final_div_factor); momentum (SGD) or beta1 (Adam) moves the other
    way between ``max_momentum`` and ``base_momentum`` when ``cycle_momentum``."""

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95):
        if total_steps is None:
            if not epochs or not steps_per_epoch:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 1 or not 0 < pct_start < 1 or max_lr <= 0:
            raise ValueError(f"OneCycleLR needs total_steps > 1, 0 < pct_start < 1 and "
                             f"max_lr > 0, got {total_steps}, {pct_start} and {max_lr}")
        if anneal_strategy not in ANNEALERS:
            raise ValueError(f"OneCycleLR: anneal_strategy must be one of {sorted(ANNEALERS)},"
                             f" got {anneal_strategy!r}")
        self.total_steps, self.anneal = total_steps, ANNEALERS[anneal_strategy]
        initial = max_lr / div_factor
        self.phases = [(pct_start * total_steps - 1, initial, max_lr),
                       (total_steps - 1, max_lr, initial / final_div_factor)]
        self.momentum_name = next((n for n in ("momentum", "beta1") if cycle_momentum
                                   and hasattr(optimizer, n)), None)
        self.momenta = (max_momentum, base_momentum)
        optimizer.lr = max_lr
        super().__init__(optimizer)

    def _position(self, step: int) -> tuple[int, float]:
        """The phase of batch ``step`` and the position within it."""
        start = 0.0
        for i, (end, _, _) in enumerate(self.phases):
            if step <= end or i == len(self.phases) - 1:
                return i, (step - start) / (end - start)
            start = end
        raise AssertionError("unreachable")

    def lr_at(self, epoch: int) -> float:
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {epoch} times, but total_steps is "
                             f"{self.total_steps}")
        phase, pos = self._position(epoch)
        _, start, end = self.phases[phase]
        if self.momentum_name:
            high, low = self.momenta
            moment = (high, low) if phase == 0 else (low, high)
            setattr(self.optimizer, self.momentum_name, self.anneal(*moment)(pos))
        return self.anneal(start, end)(pos)

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}
