"""The cifar_ideas lab: idea 2 (BN, PReLU, dropout, Adam) at least matches idea 0."""

import pytest

from needle import labs
from needle.labs.cifar_ideas import idea_model


def test_the_three_architectures():
    names = [[type(m).__name__ for m in idea_model(i, 3, 32).submodules()[1:]] for i in range(3)]
    assert names[0] == ["Conv", "ReLU", "Conv", "ReLU", "Flatten", "Linear"]
    assert names[1].count("BatchNorm2d") == 3 and names[1].count("Conv") == 3
    assert names[2].count("PReLU") == 3 and names[2].count("Dropout") == 3


@pytest.mark.lab
def test_cifar_ideas_lab_on_the_mnist_split(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("needle.labs.common.find_cifar10", lambda data_dir: None)
    results = labs.run_lab("cifar_ideas", quick=True, out=str(tmp_path))
    assert "running the three ideas on the MNIST split" in capsys.readouterr().out
    assert results["on_cifar10"] == 0
    assert results["idea2_val_acc"] >= results["idea0_val_acc"]
    assert results["idea2_val_acc"] >= 0.8
    assert "| 2 |" in (tmp_path / "cifar_ideas.md").read_text()
