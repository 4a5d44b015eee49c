"""The allocator tuning: on by default on glibc, off with NEEDLE_KEEP_FREED_MEMORY=0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from needle.backend_ndarray import allocator

PROBE = "import needle.backend_ndarray.allocator as a; print(a.KEPT)"


def _kept(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NEEDLE_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["NEEDLE_KEEP_FREED_MEMORY"] = env_value
    return subprocess.run([sys.executable, "-c", PROBE], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_kept_by_default_and_the_environment_turns_it_off() -> None:
    assert _kept(None) == str(allocator.keep_freed_memory())
    assert _kept("0") == "False"
