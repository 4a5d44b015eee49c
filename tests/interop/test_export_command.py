"""``python -m needle export``: a saved image model and a saved language model become ONNX
files that ONNX Runtime runs like needle; bad input is one ``error:`` line and exit 2."""

import os
import subprocess
import sys

import numpy as np
import pytest

import needle as ndl
from needle import __main__ as cli
from needle.data import Dictionary
from needle.generate import write_config
from needle.models import CNN, LanguageModel

ort = pytest.importorskip("onnxruntime")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def test_export_an_image_model_from_its_checkpoint(tmp_path, capsys):
    np.random.seed(0)
    model = CNN(1, 10, image_size=8, channels=(8, 4), channels_last=True)
    ndl.save(model.state_dict(), tmp_path / "model.safetensors")
    cli.main(["export", "--checkpoint", str(tmp_path / "model.safetensors"), "--model", "cnn",
              "--dataset", "digits", "--cnn-channels", "8,4", "--batch-size", "3",
              "--out", str(tmp_path / "cnn.onnx")])
    printed = capsys.readouterr().out
    assert "inputs input (3, 8, 8, 1); outputs output (3, 10)" in printed
    assert "ONNX Runtime matches needle to" in printed
    x = np.random.default_rng(1).standard_normal((3, 8, 8, 1)).astype("float32")
    expected = model.eval()(ndl.Tensor(x)).numpy()
    np.testing.assert_allclose(_run_onnx(tmp_path / "cnn.onnx", x)[0], expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def test_export_a_language_model_with_its_state(tmp_path):
    np.random.seed(0)
    config = dict(embedding_size=6, output_size=9, hidden_size=5, num_layers=1,
                  seq_model="lstm", seq_len=4)
    model = LanguageModel(**config)
    dictionary = Dictionary()
    for word in "a b c d e f g h <eos>".split():
        dictionary.add_word(word)
    write_config(str(tmp_path), config, dictionary)
    ndl.save(model.state_dict(), tmp_path / "model.safetensors")
    cli.main(["export", "--checkpoint", str(tmp_path / "model.safetensors"), "--model",
              "lstm_lm", "--bptt", "4", "--batch-size", "2", "--out", str(tmp_path / "lm.onnx")])
    ids = np.random.default_rng(2).integers(0, 9, (4, 2))
    logits, (h, c) = model.eval()(ndl.Tensor(ids, requires_grad=False))
    got = _run_onnx(tmp_path / "lm.onnx", ids)
    for a, b in zip(got, (logits, h, c)):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "no/such/file.safetensors"], "error: --checkpoint: no file at"),
    (["--model", "mlp_resnet", "--dataset", "ptb"], "error: --model mlp_resnet is an image "
                                                    "model; --dataset must be one of"),
    (["--model", "mlp_resnet"], "does not hold a --model mlp_resnet for --dataset digits"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, argv, message):
    np.random.seed(0)
    ndl.save(CNN(1, 10, image_size=8, channels_last=True).state_dict(),
             tmp_path / "cnn.safetensors")
    argv = ["--checkpoint", str(tmp_path / "cnn.safetensors")] + argv
    result = subprocess.run([sys.executable, "-m", "needle", "export", *argv, "--out",
                             str(tmp_path / "x.onnx")], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], \
        result.stderr
    assert not (tmp_path / "x.onnx").exists()
