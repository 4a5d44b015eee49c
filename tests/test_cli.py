"""``python -m needle train``: outputs, resume, the MNIST split note, bad arguments."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import needle as ndl
from needle import __main__ as cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_on_digits_writes_history_curves_and_model(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "needle", "train", "--model", "mlp_resnet", "--dataset", "digits",
         "--epochs", "2", "--batch-size", "64", "--optimizer", "sgd", "--lr", "0.1",
         "--out", str(out)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True,
        check=True)
    lines = result.stdout.strip().splitlines()
    assert sum(line.startswith("epoch") for line in lines) == 2
    assert "train_loss" in lines[1] and "test_acc" in lines[1]
    assert lines[-1].startswith("test accuracy ")
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    for entry in history:
        assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                "seconds"} <= set(entry)
    # two SGD epochs on digits: about 92 % measured, chance is 10 %
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_acc"] >= 0.8, history
    assert f"{history[-1]['test_acc']:.4f}" in lines[-1]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = ndl.load(out / "model.safetensors")
    assert weights["layers.1.weight"].shape == (64, 100)


def test_resume_continues_the_run(tmp_path, capsys):
    """Extending a run: a constant learning rate (a cosine schedule spans --epochs, so
    only an interrupted run resumed with the same --epochs continues it exactly)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--no-progress", "--scheduler", "none"]
    cli.main(["train", "--epochs", "3", "--out", str(straight), *common])
    cli.main(["train", "--epochs", "2", "--out", str(split), *common])
    capsys.readouterr()
    cli.main(["train", "--epochs", "3", "--out", str(split), *common,
              "--resume", str(split / "checkpoint.safetensors")])
    printed = capsys.readouterr().out
    assert "epoch   3" in printed and "epoch   1" not in printed
    a, b = ndl.load(straight / "model.safetensors"), ndl.load(split / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    history = json.loads((split / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2, 3]


def test_mnist_says_it_uses_the_8000_2000_split():
    args = cli.argparse.Namespace(data_dir=None)
    if not os.path.isdir(os.path.join(cli.data_dir(args), "mnist")):
        pytest.skip("no MNIST files")
    data = cli.DATASETS["mnist"](args)
    assert (len(data.train), len(data.test)) == (8000, 2000)
    assert "first 8,000" in data.note and "last 2,000" in data.note
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--batch-size", "0"])
    assert "must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--model", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no checkpoint file at .*missing.safetensors"):
        cli.main(["train", "--out", str(tmp_path), "--resume",
                  str(tmp_path / "missing.safetensors")])
    with pytest.raises(ValueError, match="mnist"):
        cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out",
                  str(tmp_path)])


def test_extension_points_are_tables(tmp_path, capsys, monkeypatch):
    """A new dataset, model and loop plug in as table entries (issues 4 and 5 do this)."""
    def tiny(args):
        x = np.random.default_rng(0).random((40, 3)).astype(np.float32)
        y = (x.sum(1) > 1.5).astype(np.int64)
        dataset = ndl.data.NDArrayDataset(x, y)
        return cli.Data(dataset, dataset, input_shape=(3,), num_classes=2, kind="toy")

    def loop(model, data, args):
        return [{"epoch": 1, "train_loss": 0.5, "test_loss": 0.6, "test_ppl": 1.8,
                 "lr": args.lr, "seconds": 0.0}]

    monkeypatch.setitem(cli.DATASETS, "tiny", tiny)
    monkeypatch.setitem(cli.MODELS, "linear", lambda data, args: ndl.nn.Linear(3, 2))
    monkeypatch.setitem(cli.LOOPS, "toy", loop)
    cli.main(["train", "--model", "linear", "--dataset", "tiny", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "history.json").read_text())[0]["test_ppl"] == 1.8
    assert (tmp_path / "curves.png").exists()
