"""Shared by the distributed tests, which run twice in ``make test``: plainly (world size 1)
and under ``mpiexec -n 2`` (each rank runs the same tests in the same order, so their
collectives meet). Tests that start their own ``mpiexec`` job run only in the plain run."""

import os
import subprocess
import sys

import pytest

from needle import distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mpiexec_path() -> str | None:
    """The launcher that the mpich wheel installs beside this Python, if there is one."""
    path = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return path if os.path.exists(path) else None


@pytest.fixture
def mpirun():
    """Run ``python ARGS`` as a 2-rank MPI job (at most ``timeout`` seconds); returns the
    CompletedProcess. Skipped under a launcher (no nested jobs) or without mpich/mpi4py."""
    pytest.importorskip("mpi4py")
    launcher = mpiexec_path()
    if launcher is None or dist.under_launcher():
        pytest.skip("needs the mpich wheel's mpiexec, outside an MPI job")

    def run(*args: str, n: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        return subprocess.run([launcher, "-n", str(n), sys.executable, *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=timeout)
    return run
