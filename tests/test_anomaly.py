"""detect_anomaly names the op and the user's line; nn.check_finite names the module."""

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import needle as ndl
from needle import autograd, nn
from needle.anomaly import AnomalyError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _line_after() -> int:
    return inspect.currentframe().f_back.f_lineno + 1


def test_a_forward_nan_names_the_op_and_this_line():
    x = ndl.Tensor([1.0, 2.0, 3.0])
    with pytest.raises(AnomalyError) as error:
        with ndl.detect_anomaly():
            line = _line_after()
            ndl.log(x - x.max())
    message = str(error.value)
    assert message.startswith("detect_anomaly: Log produced 2 NaN and 1 Inf value(s)")
    assert "shape (3,) float32" in message
    assert f"{__file__}:{line} in test_a_forward_nan_names_the_op_and_this_line" in message
    assert "ndl.log(x - x.max())" in message
    assert autograd._tracer is None


def test_a_backward_inf_names_the_op_whose_gradient_made_it():
    x = ndl.Tensor([0.0, 1.0, 4.0])
    with ndl.detect_anomaly():
        line = _line_after()
        y = ndl.sqrt(x) * 2  # finite forward, infinite gradient at 0
        with pytest.raises(AnomalyError) as error:
            y.sum().backward()
    message = str(error.value)
    assert "the gradient of PowerScalar gave 1 Inf value(s) in the adjoint of its input 0" \
        in message
    assert f"{__file__}:{line}" in message and "ndl.sqrt(x) * 2" in message


def test_without_anomaly_mode_the_same_code_runs_and_checks_nothing():
    x = ndl.Tensor([1.0, 2.0, 3.0])
    y = ndl.log(x - x.max())
    assert np.isnan(y.numpy()[0]) and np.isneginf(y.numpy()[2])
    assert autograd._tracer is None


def test_anomaly_mode_computes_the_same_training_step():
    def step():
        np.random.seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        x = ndl.Tensor(np.random.randn(5, 6).astype("float32"))
        loss = nn.SoftmaxLoss()(model(x), ndl.Tensor(np.array([0, 1, 2, 1, 0])))
        loss.backward()
        return loss.numpy(), [p.grad.numpy() for p in model.parameters()]

    plain = step()
    with ndl.detect_anomaly():
        checked = step()
    np.testing.assert_array_equal(plain[0], checked[0])
    for a, b in zip(plain[1], checked[1]):
        np.testing.assert_array_equal(a, b)


def test_max_pooling_padding_is_not_an_anomaly():
    x = ndl.Tensor(np.random.default_rng(0).standard_normal((1, 4, 4, 2)))
    with ndl.detect_anomaly():
        out = ndl.max_pool2d(x, 3, stride=1, padding=1)
        out.sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("value, fails", [("1", True), ("0", False)])
def test_the_environment_variable_turns_the_mode_on(value, fails):
    code = ("import needle as ndl\n"
            "x = ndl.Tensor([1.0, 2.0])\n"
            "y = (x - x.max()).log()\n"
            "print('ran')\n")
    env = dict(os.environ, NEEDLE_DETECT_ANOMALY=value, PYTHONWARNINGS="ignore")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,
                          capture_output=True, text=True)
    if fails:
        assert done.returncode != 0 and "AnomalyError" in done.stderr
        assert "Log produced" in done.stderr and "<string>:3" in done.stderr
    else:
        assert done.returncode == 0 and done.stdout == "ran\n"


class _Log(nn.Module):
    def forward(self, x):
        return ndl.log(x)


def test_check_finite_names_the_first_module_whose_output_is_not_finite():
    np.random.seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), _Log()), nn.Linear(4, 2))
    x = ndl.Tensor(np.random.randn(5, 3).astype("float32"))
    with nn.check_finite(model):
        with pytest.raises(FloatingPointError, match=r"the output of \w+\.1\.\w+\.1 "
                                                     r"\(_Log\) holds 0 NaN and \d+ Inf.*"
                                                     r"inputs were finite"):
            model(x)
    model(x)  # hooks removed: runs through
    finite = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    with nn.check_finite(finite):
        finite(x)
