"""The schedules lab: one-cycle at least matches a constant rate; a sensible LR suggestion."""

import pytest

from needle import labs


@pytest.mark.lab
def test_schedules_lab_thresholds(tmp_path):
    results = labs.run_lab("schedules", quick=True, out=str(tmp_path))
    assert results["onecycle_val_acc"] >= results["constant_val_acc"]
    assert 1e-4 <= results["lr_find_suggestion"] <= 1
    assert results["onecycle_val_acc"] >= 0.85
    for name in ("lr_find.png", "schedules.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
