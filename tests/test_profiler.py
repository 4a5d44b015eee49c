"""ndl.profile: rows per op class and phase, counts and bytes, nothing left behind."""

import numpy as np

import needle as ndl
from needle import autograd, nn, optim


def _step_and_model(batch=8):
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = ndl.Tensor(np.random.randn(batch, 6).astype("float32"))
    y = ndl.Tensor(np.random.randint(0, 3, batch))

    def step():
        loss = nn.SoftmaxLoss()(model(x), y)
        opt.reset_grad()
        loss.backward()
        opt.step()
        return loss

    return step, model


def _affine():
    """The op class of a Linear layer's x W + b: the fused ``Linear`` on the fast path, the
    composition's ``MatMul`` (beside a BroadcastTo and an EWiseAdd) in reference mode."""
    return "MatMul" if ndl.is_reference_mode() else "Linear"


def _row(prof, name, phase):
    found = [r for r in prof.rows() if (r.name, r.phase) == (name, phase)]
    assert len(found) == 1, f"no single row {name}/{phase} in {prof.rows()}"
    return found[0]


def test_rows_count_every_op_backward_step_and_optimizer_step():
    step, _ = _step_and_model()
    step()
    with ndl.profile() as prof:
        for _ in range(3):
            step()
    assert _row(prof, _affine(), "forward").calls == 6
    assert _row(prof, _affine(), "backward").calls == 6
    assert _row(prof, "ReLU", "forward").calls == 3
    assert _row(prof, "SGD.step", "optimizer").calls == 3
    assert _row(prof, "AccumulateGrad", "backward").calls == 3
    assert _row(prof, "backward()", "backward").calls == 3
    assert _row(prof, "SGD.zero_grad", "optimizer").calls == 3  # reset_grad calls it
    assert _row(prof, "Linear", "module").calls == 6
    assert _row(prof, "Sequential", "module").calls == 3
    assert _row(prof, "SoftmaxLoss", "module").calls == 3
    assert {r.phase for r in prof.rows()} == {"forward", "module", "backward", "optimizer"}
    seconds = [r.seconds for r in prof.rows()]
    assert seconds == sorted(seconds, reverse=True) and all(s > 0 for s in seconds)
    assert 0 < prof.total_seconds <= prof.wall_seconds


def test_bytes_are_the_outputs_allocated_and_views_allocate_nothing():
    x = ndl.Tensor(np.random.default_rng(0).standard_normal((8, 6)), dtype="float32")
    w = ndl.Tensor(np.random.default_rng(1).standard_normal((6, 16)), dtype="float32")
    with ndl.profile() as prof:
        h = ndl.relu(x @ w)
        ndl.reshape(h, (16, 8))
        ndl.permute(h, (1, 0))
        ndl.broadcast_to(h, (2, 8, 16))
    assert _row(prof, "MatMul", "forward").bytes == 8 * 16 * 4
    assert _row(prof, "ReLU", "forward").bytes == 8 * 16 * 4
    assert _row(prof, "Reshape", "forward").bytes == 0
    assert _row(prof, "Permute", "forward").bytes == 0
    assert _row(prof, "BroadcastTo", "forward").bytes == 0


def test_ops_inside_backward_are_counted_in_the_gradients_row():
    x = ndl.Tensor(np.random.default_rng(0).standard_normal((4, 5)), dtype="float32")
    with ndl.profile() as prof:
        y = x.tanh()
        y.sum().backward()
    names = {(r.name, r.phase) for r in prof.rows()}
    assert ("Tanh", "forward") in names and ("Tanh", "backward") in names
    forward_ops = [r.name for r in prof.rows() if r.phase == "forward"]
    assert sorted(forward_ops) == ["Summation", "Tanh"]  # no gradient ops among them
    assert _row(prof, "Tanh", "backward").bytes >= 4 * 5 * 4


def test_the_profiler_leaves_nothing_behind():
    step, _ = _step_and_model()
    sgd_step = optim.SGD.step if "step" in vars(optim.SGD) else optim.Optimizer.step
    patched = [(nn.Module, "__call__"), (autograd.Tensor, "backward"),
               (optim.Optimizer, "zero_grad"), (ndl.data.DataLoader, "__iter__")]
    before = [vars(cls)[name] for cls, name in patched]
    with ndl.profile():
        step()
    assert autograd._tracer is None
    assert (optim.SGD.step if "step" in vars(optim.SGD) else optim.Optimizer.step) is sgd_step
    assert [vars(cls)[name] for cls, name in patched] == before


def test_profile_and_anomaly_mode_nest_and_compute_the_same():
    step, model = _step_and_model()
    plain = step().numpy()
    step, model = _step_and_model()
    with ndl.detect_anomaly():
        with ndl.profile() as prof:
            traced = step().numpy()
    np.testing.assert_array_equal(plain, traced)
    assert _row(prof, _affine(), "forward").calls == 2


def test_table_lists_rows_and_the_total_against_wall_time():
    step, _ = _step_and_model()
    with ndl.profile() as prof:
        step()
    table = prof.table()
    lines = table.splitlines()
    assert lines[0].split() == ["Op", "Phase", "Calls", "Total", "ms", "Mean", "us", "%", "time",
                                "Allocated"]
    assert lines[2].split()[0] == prof.rows()[0].name
    assert f"{prof.total_seconds * 1e3:.2f} ms of {prof.wall_seconds * 1e3:.2f} ms" in lines[-1]
    assert lines[-2].startswith("outside these rows")
    assert len(prof.table(row_limit=2).splitlines()) == 2 + 2 + 3


def test_train_profile_prints_the_table_after_the_first_epoch(tmp_path, capsys):
    from needle import __main__ as cli

    cli.main(["train", "--model", "mlp_resnet", "--dataset", "digits", "--epochs", "2",
              "--num-blocks", "1", "--hidden-dim", "32", "--batch-size", "500", "--profile",
              "--out", str(tmp_path / "run"), "--no-progress"])
    lines = capsys.readouterr().out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("epoch   1"))
    assert lines[first + 1] == "profile of epoch 1:"
    assert lines[first + 2].split()[:3] == ["Op", "Phase", "Calls"]
    table = lines[first + 2:next(i for i, line in enumerate(lines) if line.startswith("epoch   2"))]
    phases = {line.split()[1] for line in table[2:-3]}
    assert phases == {"forward", "module", "backward", "optimizer", "data"}
    assert table[-1].startswith("ops, modules, backward, optimizer and data:")
    assert sum(line.startswith("profile of") for line in lines) == 1
    assert autograd._tracer is None


class _Clock:
    """A stand-in for time.perf_counter that moves only when the test says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_module_rows_hold_their_own_time_and_the_rows_cover_the_block(monkeypatch):
    """A module's row excludes the modules and ops it calls; batches are timed as data; with
    all the block's time spent in modules and batches, the rows add up to its wall time."""
    from needle import profiler

    clock = _Clock()
    monkeypatch.setattr(profiler, "time", clock)

    class Inner(nn.Module):
        def forward(self, x):
            clock.now += 5.0
            return x

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            clock.now += 1.0
            x = self.inner(x)
            clock.now += 2.0
            return x

    class Slow(ndl.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            clock.now += 0.5
            return np.zeros(2, np.float32)

    model = Outer()
    with ndl.profile() as prof:
        for x in ndl.data.DataLoader(Slow(), batch_size=2):
            model(x)
    assert _row(prof, "Inner", "module").seconds == 10.0  # two calls of 5
    assert _row(prof, "Outer", "module").seconds == 6.0   # (1 + 2) twice, Inner's excluded
    assert _row(prof, "DataLoader", "data").calls == 2
    assert _row(prof, "DataLoader", "data").seconds == 2.0
    assert prof.total_seconds == prof.wall_seconds == 18.0
