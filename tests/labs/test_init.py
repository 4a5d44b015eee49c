"""The init lab: overflow, vanishing and the scaled product; Kaiming holds the scale."""

import pytest

from needle import labs


@pytest.mark.lab
def test_init_lab_thresholds(tmp_path):
    results = labs.run_lab("init", quick=True, out=str(tmp_path))
    assert 20 <= results["steps_to_nan"] <= 40
    assert results["std_after_100_small"] < 1e-10
    assert 0.3 <= results["std_after_100_scaled"] <= 3
    # through ten ReLU layers Kaiming keeps the std of order one; Xavier loses ~1/sqrt(2)
    # per layer and PyTorch's default ~1/sqrt(6)
    assert 0.3 <= results["kaiming_std_layer10"] <= 3
    assert results["xavier_std_layer10"] < 0.1 * results["kaiming_std_layer10"]
    assert results["torch_default_std_layer10"] < 0.01 * results["kaiming_std_layer10"]
    assert (tmp_path / "init_layer_stats.png").read_bytes()[:4] == b"\x89PNG"
