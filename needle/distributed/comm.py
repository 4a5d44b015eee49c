"""Collectives over MPI (mpi4py): the processes of one job exchange arrays in place.

Started under an MPI launcher (``mpiexec -n 4 python train.py``), each process is one rank
of the job. Started plainly, the job is this one process: ``world_size() == 1``, ``rank() ==
0``, every collective returns at once and MPI is never loaded, so single-process code needs
no branch (and mpi4py is only needed under a launcher).

Arrays travel through MPI's buffer interface (mpi4py's upper-case calls on numpy buffers),
never pickled. A compact CPU array is reduced in its own memory; a non-compact one or a GPU
array goes through a compact host copy that is written back (the mpich wheel is not
CUDA-aware). ``x`` may be a Tensor (its data is changed, not its graph), an NDArray or a
numpy array.

Under a launcher, ``init()`` also makes an uncaught exception on any rank abort the whole
job (``MPI_Abort``) after printing that rank's traceback: without it the other ranks would
wait forever in their next collective.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from typing import Any, Iterator, TypeVar

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import NDArray

Array = TypeVar("Array", Tensor, NDArray, np.ndarray)

# environment variables that MPI launchers set in the processes they start
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE")
REDUCE_OPS = ("sum", "mean")
# MPI_Abort tears the job down at once: the launcher (hydra) can drop what a rank wrote just
# before, still in the pipe it forwards from, and the job then ends with no message (seen in
# CI: exit status 2, empty stderr). The aborting rank waits this long for it to be forwarded.
ABORT_GRACE_S = 0.5

_comm: Any = None  # mpi4py's COMM_WORLD under a launcher, else None
_initialized = False


def under_launcher() -> bool:
    """True when an MPI launcher (mpiexec, srun) started this process."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def init() -> None:
    """Join the job: MPI under a launcher, else a world of one. Safe to call again."""
    global _comm, _initialized
    if _initialized:
        return
    if under_launcher():
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError("this process was started by an MPI launcher, but mpi4py is "
                               "not installed: pip install 'needle[distributed]'") from e
        _comm = MPI.COMM_WORLD
        if _comm.Get_size() > 1:
            sys.excepthook = _abort_on_uncaught
    _initialized = True


def is_initialized() -> bool:
    return _initialized


def rank() -> int:
    """This process's rank in 0 .. world_size() - 1 (0 without a launcher)."""
    init()
    return 0 if _comm is None else int(_comm.Get_rank())


def world_size() -> int:
    """The number of processes in the job (1 without a launcher)."""
    init()
    return 1 if _comm is None else int(_comm.Get_size())


def is_main_process() -> bool:
    """True on rank 0, the one that prints and writes files."""
    return rank() == 0


# ---------------------------------------------------------------------------- buffers
def _raw(x: Tensor | NDArray | np.ndarray) -> Any:
    """The device array (numpy or CuPy) holding x's values."""
    if isinstance(x, Tensor):
        x = x.realize_cached_data()
    if isinstance(x, NDArray):
        return x._array
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"collectives take a Tensor, an NDArray or a numpy array, got "
                    f"{type(x).__name__}")


def _host(raw: Any) -> tuple[np.ndarray, bool]:
    """A compact numpy array with raw's values, and whether it is raw's own memory."""
    if isinstance(raw, np.ndarray) and raw.flags.c_contiguous and raw.flags.writeable:
        return raw, True
    return np.ascontiguousarray(raw.get() if hasattr(raw, "get") else raw), False


@contextlib.contextmanager
def _in_place(x: Tensor | NDArray | np.ndarray) -> Iterator[np.ndarray]:
    """A compact host buffer of x's values; what the block leaves in it becomes x's."""
    raw = _raw(x)
    host, own = _host(raw)
    yield host
    if isinstance(raw, np.ndarray):
        if not own:
            raw[...] = host
    else:  # a GPU array takes the host copy through its device's module
        assert isinstance(x, (Tensor, NDArray))
        raw[...] = x.device.from_numpy(host)


# ---------------------------------------------------------------------------- collectives
def all_reduce(x: Array, op: str = "sum") -> Array:
    """x <- the elementwise sum (or mean) of x over all ranks, in place; returns x."""
    if op not in REDUCE_OPS:
        raise ValueError(f"all_reduce: op must be one of {REDUCE_OPS}, got {op!r}")
    dtype = _raw(x).dtype  # checks x's kind at any world size
    if op == "mean" and not np.issubdtype(dtype, np.floating):
        raise TypeError(f"all_reduce(op='mean') needs a floating array, got {dtype}")
    if world_size() == 1:
        return x
    from mpi4py import MPI

    with _in_place(x) as buffer:
        _comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        if op == "mean":
            buffer *= 1 / world_size()
    return x


def broadcast(x: Array, root: int = 0) -> Array:
    """x <- rank ``root``'s x on every rank, in place; returns x."""
    _check_root(root)
    _raw(x)
    if world_size() > 1:
        with _in_place(x) as buffer:
            _comm.Bcast(buffer, root=root)
    return x


def all_gather(x: Array) -> Array:
    """Every rank's x stacked along a new first axis: shape (world_size, *x.shape), in rank
    order, of x's kind (a Tensor without a graph, an NDArray or a numpy array)."""
    raw = _raw(x)
    shapes = all_gather_object((tuple(raw.shape), str(raw.dtype)))
    if len(set(shapes)) > 1:
        raise ValueError(f"all_gather: every rank must send the same shape and dtype, got "
                         f"{dict(enumerate(shapes))} by rank")
    host: np.ndarray = _host(raw)[0]
    out = np.empty((world_size(), *host.shape), dtype=host.dtype)
    if world_size() == 1:
        out[0] = host
    else:
        _comm.Allgather(host, out)
    return _like(x, out)


def _like(x: Array, host: np.ndarray) -> Any:
    """``host`` as an array of x's kind and device."""
    if isinstance(x, np.ndarray):
        return host
    device = x.device
    ndarray = NDArray(host, device=device, dtype=host.dtype)
    return Tensor.make_const(ndarray) if isinstance(x, Tensor) else ndarray


def barrier() -> None:
    """Wait until every rank has reached this call."""
    if world_size() > 1:
        _comm.Barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order (for small metadata, off the hot path)."""
    return [obj] if world_size() == 1 else list(_comm.allgather(obj))


def broadcast_object(obj: Any, root: int = 0) -> Any:
    """Rank ``root``'s picklable ``obj`` on every rank."""
    _check_root(root)
    return obj if world_size() == 1 else _comm.bcast(obj, root=root)


def _check_root(root: int) -> None:
    if not 0 <= root < world_size():
        raise ValueError(f"root must be a rank in 0..{world_size() - 1}, got {root}")


# ---------------------------------------------------------------------------- faults
def abort(code: int = 1) -> None:
    """End every rank of the job now with exit status ``code`` (MPI_Abort)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if world_size() > 1:
        time.sleep(ABORT_GRACE_S)  # let the launcher forward this rank's last words
        _comm.Abort(code)
    raise SystemExit(code)


def _abort_on_uncaught(exc_type: type[BaseException], exc: BaseException,
                       tb: Any) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"rank {rank()} of {world_size()} failed:\n{text}")
    abort(1)


@contextlib.contextmanager
def abort_on_error() -> Iterator[None]:
    """Around a program's main: when this rank fails (an exception or a non-zero
    ``SystemExit``), show its error and end the whole job with a non-zero status rather
    than leave the other ranks waiting in a collective. Plain re-raise at world size 1."""
    try:
        yield
    except SystemExit as e:
        if world_size() == 1 or e.code in (0, None):
            raise
        if not isinstance(e.code, int):
            sys.stderr.write(f"rank {rank()}: {e.code}\n")
        abort(e.code if isinstance(e.code, int) else 1)
    except BaseException as e:
        if world_size() == 1:
            raise
        _abort_on_uncaught(type(e), e, e.__traceback__)
