"""``python -m needle train``: outputs, resume, the MNIST split note, bad arguments."""

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

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
    assert weights["modules.1.weight"].shape == (64, 100)


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


def _user_error(argv, capsys):
    """The stderr of a command line that must fail as a user error: status 2, one line."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_arguments_are_one_line_errors_with_status_2(tmp_path, capsys):
    assert "must be a positive integer, got 0" in _user_error(["train", "--batch-size", "0"],
                                                               capsys)
    assert "invalid choice: 'nope'" in _user_error(["train", "--model", "nope"], capsys)
    assert "--help" in _user_error(["train", "--no-such-flag"], capsys)
    err = _user_error(["train", "--out", str(tmp_path), "--resume",
                       str(tmp_path / "missing.safetensors")], capsys)
    assert re.search("no checkpoint file at .*missing.safetensors", err)
    err = _user_error(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out",
                       str(tmp_path)], capsys)
    assert "mnist" in err and str(tmp_path) in err


@pytest.mark.parametrize("model, dataset, says", [
    ("cnn", "ptb", "--model cnn trains on labelled images"),
    ("mlp_resnet", "ptb", "--dataset ptb is a text corpus"),
    ("lstm_lm", "digits", "--model lstm_lm trains on a text corpus (--dataset ptb)"),
    ("resnet9", "digits", "--model resnet9 needs 3 x 32 x 32 images")])
def test_a_model_that_does_not_fit_the_dataset_is_a_clear_error(model, dataset, says, tmp_path,
                                                                 capsys):
    err = _user_error(["train", "--model", model, "--dataset", dataset, "--out",
                       str(tmp_path)], capsys)
    assert says in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(cli.CLIError, match="trains on labelled images"):
        cli.main(["train", "--model", "cnn", "--dataset", "ptb", "--debug"])
    with pytest.raises(ValueError, match="not a readable gzip IDX"):
        cli.main(["--debug", "train", "--dataset", "mnist", "--data-dir", str(tmp_path)])


def test_a_checkpoint_of_another_model_names_both_models(tmp_path, capsys):
    run = tmp_path / "run"
    cli.main(["train", "--epochs", "1", "--out", str(run), "--no-progress"])
    checkpoint = str(run / "checkpoint.safetensors")
    err = _user_error(["train", "--model", "cnn", "--epochs", "2", "--out", str(tmp_path / "b"),
                       "--resume", checkpoint], capsys)
    assert "checkpoint of --model mlp_resnet on --dataset digits" in err
    assert "this run is --model cnn on --dataset digits" in err
    os.remove(run / "run.json")  # without the run's record: the tensors that differ
    err = _user_error(["train", "--model", "cnn", "--epochs", "2", "--out", str(tmp_path / "b"),
                       "--resume", checkpoint], capsys)
    assert "holds another model than --model cnn" in err and "tensors against" in err
    err = _user_error(["train", "--hidden-dim", "50", "--epochs", "2", "--out", str(run),
                       "--resume", checkpoint], capsys)
    assert "holds another model than --model mlp_resnet" in err
    not_a_checkpoint = tmp_path / "junk.safetensors"
    not_a_checkpoint.write_bytes(b"not safetensors at all")
    assert "junk.safetensors" in _user_error(["train", "--out", str(tmp_path / "c"), "--resume",
                                             str(not_a_checkpoint)], capsys)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    """SIGINT after the first epoch: history.json and curves.png are already there (written
    after every epoch), stderr says how to resume, and that command continues the run."""
    out = tmp_path / "run"
    argv = ["train", "--epochs", "200", "--batch-size", "50", "--out", str(out),
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "needle", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history_file = out / "history.json"
    deadline = time.monotonic() + 240
    while not history_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    written = json.loads(history_file.read_text())
    assert len(written) >= 1 and (out / "curves.png").exists()  # before the run ended
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    done = int(re.search(r"epochs 1-(\d+) are saved", stderr).group(1))
    command = stderr.strip().splitlines()[-1].strip()
    assert command.endswith(f"--resume {out / 'checkpoint.safetensors'}"), stderr
    assert [e["epoch"] for e in json.loads(history_file.read_text())] == list(range(1, done + 1))
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "needle"]
    words[words.index("--epochs") + 1] = str(done + 1)
    resumed = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1:3d}" in resumed.stdout and "epoch   1 " not in resumed.stdout
    history = json.loads(history_file.read_text())
    assert [e["epoch"] for e in history] == list(range(1, done + 2))


def test_help_shows_every_flags_default():
    parser, subparsers = cli.build_parser()
    for name, sub in subparsers.items():
        text = " ".join(sub.format_help().split())
        formatter = sub._get_formatter()
        for action in sub._actions:
            if action.option_strings and action.default is not argparse.SUPPRESS:
                flag = action.option_strings[-1]
                assert action.help, f"{name} {flag} has no help"
                assert "(default: %(default)s)" in formatter._get_help_string(action), flag
                assert f"(default: {action.default})" in text, f"{name} {flag}"
    text = " ".join(subparsers["train"].format_help().split())
    assert "--dataset digits: --epochs 20" in text
    assert "--model cnn --dataset mnist: --epochs 5 --batch-size 32" in text


def test_the_plain_commands_use_the_readme_settings():
    """The README's results table says what the defaults reach; its rows' settings are the
    defaults (the accuracies themselves are the slow tests of tests/models/)."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    rows = {"digits": r"`mlp_resnet`, digits \((\d+) epochs",
            "mnist": r"`mlp_resnet`, MNIST 8,000/2,000 \((\d+) epochs",
            "cnn mnist": r"`cnn`, MNIST 8,000/2,000 \((\d+) epochs",
            "lstm_lm": r"`lstm_lm`, PTB valid → test \((\d+) epochs",
            "transformer_lm": r"`transformer_lm`, PTB valid → test \((\d+) epochs"}
    argv = {"digits": ["--dataset", "digits"], "mnist": ["--dataset", "mnist"],
            "cnn mnist": ["--model", "cnn", "--dataset", "mnist"],
            "lstm_lm": ["--model", "lstm_lm"], "transformer_lm": ["--model", "transformer_lm"]}
    for name, pattern in rows.items():
        epochs = int(re.search(pattern, readme).group(1))
        assert cli.parse_args(["train", *argv[name]]).epochs == epochs, name
    cnn = cli.parse_args(["train", "--model", "cnn", "--dataset", "mnist"])
    assert (cnn.batch_size, cnn.weight_decay, cnn.lr) == (32, 0.0, 2e-3)
    assert cli.parse_args(["train", "--epochs", "3"]).epochs == 3  # the command line wins
    assert cli.parse_args(["train", "--model", "lstm_lm"]).dataset == "ptb"


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


@pytest.mark.slow
def test_train_with_the_defaults_reaches_the_readme_accuracy(tmp_path, capsys):
    """``python -m needle train`` alone: the README's headline (98.1 % on digits, >= 97 %)."""
    cli.main(["train", "--out", str(tmp_path), "--no-progress"])
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 20 and history[-1]["test_acc"] >= 0.97, history[-1]
