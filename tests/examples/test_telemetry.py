"""examples/telemetry.py: hooks record every training step's layer statistics; plot written."""

import importlib.util
from pathlib import Path

import numpy as np

import needle as ndl

ROOT = Path(__file__).resolve().parents[2]


def _example():
    spec = importlib.util.spec_from_file_location("telemetry", ROOT / "examples" / "telemetry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_telemetry_records_each_step_and_plots(tmp_path):
    telemetry = _example()
    names, hooks, accuracy = telemetry.train(epochs=1, batch_size=64, lr=3e-3)
    assert names == ["conv1", "relu1", "conv2", "relu2", "linear1"]
    steps = -(-1437 // 64)
    assert all(len(h.stats[0]) == len(h.stats[1]) == steps for h in hooks)
    assert all(m >= 0 for m in hooks[1].stats[0] + hooks[3].stats[0])  # ReLU outputs
    assert accuracy > 0.8
    # the first recorded conv1 statistics equal the layer's output computed directly
    ndl.manual_seed(0)
    train_set = ndl.data.Digits(train=True)
    model = ndl.models.CNN(1, 10, image_size=8, channels=(16, 32), channels_last=True)
    x, _ = next(iter(ndl.data.DataLoader(train_set, 64, shuffle=True)))
    conv1 = model.model.children()[0](ndl.permute(x, (0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(hooks[0].stats[0][0], conv1.mean(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hooks[0].stats[1][0], conv1.std(), rtol=1e-5)
    path = tmp_path / "telemetry.png"
    telemetry.plot(names, hooks, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(h.module._hooks for h in hooks)  # removed when training ended
