"""examples/softmax_regression.py runs end to end on real data and learns."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NEEDLE_DATA", ROOT.parent / "shared" / "data"))


def run_example(*args, cwd=ROOT, env=None):
    env = env or {**os.environ, "PYTHONPATH": str(ROOT), "NEEDLE_DATA": str(DATA)}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "softmax_regression.py"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    losses = [float(v) for v in re.findall(r"train loss (\d+\.\d+)", done.stdout)]
    accuracy = re.search(r"test accuracy (\d+\.\d+)", done.stdout)
    assert losses and accuracy, done.stdout
    return losses, float(accuracy.group(1))


def test_digits():
    pytest.importorskip("sklearn")
    losses, accuracy = run_example("--data", "digits", "--epochs", "2")
    assert losses[1] < losses[0] < 2.31  # below chance level (log 10) and falling
    assert accuracy > 0.8


@pytest.mark.skipif(not (DATA / "mnist" / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="needs the MNIST IDX files in $NEEDLE_DATA/mnist")
def test_mnist():
    losses, accuracy = run_example("--data", "mnist", "--epochs", "1")
    assert losses[0] < 2.31
    assert accuracy > 0.8


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "mnist" /
                         "t10k-images-idx3-ubyte.gz").exists(),
                    reason="needs the MNIST IDX files in ../shared/data/mnist")
def test_mnist_is_found_from_any_directory_without_needle_data(tmp_path):
    """The command line's lookup: $NEEDLE_DATA, else ../shared/data beside the project."""
    env = {k: v for k, v in os.environ.items() if k != "NEEDLE_DATA"}
    env["PYTHONPATH"] = str(ROOT)
    losses, accuracy = run_example("--data", "mnist", "--epochs", "1", cwd=tmp_path, env=env)
    assert accuracy > 0.8
