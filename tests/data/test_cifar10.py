"""CIFAR10Dataset on small files written here in the real python-batch format: a Python 2
protocol-2 pickle of {b'batch_label', b'labels', b'data', b'filenames'}."""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest

import needle as ndl
from needle.data.cifar10 import load_batch


class _Python2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pickles bytes as Python 2 ``str`` (SHORT_BINSTRING/BINSTRING), as cPickle wrote the
    CIFAR-10 files, instead of Python 3's ``_codecs.encode`` calls."""

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]
    dispatch[bytes] = save_bytes


def cifar_batch_bytes(data: np.ndarray, labels: list[int], name: str) -> bytes:
    """A batch file's bytes: Python 2 strings and numpy 1's module name, like the real ones."""
    batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
             b"filenames": [f"image_{i}.png".encode() for i in range(len(labels))]}
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(batch)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_cifar(folder, sizes=(3, 2, 4, 1, 2, 5), seed=0):
    """data_batch_1..5 and test_batch with ``sizes`` images each; returns their arrays."""
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    written = {}
    for name, n in zip(names, sizes):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(os.path.join(folder, name), "wb") as f:
            f.write(cifar_batch_bytes(data, labels, name))
        written[name] = (data, np.array(labels))
    return written


def test_the_written_files_use_python2_strings_and_no_codecs(tmp_path):
    write_cifar(tmp_path)
    raw = (tmp_path / "test_batch").read_bytes()
    assert raw[:2] == b"\x80\x02" and b"_codecs" not in raw
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw


def test_train_split_concatenates_the_five_batches(tmp_path):
    written = write_cifar(tmp_path)
    train = ndl.data.CIFAR10Dataset(str(tmp_path), train=True)
    data = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)])
    assert len(train) == 12 and train.images.dtype == np.float32
    assert train.images.shape == (12, 3, 32, 32)
    np.testing.assert_allclose(train.images, data.reshape(-1, 3, 32, 32) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(train.labels, labels)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0


def test_channel_planes_are_red_green_blue(tmp_path):
    """Row-major 1024 red, then green, then blue values: pixel (r, c) of plane k is at
    k*1024 + 32*r + c."""
    write_cifar(tmp_path, sizes=(1,) * 6)
    data = np.zeros((1, 3072), np.uint8)
    data[0, 1024 + 32 * 2 + 5] = 255  # green, row 2, column 5
    (tmp_path / "test_batch").write_bytes(cifar_batch_bytes(data, [7], "test"))
    test = ndl.data.CIFAR10Dataset(str(tmp_path), train=False)
    image, label = test[0]
    assert label == 7 and image[1, 2, 5] == 1.0 and image.sum() == 1.0


def test_indexing_by_arrays_and_the_dataloader(tmp_path):
    written = write_cifar(tmp_path)
    test = ndl.data.CIFAR10Dataset(str(tmp_path), train=False)
    images, labels = test[np.array([4, 0])]
    assert images.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(labels, written["test_batch"][1][[4, 0]])
    batches = list(ndl.data.DataLoader(test, batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 3, 32, 32), (2, 3, 32, 32), (1, 3, 32, 32)]


def test_transforms_see_height_width_channels(tmp_path):
    write_cifar(tmp_path)
    seen = []

    def record_and_flip(image):
        seen.append(image.shape)
        return image[:, ::-1, :]

    plain = ndl.data.CIFAR10Dataset(str(tmp_path), train=False)
    flipped = ndl.data.CIFAR10Dataset(str(tmp_path), train=False, transforms=[record_and_flip])
    np.testing.assert_array_equal(flipped[1][0], plain[1][0][:, :, ::-1])
    np.testing.assert_array_equal(flipped[np.arange(3)][0], plain[np.arange(3)][0][..., ::-1])
    assert set(seen) == {(32, 32, 3)}
    np.random.seed(0)
    cropped = ndl.data.CIFAR10Dataset(str(tmp_path), train=False,
                                      transforms=[ndl.data.RandomCrop(3)])
    assert cropped[np.arange(5)][0].shape == (5, 3, 32, 32)


def test_python3_pickles_load_too(tmp_path):
    write_cifar(tmp_path)
    data = np.full((2, 3072), 51, np.uint8)
    for protocol in (2, 4, 5):
        with open(tmp_path / "test_batch", "wb") as f:
            pickle.dump({"data": data, "labels": [3, 9]}, f, protocol=protocol)
        images, labels = ndl.data.CIFAR10Dataset(str(tmp_path), train=False)[:]
        np.testing.assert_allclose(images, 0.2, rtol=1e-6)
        np.testing.assert_array_equal(labels, [3, 9])


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_1.*refusing to load (posix|os|nt)\.system"):
        load_batch(str(path))


@pytest.mark.parametrize("batch, message", [
    ([1, 2], "holds a list, not a dict"),
    ({b"labels": [1]}, "no 'data' entry"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]},
     r"'data' must be a uint8 array \(N, 3072\), got uint8 \(2, 100\)"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]},
     r"'data' must be a uint8 array \(N, 3072\), got float32"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]},
     r"'labels' must be 2 class ids in \[0, 10\), got shape \(1,\)"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]},
     r"'labels' must be 1 class ids in \[0, 10\), got .* in \[10, 10\]"),
])
def test_malformed_batches_get_clear_errors(tmp_path, batch, message):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=f"test_batch: not a CIFAR-10 batch: {message}"):
        load_batch(str(path))


def test_missing_and_truncated_files_name_the_file(tmp_path):
    write_cifar(tmp_path)
    os.remove(tmp_path / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3: no such CIFAR-10 batch file"):
        ndl.data.CIFAR10Dataset(str(tmp_path), train=True)
    raw = (tmp_path / "test_batch").read_bytes()
    (tmp_path / "test_batch").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="test_batch: not a CIFAR-10 python batch file"):
        ndl.data.CIFAR10Dataset(str(tmp_path), train=False)


def test_command_line_trains_resnet9_on_cifar10_files(tmp_path, capsys):
    from needle.__main__ import main

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    write_cifar(folder, sizes=(8, 8, 8, 8, 8, 12))
    out = tmp_path / "run"
    main(["train", "--model", "resnet9", "--dataset", "cifar10", "--data-dir", str(tmp_path),
          "--epochs", "2", "--batch-size", "16", "--optimizer", "sgd", "--lr", "0.01",
          "--augment", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert "cifar10: 40 training and 12 test images" in printed
    assert "epoch   2" in printed and "test accuracy" in printed
    assert (out / "model.safetensors").is_file() and (out / "history.json").is_file()


def test_command_line_says_when_cifar10_is_missing(tmp_path, capsys):
    from needle.__main__ import main

    with pytest.raises(SystemExit) as exit_info:  # one error line, status 2
        main(["train", "--model", "resnet9", "--dataset", "cifar10", "--data-dir",
              str(tmp_path), "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "data_batch_1: no such CIFAR-10 batch file" in capsys.readouterr().err
