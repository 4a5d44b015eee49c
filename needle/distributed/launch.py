"""Starting a job: ``python -m needle train --nproc 4 ...`` runs
``mpiexec -n 4 python -m needle train ...`` with the MPI launcher of the mpich wheel (it
installs ``mpiexec`` beside the Python that has it) and waits for it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys

from . import comm

LAUNCHED_BY = "NEEDLE_NPROC"  # set in the ranks that ``train --nproc`` starts

# each rank gets its share of the cores for BLAS unless the user set these
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def find_mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the mpich wheel's), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.path.isfile(beside) else shutil.which("mpiexec")
    if found is None or importlib.util.find_spec("mpi4py") is None:
        raise FileNotFoundError("--nproc needs mpi4py and an MPI launcher (mpiexec), which the "
                         "distributed extra installs: pip install 'needle[distributed]'")
    return found


def without_option(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag VALUE`` or ``flag=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def launch(nproc: int, module_argv: list[str]) -> int:
    """Run ``python -m needle MODULE_ARGV`` as ``nproc`` ranks of one MPI job on this
    machine; returns the job's exit status (non-zero when any rank failed). Ctrl-C is the
    job's to handle (mpiexec passes it to the ranks): this process waits for its end."""
    env = dict(os.environ, **{LAUNCHED_BY: str(nproc)})
    for name in THREAD_VARIABLES:
        env.setdefault(name, str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [find_mpiexec(), "-n", str(nproc), sys.executable, "-m", "needle", *module_argv]
    job = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)  # not SIG_IGN,
    try:                                                 # which the ranks would inherit
        return job.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def rerun_command(command: str) -> str:
    """``command`` (a ``python -m needle ...`` line) as this job would be started again:
    with ``--nproc N`` or under ``mpiexec -n N`` as it was; unchanged in one process."""
    world = comm.world_size()
    if world == 1:
        return command
    if os.environ.get(LAUNCHED_BY):
        return f"{command} --nproc {world}"
    return f"mpiexec -n {world} {command}"
