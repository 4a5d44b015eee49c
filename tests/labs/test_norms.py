"""The norms lab: BatchNorm falls behind GroupNorm at batch size 2."""

import pytest

from needle import labs


@pytest.mark.lab
def test_norms_lab_thresholds(tmp_path):
    results = labs.run_lab("norms", quick=True, out=str(tmp_path))
    assert results["bn_bs2_val_acc"] < results["gn_bs2_val_acc"]
    for norm in ("bn", "ln", "in", "gn"):
        assert results[f"{norm}_bs64_val_acc"] >= 0.5, norm  # all of them learn at 64
    table = (tmp_path / "norms.md").read_text()
    assert "| BatchNorm |" in table and "| GroupNorm |" in table
    assert (tmp_path / "norms.png").read_bytes()[:4] == b"\x89PNG"
