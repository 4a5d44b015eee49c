"""Training loops: epoch in both modes, fit's history and checkpoints, reproducibility, and
a resume in a fresh process that continues bit-identically."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import needle as ndl
from needle import nn, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETUP = textwrap.dedent("""
    import numpy as np
    import needle as ndl

    def setup(seed=0, n=200):
        np.random.seed(seed)
        data = np.random.default_rng(1)
        x = data.standard_normal((n, 4, 4, 1)).astype(np.float32)
        y = (x.reshape(n, -1).sum(1) > 0).astype(np.int64) + 2 * (x[:, 0, 0, 0] > 0)
        model = ndl.models.MLPResNet(16, hidden_dim=12, num_blocks=2, num_classes=4)
        opt = ndl.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
        sched = ndl.optim.StepLR(opt, step_size=2, gamma=0.5)
        loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(x[:150], y[:150]), 32,
                                     shuffle=True)
        test = ndl.data.DataLoader(ndl.data.NDArrayDataset(x[150:], y[150:]), 32)
        return model, opt, sched, loader, test
""")
namespace: dict = {}
exec(SETUP, namespace)
setup = namespace["setup"]


def _params(model):
    return [p.numpy().copy() for p in model.parameters()] + \
        [t.numpy().copy() for name, t in model.named_tensors() if "running" in name]


def test_epoch_trains_or_evaluates_and_reports_error_and_loss():
    model, opt, _, loader, test = setup()
    before = _params(model)
    error, loss = train.epoch(test, model)
    assert not model.training
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(model)))  # eval: no change
    x, y = test.dataset.arrays
    logits = train.predict(model, ndl.Tensor(x))
    assert error == pytest.approx((logits != y).mean())
    assert 0 <= error <= 1 and loss > 0
    error, loss = train.epoch(loader, model, opt, loss_fn=nn.SoftmaxLoss())
    assert model.training and not all(np.array_equal(a, b)
                                      for a, b in zip(before, _params(model)))


def test_fit_keeps_a_history_and_checkpoints_every_epoch(tmp_path):
    model, opt, sched, loader, test = setup()
    seen = []
    ckpt = tmp_path / "run" / "ckpt.safetensors"
    history = train.fit(model, loader, opt, 4, test_loader=test, scheduler=sched,
                        checkpoint=str(ckpt), on_epoch=seen.append)
    assert history == seen and [e["epoch"] for e in history] == [1, 2, 3, 4]
    assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
            "seconds"} <= set(history[0])
    assert [e["lr"] for e in history] == [0.01, 0.01, 0.005, 0.005]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert history[-1]["test_acc"] > 0.35, history  # 4 classes: chance 0.25 (0.42 measured)
    saved = ndl.load(ckpt)
    assert saved["epoch"] == 4 and saved["history"] == history
    assert saved["optimizer"]["step"] == 4 * len(loader)


def test_same_seed_gives_identical_weights():
    runs = []
    for _ in range(2):
        model, opt, _, loader, _ = setup(seed=3)
        train.fit(model, loader, opt, 2)
        runs.append(_params(model))
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    model, opt, _, loader, _ = setup(seed=4)
    train.fit(model, loader, opt, 2)
    assert not np.array_equal(runs[0][0], _params(model)[0])


def test_resume_in_a_fresh_process_continues_bit_identically(tmp_path):
    model, opt, sched, loader, test = setup()
    straight = train.fit(model, loader, opt, 4, test_loader=test, scheduler=sched)
    ckpt, out = tmp_path / "ckpt.safetensors", tmp_path / "resumed.safetensors"
    script = SETUP + textwrap.dedent(f"""
        model, opt, sched, loader, test = setup()
        resume = {str(ckpt)!r} if {{stage}} == 2 else None
        ndl.train.fit(model, loader, opt, 2 * {{stage}}, test_loader=test, scheduler=sched,
                      checkpoint={str(ckpt)!r}, resume=resume)
        ndl.save(model.state_dict(), {str(out)!r})
    """)
    for stage in (1, 2):
        subprocess.run([sys.executable, "-c", script.format(stage=stage)], check=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    resumed = ndl.load(out)
    for name, tensor in model.named_tensors():
        np.testing.assert_array_equal(resumed[name], tensor.numpy(), err_msg=name)
    history = ndl.load(ckpt)["history"]
    for a, b in zip(history, straight):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            {k: v for k, v in b.items() if k != "seconds"}


def test_resume_from_something_else_is_a_clear_error(tmp_path):
    model, opt, _, loader, _ = setup()
    path = tmp_path / "weights.safetensors"
    ndl.save(model.state_dict(), path)
    with pytest.raises(ValueError, match="weights.safetensors: not a needle training checkpoint"):
        train.fit(model, loader, opt, 2, resume=str(path))


def test_progress_bars_are_drawn_with_tqdm(capsys):
    model, opt, _, loader, test = setup()
    error, _ = train.epoch(test, model, progress=True)
    x, y = test.dataset.arrays
    assert error == pytest.approx((train.predict(model, ndl.Tensor(x)) != y).mean())
    train.fit(model, loader, opt, 1, progress=True)
    drawn = capsys.readouterr().err
    assert "eval" in drawn and "train" in drawn and "it/s" in drawn


def _resident_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_flat_across_training_steps():
    np.random.seed(0)
    model = ndl.models.MLPResNet(64, hidden_dim=64, num_blocks=2)
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3)
    x = ndl.Tensor(np.random.rand(64, 64).astype(np.float32), requires_grad=False)
    y = ndl.Tensor(np.random.randint(0, 10, 64))
    loss_fn = nn.SoftmaxLoss()

    def steps(count):
        for _ in range(count):
            opt.reset_grad()
            loss_fn(model(x), y).backward()
            opt.step()

    steps(100)
    before = _resident_mib()
    steps(600)
    assert _resident_mib() - before < 5, "resident memory grew during training"
