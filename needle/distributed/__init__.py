"""Data-parallel training across processes and machines, on MPI (mpi4py).

    mpiexec -n 4 python train.py          # or: python -m needle train --nproc 4 ...

Without a launcher the world is this one process and every collective is a no-op. See
docs/distributed.md.
"""

from .comm import (abort, abort_on_error, all_gather, all_gather_object, all_reduce, barrier,
                   broadcast, broadcast_object, init, is_initialized, is_main_process, rank,
                   under_launcher, world_size)
from .parallel import (DistributedOptimizer, broadcast_buffers, broadcast_parameters,
                       check_same_layout, decorrelate_rng)
from .sampler import DistributedSampler

__all__ = ["DistributedOptimizer", "DistributedSampler", "abort", "abort_on_error",
           "all_gather", "all_gather_object", "all_reduce", "barrier", "broadcast",
           "broadcast_buffers", "broadcast_object", "broadcast_parameters",
           "check_same_layout", "decorrelate_rng", "init", "is_initialized",
           "is_main_process", "rank", "under_launcher", "world_size"]
