"""summary(): output shapes and parameter counts per layer."""

import numpy as np

import needle as ndl
from needle import nn


def test_summary_lists_output_shapes_and_parameter_counts():
    model = ndl.models.MLPResNet(64, hidden_dim=32, num_blocks=1, num_classes=10)
    model.train()
    lines = []
    text = nn.summary(model, (5, 8, 8, 1), print_fn=lines.append)
    assert lines == [text]
    rows = text.splitlines()
    linear = [r for r in rows if "(Linear)" in r]
    assert "(5, 32)" in linear[0] and "2,080" in linear[0]  # 64*32 + 32
    assert "(5, 10)" in linear[-1] and "330" in linear[-1]
    assert any("(BatchNorm1d)" in r and "(5, 16)" in r and "32" in r for r in rows)
    total = sum(p.size for p in model.parameters())
    assert rows[-1] == f"Total parameters: {total:,}"
    assert model.training  # mode restored
    assert "forward" not in vars(model.layers[1])  # no wrapper left behind
    out = model(ndl.Tensor(np.zeros((2, 64), np.float32)))
    assert out.shape == (2, 10)
