"""ndl.save / ndl.load: the safetensors format, round trips, atomic writes, bad files."""

import json
import os
import struct

import numpy as np
import pytest

import needle as ndl
from needle import serialization


def test_round_trip_of_a_nested_tree(tmp_path):
    tree = {"model": {"layers.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                      "layers.0.bias": ndl.Tensor([1.0, 2.0])},
            "optimizer": {"step": 7, "hyper": {"lr": 0.001, "nesterov": False},
                          "state": [{"m": np.ones(3, np.float64)}, {}]},
            "rng": {"keys": np.arange(4, dtype=np.uint32), "cached": 0.1 + 0.2},
            "history": [{"epoch": 1, "loss": 1.5}], "note": None,
            "flags": np.array([True, False]), "ids": np.array([[1, -2]], np.int64),
            "scalar": np.float32(2.5)}
    path = tmp_path / "tree.safetensors"
    ndl.save(tree, path)
    back = ndl.load(path)
    assert back["optimizer"]["step"] == 7 and back["optimizer"]["hyper"]["nesterov"] is False
    assert back["rng"]["cached"] == 0.1 + 0.2  # floats round-trip exactly
    assert back["history"] == [{"epoch": 1, "loss": 1.5}] and back["note"] is None
    assert back["optimizer"]["state"][1] == {}
    for got, want in [(back["model"]["layers.0.weight"], tree["model"]["layers.0.weight"]),
                      (back["model"]["layers.0.bias"], np.array([1.0, 2.0], np.float32)),
                      (back["optimizer"]["state"][0]["m"], np.ones(3)),
                      (back["rng"]["keys"], np.arange(4, dtype=np.uint32)),
                      (back["flags"], tree["flags"]), (back["ids"], tree["ids"]),
                      (back["scalar"], np.array(2.5, np.float32))]:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    back["ids"][0, 0] = 5  # loaded arrays are writable copies


def test_the_file_is_standard_safetensors(tmp_path):
    """Parsed here by hand from the format's specification."""
    path = tmp_path / "w.safetensors"
    weight = np.array([[1.5, -2.0]], np.float32)
    ndl.save({"w": weight, "b": np.array([7], np.int64)}, path)
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    assert size % 8 == 0
    header = json.loads(raw[8:8 + size])
    entry = header["w"]
    assert entry["dtype"] == "F32" and entry["shape"] == [1, 2]
    start, end = entry["data_offsets"]
    np.testing.assert_array_equal(np.frombuffer(raw[8 + size + start:8 + size + end], "<f4"),
                                  weight.reshape(-1))
    assert header["b"]["dtype"] == "I64"


def test_loads_a_safetensors_file_written_elsewhere(tmp_path):
    values = np.array([1, 2, 3], np.int32)
    header = json.dumps({"x": {"dtype": "I32", "shape": [3], "data_offsets": [0, 12]},
                         "__metadata__": {"format": "pt"}}).encode()
    path = tmp_path / "other.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + values.tobytes())
    back = ndl.load(path)
    assert list(back) == ["x"]
    np.testing.assert_array_equal(back["x"], values)


def test_module_state_dict_round_trip(tmp_path):
    np.random.seed(0)
    model = ndl.models.MLPResNet(16, hidden_dim=8, num_blocks=1)
    model(ndl.Tensor(np.random.rand(4, 16).astype(np.float32)))
    ndl.save(model.state_dict(), tmp_path / "m.safetensors")
    np.random.seed(1)
    other = ndl.models.MLPResNet(16, hidden_dim=8, num_blocks=1)
    other.load_state_dict(ndl.load(tmp_path / "m.safetensors"))
    for (name, a), (_, b) in zip(model.named_tensors(), other.named_tensors()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_a_crash_during_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    ndl.save({"w": np.zeros(3, np.float32)}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        ndl.save({"w": np.ones(3, np.float32)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(ndl.load(path)["w"], np.zeros(3, np.float32))
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind


def test_an_interrupted_write_never_replaces_the_target(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    ndl.save({"w": np.zeros(2, np.float32)}, path)
    real_encode = serialization._encode

    def half_written(value):
        return real_encode(value)[:20]

    monkeypatch.setattr(serialization, "_encode", half_written)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        ndl.save({"w": np.ones(2, np.float32)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(ndl.load(path)["w"], np.zeros(2, np.float32))


def test_bad_files_give_clear_errors_naming_the_file(tmp_path):
    good = tmp_path / "good.safetensors"
    ndl.save({"w": np.arange(100, dtype=np.float32)}, good)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"cut.safetensors: tensor 'w' .* truncated"):
        ndl.load(truncated)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match=r"junk.safetensors: not a safetensors file"):
        ndl.load(junk)
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"abc")
    with pytest.raises(ValueError, match=r"tiny.safetensors: not a safetensors file"):
        ndl.load(tiny)
    pickled = tmp_path / "pickle.safetensors"
    pickled.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)  # a pickle header is never run
    with pytest.raises(ValueError, match="pickle.safetensors"):
        ndl.load(pickled)


def test_unsupported_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="cannot store object at a"):
        ndl.save({"a": object()}, path)
    with pytest.raises(TypeError, match="keys must be strings"):
        ndl.save({1: np.zeros(1)}, path)
    with pytest.raises(TypeError, match="complex64"):
        ndl.save({"c": np.zeros(1, np.complex64)}, path)
    assert not path.exists()
