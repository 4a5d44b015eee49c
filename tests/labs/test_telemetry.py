"""The telemetry lab: LSUV reaches unit std in every layer; GeneralRelu with LSUV trains."""

import pytest

from needle import labs


@pytest.mark.lab
def test_telemetry_lab_thresholds(tmp_path):
    results = labs.run_lab("telemetry", quick=True, out=str(tmp_path))
    for layer in range(1, 5):
        assert abs(results[f"lsuv_final_std_layer{layer}"] - 1) < 1e-3
        assert abs(results[f"lsuv_final_mean_layer{layer}"]) < 1e-3
    assert results["lsuv_max_std_dev"] < 1e-3
    assert results["lsuv_val_acc"] >= 0.8 and results["general_relu_val_acc"] >= 0.8
    assert results["relu_val_acc"] >= 0.5
    for name in ("telemetry_stats.png", "telemetry_hist.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
