"""The lab runner: discovery, results.json, the command line and its errors."""

import json
import re
import subprocess
import sys
import os

import pytest

from needle import __main__ as cli
from needle import labs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOY_LAB = '''"""A toy lab: returns numbers drawn from numpy's seeded RNG.

More docstring that the listing does not show.
"""
import os
import numpy as np


def run(quick, out, seed, data_dir):
    open(os.path.join(out, "figure.png"), "wb").write(b"png")
    return {"draw": float(np.random.rand()), "quick": int(quick), "seed": seed}
'''


@pytest.fixture
def toy_lab(tmp_path, monkeypatch):
    """A lab module ``toy`` (and a helper ``_private``) in an extra folder of the package."""
    folder = tmp_path / "extra_labs"
    folder.mkdir()
    (folder / "toy.py").write_text(TOY_LAB)
    (folder / "_private.py").write_text('"""Not a lab."""\n')
    monkeypatch.setattr(labs, "__path__", [*labs.__path__, str(folder)])
    yield "toy"
    sys.modules.pop("needle.labs.toy", None)


def test_discovery_finds_lab_modules_and_skips_helpers(toy_lab):
    names = labs.lab_names()
    assert "toy" in names and "knn" in names
    assert "common" not in names and "_private" not in names
    assert labs.list_labs()["toy"] == "A toy lab: returns numbers drawn from numpy's seeded RNG."


def test_run_lab_seeds_writes_results_json_and_prints(toy_lab, tmp_path, capsys):
    out = tmp_path / "run"
    first = labs.run_lab("toy", quick=True, out=str(out), seed=3)
    again = labs.run_lab("toy", quick=True, out=str(tmp_path / "again"), seed=3)
    other = labs.run_lab("toy", out=str(tmp_path / "other"), seed=4)
    assert first == again and first["draw"] != other["draw"]
    assert first["quick"] == 1.0 and other["quick"] == 0.0 and first["seed"] == 3.0
    assert json.loads((out / "results.json").read_text()) == first
    assert (out / "figure.png").exists()
    printed = capsys.readouterr().out
    assert "lab toy (quick)" in printed
    assert re.search(r"^  seed +3$", printed, re.M)


def test_default_out_is_runs_lab_name(toy_lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labs.run_lab("toy", quick=True)
    assert (tmp_path / "runs" / "lab-toy" / "results.json").exists()


def test_results_must_be_named_numbers(toy_lab, tmp_path, monkeypatch):
    module = labs.load_lab("toy")
    monkeypatch.setattr(module, "run", lambda **kwargs: {"acc": "high"})
    with pytest.raises(TypeError, match="result 'acc' must be a number"):
        labs.run_lab("toy", out=str(tmp_path))
    monkeypatch.setattr(module, "run", lambda **kwargs: [0.5])
    with pytest.raises(TypeError, match="must return a dict"):
        labs.run_lab("toy", out=str(tmp_path))


def test_unknown_lab_lists_the_labs():
    with pytest.raises(ValueError, match=r"unknown lab 'nope'; the labs are: .*knn"):
        labs.run_lab("nope")


def test_command_line_lists_runs_and_fails_in_one_line(toy_lab, tmp_path, capsys):
    cli.main(["lab", "--list"])
    listing = capsys.readouterr().out.splitlines()
    assert any(line.startswith("knn ") and "cross-validation" in line for line in listing)
    assert any(line.startswith("toy ") for line in listing)
    cli.main(["lab", "toy", "--quick", "--out", str(tmp_path / "cli"), "--seed", "5"])
    assert json.loads((tmp_path / "cli" / "results.json").read_text())["seed"] == 5
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lab", "nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown lab 'nope'") and err.count("\n") == 1


def test_python_dash_m_needle_lab_list():
    result = subprocess.run([sys.executable, "-m", "needle", "lab", "--list"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("knn ") or "\nknn " in result.stdout


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lab", "solver", "--quick", "--out", str(tmp_path / "out"), "--data-dir",
                  str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "t10k-images-idx3-ubyte.gz" in err
    assert "NEEDLE_DATA" in err and err.count("\n") == 1
