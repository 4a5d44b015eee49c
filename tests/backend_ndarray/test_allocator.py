"""The allocator tuning is opt-in: ``import needle`` leaves glibc's malloc alone;
``allocator.enable()`` (called by the command line and ``fit``) keeps large blocks in the
heap unless NEEDLE_KEEP_FREED_MEMORY=0. glibc's own accounting (mallinfo2) is the oracle:
a 64 MiB array is mmap-ed by default and comes from the heap once tuned."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, sys
import numpy as np
import needle
from needle.backend_ndarray import allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "enable":
    allocator.enable()
big = np.ones(64 * 2**20, np.uint8)
print(libc.mallinfo2().hblkhd >= 64 * 2**20, allocator.KEPT)
"""


def _has_mallinfo2() -> bool:
    name = ctypes.util.find_library("c")
    return bool(name) and hasattr(ctypes.CDLL(name), "mallinfo2")


def _probe(step: str, env_value: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NEEDLE_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["NEEDLE_KEEP_FREED_MEMORY"] = env_value
    return subprocess.run([sys.executable, "-c", PROBE, step], env=env, check=True,
                          capture_output=True, text=True, cwd=os.getcwd()).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _has_mallinfo2(),
                    reason="glibc's mallopt and mallinfo2")
@pytest.mark.parametrize("step, env_value, expected", [
    ("import", None, "True False"),      # import needle: still mmap-ed, nothing tuned
    ("enable", None, "False True"),      # enable(): from the heap
    ("enable", "0", "True False"),       # the environment switches it off
])
def test_the_tuning_is_opt_in(step: str, env_value: str | None, expected: str) -> None:
    assert _probe(step, env_value) == expected
