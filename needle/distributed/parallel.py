"""Data parallelism, Horovod's design: the same model on every rank, each rank on its own
share of the global batch, gradients averaged by all-reduce before every update.

- ``broadcast_parameters(model)`` copies rank 0's parameters and buffers (BatchNorm's running
  statistics) to every rank, so the ranks start equal.
- ``DistributedOptimizer(opt)`` wraps any needle optimiser: its ``step()`` averages the
  gradients over the ranks, then runs ``opt.step()``, so the ranks stay equal.

With equal local batches, the mean of the ranks' mean-loss gradients is the gradient of the
mean loss over the global batch: 2 ranks x 64 samples step like 1 process x 128.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import NDArray
from . import comm

if TYPE_CHECKING:  # nn imports this package (SyncBatchNorm): no runtime import back
    from ..nn import Module

Layout = list[tuple[str, tuple[int, ...], str]]  # (name, shape, dtype) of each tensor


def check_same_layout(layout: Layout, what: str) -> None:
    """Raise the same clear error on every rank unless all ranks hold the same tensors
    (names, shapes, dtypes), which every collective over them assumes."""
    layouts = comm.all_gather_object(layout)
    for other, theirs in enumerate(layouts):
        if theirs == layouts[0]:
            continue
        if len(theirs) != len(layouts[0]):
            raise ValueError(f"{what}: rank {other} has {len(theirs)} tensors, rank 0 has "
                             f"{len(layouts[0])}; every rank must build the same model")
        mine, its = next((a, b) for a, b in zip(layouts[0], theirs) if a != b)
        raise ValueError(f"{what}: rank {other} has {its[0]} of shape {its[1]} ({its[2]}), "
                         f"rank 0 has {mine[0]} of shape {mine[1]} ({mine[2]}); every rank "
                         "must build the same model")


def broadcast_parameters(model: Module, root: int = 0) -> None:
    """Copy rank ``root``'s parameters and buffers into every rank's ``model``, in place."""
    _broadcast_tensors(list(model.named_tensors()), root, "broadcast_parameters")


def broadcast_buffers(model: Module, root: int = 0) -> None:
    """Copy rank ``root``'s buffers (tensors that are not Parameters, e.g. BatchNorm's
    running statistics, which plain BatchNorm updates from each rank's own batches) into
    every rank's ``model``, as PyTorch's DDP does before its forward passes."""
    if comm.world_size() == 1:
        return
    params = {id(p) for p in model.parameters()}
    buffers = [(name, t) for name, t in model.named_tensors() if id(t) not in params]
    _broadcast_tensors(buffers, root, "broadcast_buffers")


def _broadcast_tensors(tensors: list[tuple[str, Tensor]], root: int, what: str) -> None:
    if comm.world_size() == 1:
        return
    check_same_layout([(name, t.shape, str(t.dtype)) for name, t in tensors], what)
    for _, tensor in tensors:
        comm.broadcast(tensor, root)


def decorrelate_rng() -> None:
    """Give each rank its own stream of numpy's global RNG (dropout masks, augmentations):
    rank 0 keeps the stream it has, as one process would; rank r > 0 reseeds from a draw
    of it plus r. Call it with the same RNG state on every rank (after seeding, resuming)."""
    if comm.rank() > 0:
        np.random.seed((int(np.random.randint(2**31)) + comm.rank()) % 2**32)


def parameters_of(optimizer: Any) -> list[Tensor]:
    """The optimiser's parameters in its own order: ``param_groups`` when it has them,
    else ``params``; each once."""
    groups = getattr(optimizer, "param_groups", None)
    params = [p for g in groups for p in g["params"]] if groups else list(optimizer.params)
    return list({id(p): p for p in params}.values())


class _GradBuffer:
    """The gradients of parameters of one device and dtype, packed into one flat array:
    each parameter's slot in order, then one count per parameter (1 when this rank has
    its gradient), so one all-reduce sums both."""

    def __init__(self, params: Sequence[Tensor]):
        self.params = list(params)
        self.device = params[0].device
        sizes = [p.size for p in params]
        self.offsets = np.cumsum([0] + sizes).tolist()
        self.total = self.offsets[-1]
        self.flat = self.device.empty((self.total + len(params),), dtype=params[0].dtype)
        self.views = [NDArray.make(p.shape, device=self.device, handle=self.flat._array,
                                   offset=offset) for p, offset in zip(params, self.offsets)]

    def pack(self) -> None:
        """This rank's gradients into the buffer; zeros (and count 0) where there is none."""
        counts = self.flat._array[self.total:]
        for i, (p, view) in enumerate(zip(self.params, self.views)):
            if p.grad is None:
                view.fill(0)
                counts[i] = 0
            else:
                view._array[...] = p.grad.realize_cached_data()._array
                counts[i] = 1

    def unpack(self, world: int) -> None:
        """Average the summed gradients over ``world`` ranks and hand them to the
        parameters; a parameter no rank had a gradient for keeps None."""
        self.flat._array[:self.total] *= 1 / world
        counts = self.flat.numpy()[self.total:]
        for p, view, count in zip(self.params, self.views, counts):
            p.grad = Tensor.make_const(view) if count > 0 else None


OWN_ATTRIBUTES = ("optimizer", "comm_seconds", "_buffers", "_synchronized")


class DistributedOptimizer:
    """``optimizer`` whose ``step()`` first averages every parameter's gradient over the
    ranks: one all-reduce per (device, dtype) group of a flat gradient buffer, groups in
    the parameters' order (the same on every rank), then ``optimizer.step()``.

    A parameter without a gradient on some ranks is averaged with zeros there (Horovod's
    and DDP's rule); one that no rank has a gradient for stays None and the optimiser skips
    it. ``synchronize()`` averages early (e.g. to clip the averaged gradients; the next
    ``step()`` then does not average again). Everything else (``lr``, ``state_dict()``,
    ``load_state_dict()``, ``reset_grad()``, ...) is the wrapped optimiser's.
    ``comm_seconds`` adds up the time spent in all-reduce, waiting for the other ranks
    included. At world size 1, ``step()`` is ``optimizer.step()``."""

    def __init__(self, optimizer: Any):
        self.optimizer = optimizer
        self.comm_seconds = 0.0
        self._buffers: list[_GradBuffer] | None = None
        self._synchronized = False

    def _build_buffers(self) -> list[_GradBuffer]:
        params = parameters_of(self.optimizer)
        check_same_layout([(f"parameter {i}", p.shape, f"{p.dtype}, {p.device}")
                           for i, p in enumerate(params)], "DistributedOptimizer")
        groups: dict[tuple[str, str], list[Tensor]] = {}
        for p in params:
            groups.setdefault((p.device.name, str(p.dtype)), []).append(p)
        return [_GradBuffer(ps) for ps in groups.values()]

    def synchronize(self) -> None:
        """Replace each gradient by its mean over the ranks (once until the next step)."""
        world = comm.world_size()
        if world == 1 or self._synchronized:
            return
        if self._buffers is None:
            self._buffers = self._build_buffers()
        for buffer in self._buffers:
            buffer.pack()
            start = time.perf_counter()
            comm.all_reduce(buffer.flat)
            self.comm_seconds += time.perf_counter() - start
            buffer.unpack(world)
        self._synchronized = True

    def step(self) -> None:
        self.synchronize()
        self.optimizer.step()
        self._synchronized = False

    def clip_grad_norm(self, max_norm: float = 0.25) -> Any:
        """Clip the averaged gradients (the same on every rank)."""
        self.synchronize()
        return self.optimizer.clip_grad_norm(max_norm)

    def state_dict(self) -> Any:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: Any) -> None:
        self.optimizer.load_state_dict(state)

    def reset_grad(self) -> None:
        self.optimizer.reset_grad()

    @property
    def params(self) -> list[Tensor]:
        return parameters_of(self.optimizer)

    @property
    def lr(self) -> float:
        return float(self.optimizer.lr)

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    def __getattr__(self, name: str) -> Any:  # the rest of the wrapped optimiser's surface
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Hyper-parameters (``momentum``, ... set by a schedule) go to the wrapped one."""
        if name in OWN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)
