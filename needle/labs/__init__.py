"""Labs: the cs231n journey (and more) as runnable experiments on real data.

    python -m needle lab --list
    python -m needle lab knn --quick --out runs/knn

A lab is a module ``needle/labs/NAME.py`` whose docstring's first line is its one-line
summary and which defines ``run(quick, out, seed, data_dir) -> dict[str, float]``: it runs
the experiment (``quick`` is the CI size), writes its figures (PNG) into ``out`` and returns
its measured numbers. Labs are found with ``pkgutil.iter_modules`` (no registry to keep);
``common`` and modules starting with ``_`` are helpers, not labs. The runner creates ``out``,
seeds numpy's global RNG, calls ``run``, writes ``out/results.json`` (a flat JSON object of
named numbers) and prints the results.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import sys
import time
from types import ModuleType

import numpy as np

Results = dict[str, float]
NOT_LABS = {"common"}


def lab_names() -> list[str]:
    """The names of every lab module in this package, sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if not info.name.startswith("_") and info.name not in NOT_LABS)


def load_lab(name: str) -> ModuleType:
    """The lab module ``name``; an unknown name is a ValueError listing the labs."""
    names = lab_names()
    if name not in names:
        raise ValueError(f"unknown lab {name!r}; the labs are: {', '.join(names)}")
    return importlib.import_module(f"{__name__}.{name}")


def summary(module: ModuleType) -> str:
    """The first line of a lab's docstring."""
    lines = (module.__doc__ or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def list_labs() -> dict[str, str]:
    """Each lab's name and its one-line summary, in name order."""
    return {name: summary(load_lab(name)) for name in lab_names()}


def check_results(name: str, results: object) -> Results:
    """A lab's results as a flat dict of named floats, or a TypeError naming what is wrong."""
    if not isinstance(results, dict):
        raise TypeError(f"lab {name}: run() must return a dict of named numbers, "
                        f"got {type(results).__name__}")
    checked = {}
    for key, value in results.items():
        if not isinstance(key, str) or isinstance(value, bool) \
                or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"lab {name}: result {key!r} must be a number under a string "
                            f"name, got {type(value).__name__}")
        checked[key] = float(value)
    return checked


def format_value(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def run_lab(name: str, quick: bool = False, out: str | None = None, seed: int = 0,
            data_dir: str | None = None) -> Results:
    """Run lab ``name`` into ``out`` (default ``runs/lab-NAME``); write and print
    ``out/results.json``; return the results."""
    module = load_lab(name)
    out = out or os.path.join("runs", f"lab-{name}")
    os.makedirs(out, exist_ok=True)
    np.random.seed(seed)
    start = time.perf_counter()
    results = check_results(name, module.run(quick=quick, out=out, seed=seed,
                                             data_dir=data_dir))
    seconds = time.perf_counter() - start
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({k: (v if math.isfinite(v) else None) for k, v in results.items()}, f,
                  indent=1)
    width = max((len(k) for k in results), default=0)
    print(f"lab {name}{' (quick)' if quick else ''}: {seconds:.1f}s, wrote {out}/results.json")
    for key, value in results.items():
        print(f"  {key:<{width}}  {format_value(value)}")
    return results


# ---------------------------------------------------------------------------- command line
def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the lab to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the labs and exit")
    parser.add_argument("--quick", action="store_true",
                        help="the CI size (about a minute), with the tests' thresholds")
    parser.add_argument("--out", default=None, help="output folder (default runs/lab-NAME)")
    parser.add_argument("--seed", type=int, default=0, help="numpy's global seed")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the data files (default: $NEEDLE_DATA)")


def run_lab_command(args: argparse.Namespace) -> None:
    """Run a lab: a real experiment that prints its numbers and writes results.json, figures."""
    try:
        if args.list or not args.name:
            for name, line in list_labs().items():
                print(f"{name:<14}{line}")
            return
        run_lab(args.name, quick=args.quick, out=args.out, seed=args.seed,
                data_dir=args.data_dir)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
