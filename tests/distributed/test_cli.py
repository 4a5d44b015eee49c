"""``python -m needle train --nproc 2``: the first line says how the global batch is split,
rank 0 alone prints and writes, the test metrics are those of the whole test set (sums
over the ranks: they equal a one-process evaluation of the saved model), and a resumed
distributed run continues the history."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import needle as ndl
from needle import distributed as dist
from needle.__main__ import load_digits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def needle_train(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "needle", "train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def launcher():
    pytest.importorskip("mpi4py")
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpiexec")) or \
            dist.under_launcher():
        pytest.skip("needs the mpich wheel's mpiexec, outside an MPI job")


@pytest.mark.slow
def test_nproc_trains_data_parallel_evaluates_globally_and_resumes(launcher, tmp_path):
    out = str(tmp_path / "run")
    common = ["--dataset", "digits", "--batch-size", "100", "--out", out, "--no-progress"]
    first = needle_train("--nproc", "2", "--epochs", "2", *common)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "distributed: 2 ranks, global batch 100 = 2 x 50 per rank"
    assert [line.split()[:2] for line in lines if line.startswith("epoch")] == \
        [["epoch", "1"], ["epoch", "2"]]  # printed by rank 0 only
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    assert [e["epoch"] for e in history] == [1, 2]

    model = ndl.models.MLPResNet(64, hidden_dim=100, num_blocks=3, num_classes=10)
    model.load_state_dict(ndl.load(os.path.join(out, "model.safetensors")))
    test = load_digits(None).test
    error, loss = ndl.train.epoch(ndl.data.DataLoader(test, 100), model)
    assert history[-1]["test_acc"] == pytest.approx(1 - error, abs=1e-9)
    assert history[-1]["test_loss"] == pytest.approx(loss, rel=1e-5)

    resumed = needle_train("--nproc", "2", "--epochs", "3", "--resume",
                           os.path.join(out, "checkpoint.safetensors"), *common)
    assert resumed.returncode == 0, resumed.stderr
    with open(os.path.join(out, "history.json")) as f:
        continued = json.load(f)
    assert [e["epoch"] for e in continued] == [1, 2, 3] and continued[:2] == history
    assert continued[-1]["train_loss"] < history[0]["train_loss"]
    assert continued[-1]["test_acc"] > 0.8  # one process reaches about 0.9 here too


def test_a_batch_that_does_not_split_evenly_is_refused_before_launching(launcher, tmp_path):
    result = needle_train("--nproc", "3", "--batch-size", "100", "--out", str(tmp_path))
    assert result.returncode != 0
    assert "--batch-size 100 must be a multiple of the 3 ranks" in result.stderr
    assert not np.any([name.endswith(".json") for name in os.listdir(tmp_path)])


def test_mpiexec_runs_the_command_line_data_parallel_with_rank_zero_output(mpirun, tmp_path):
    out = str(tmp_path / "run")
    result = mpirun("-m", "needle", "train", "--epochs", "1", "--batch-size", "64", "--out",
                    out, "--no-progress", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "distributed: 2 ranks, global batch 64 = 2 x 32 per rank"
    assert sum(line.startswith("epoch") for line in lines) == 1  # rank 0 alone prints
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors", "curves.png", "history.json",
                                       "model.safetensors", "run.json"]


def test_a_user_error_under_mpiexec_ends_the_job_with_its_message(mpirun, tmp_path):
    result = mpirun("-m", "needle", "train", "--epochs", "1", "--out", str(tmp_path),
                    "--nproc", "2", timeout=120)
    assert result.returncode == 2
    # each rank fails alike; the first to abort may end the other before it prints
    assert re.search(r"error: rank [01]: --nproc starts its own MPI job: leave it out "
                     r"under mpiexec", result.stderr), result.stderr


def test_the_resume_command_restarts_the_job_as_it_was_started(monkeypatch):
    from needle.distributed.launch import LAUNCHED_BY, rerun_command
    world, line = dist.world_size(), "python -m needle train --resume ckpt"
    monkeypatch.delenv(LAUNCHED_BY, raising=False)
    assert rerun_command(line) == (line if world == 1 else f"mpiexec -n {world} {line}")
    monkeypatch.setenv(LAUNCHED_BY, str(world))
    assert rerun_command(line) == (line if world == 1 else f"{line} --nproc {world}")


def test_ctrl_c_stops_every_rank_at_one_batch_and_rank_0_says_how_to_resume(launcher, tmp_path):
    """SIGINT to the whole job (as a terminal's Ctrl-C): the ranks agree on a batch, stop
    without a traceback or a hang, and rank 0 prints the resume command with mpiexec."""
    import signal
    import time

    out = tmp_path / "run"
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([mpiexec, "-n", "2", sys.executable, "-m", "needle", "train",
                             "--epochs", "200", "--out", str(out), "--no-progress"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while not (out / "history.json").exists() and proc.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in stderr, stderr
    assert re.search(r"interrupted during epoch \d+: epochs 1-\d+ are saved", stderr), stderr
    assert stderr.count("resume with") == 1 and "  mpiexec -n 2 python -m needle train" in stderr
