"""summary(): output shapes, parameter counts and bytes, activation bytes kept for backward."""

import gc
import tracemalloc

import numpy as np
import pytest

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
    assert all("forward" not in vars(m) for m in model.submodules())  # no wrapper left behind
    out = model(ndl.Tensor(np.zeros((2, 64), np.float32)))
    assert out.shape == (2, 10)


def test_parameter_bytes_per_layer_and_in_total():
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    table = nn.summary(model, (32, 784), print_fn=lambda _: None)
    by_type = {r.label.split("(")[-1].rstrip(")"): r for r in table.rows[1:3]}
    assert by_type["Linear"].param_bytes == (784 * 100 + 100) * 4
    assert by_type["ReLU"].param_bytes == 0
    assert by_type["ReLU"].activation_bytes == 32 * 100 * 4
    assert table.param_bytes == ((784 * 100 + 100) + (100 * 10 + 10)) * 4
    assert "Parameter bytes: 310.6 KiB" in table  # 318,040 B


@pytest.mark.parametrize("build, shape", [
    (lambda: ndl.models.MLPResNet(784, hidden_dim=100, num_blocks=2), (256, 784)),
    (lambda: ndl.models.CNN(1, 10, image_size=8, channels=(8, 16)), (64, 1, 8, 8)),
])
def test_activation_bytes_match_the_memory_the_graph_holds(build, shape, monkeypatch):
    """The oracle is tracemalloc (numpy reports its allocations to it): the memory a
    training-mode forward leaves allocated while its output (and so the graph) lives.
    summary runs every layer itself (its wrappers keep Sequential's fusions off), so it
    matches the layers run one by one; the fused blocks of a plain forward hold less."""
    np.random.seed(0)
    model = build()
    table = nn.summary(model, shape, print_fn=lambda _: None)
    assert table.activation_bytes == sum(r.activation_bytes for r in table.rows)
    x = ndl.Tensor(np.zeros(shape, np.float32), requires_grad=False)
    model.train()

    def held_by_a_forward() -> int:
        model(x)  # warm-up: lazily built caches are not activations
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            out = model(x)
            gc.collect()
            assert out.requires_grad
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    fused = held_by_a_forward()
    monkeypatch.setattr(nn.Sequential, "fusions", {})
    apart = held_by_a_forward()
    assert 0.98 * table.activation_bytes <= apart <= 1.05 * table.activation_bytes
    if ndl.is_reference_mode():
        assert abs(fused - apart) <= 0.01 * apart  # reference mode runs the layers apart
    else:
        assert fused < apart


def test_summary_leaves_running_statistics_and_the_rng_alone():
    np.random.seed(1)
    model = ndl.models.MLPResNet(16, hidden_dim=8, num_blocks=1, drop_prob=0.5)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = np.random.get_state()[1].copy()
    nn.summary(model, (4, 16), print_fn=lambda _: None)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
