"""The matmul lab: five ways agree with numpy, and loops -> @ is at least 10,000x."""

import json

import numpy as np
import pytest

import needle as ndl
from needle import labs
from needle.labs.matmul import WAYS


def test_every_way_multiplies_correctly():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 7)), rng.standard_normal((7, 4))
    for name, fn in WAYS.items():
        got = fn(ndl.Tensor(a, dtype="float64"), ndl.Tensor(b, dtype="float64")).numpy()
        np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.lab
def test_matmul_lab_thresholds(tmp_path):
    results = labs.run_lab("matmul", quick=True, out=str(tmp_path))
    assert results == json.loads((tmp_path / "results.json").read_text())
    assert results["max_abs_diff"] <= 1e-4
    assert results["speedup_loops_to_matmul"] >= 10_000
    assert results["ms_loops"] > results["ms_elementwise"] > results["ms_broadcast"]
    assert (tmp_path / "matmul_ladder.png").read_bytes()[:4] == b"\x89PNG"
