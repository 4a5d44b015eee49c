"""The ablations lab: BatchNorm rescues a bad init, dropout narrows the gap, Adam wins."""

import pytest

from needle import labs


@pytest.mark.lab
@pytest.mark.slow
def test_ablations_lab(tmp_path):
    results = labs.run_lab("ablations", quick=True, out=str(tmp_path))
    assert results["bn_val_acc"] > results["no_bn_val_acc"]
    assert results["adam_final_loss"] < results["sgd_final_loss"]
    assert results["dropout_gap"] < results["no_dropout_gap"]
    for name in ("bn_init", "dropout", "update_rules", "batch_size"):
        assert (tmp_path / f"ablation_{name}.png").exists()
