"""Datasets, DataLoader and transforms: the contract's RNG order, batching, bad files."""

import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import data

fast = settings(max_examples=20, deadline=None)


# ---------------------------------------------------------------------------- DataLoader
@fast
@given(n=st.integers(1, 30), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_dataloader_batches_in_order_without_shuffle(n, batch_size, drop_last):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n)
    loader = data.DataLoader(data.NDArrayDataset(x, y), batch_size, drop_last=drop_last)
    batches = list(loader)
    sizes = [len(b[1]) for b in batches]
    expected = [batch_size] * (n // batch_size)
    if n % batch_size and not drop_last:
        expected.append(n % batch_size)
    assert sizes == expected and len(loader) == len(expected)
    if batches:
        np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]),
                                      np.arange(sum(sizes)))
        assert all(isinstance(t, ndl.Tensor) and not t.requires_grad for b in batches for t in b)


def test_dataloader_shuffles_with_the_contract_rng_order_at_every_epoch():
    n, batch_size = 10, 4
    loader = data.DataLoader(data.NDArrayDataset(np.arange(n)), batch_size, shuffle=True)
    np.random.seed(3)
    epochs = [[b[0].numpy() for b in loader] for _ in range(2)]
    np.random.seed(3)
    for epoch in epochs:
        order = np.random.permutation(n)
        expected = np.array_split(order, range(batch_size, n, batch_size))
        assert len(epoch) == len(expected)
        for got, want in zip(epoch, expected):
            np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(a, b) for a, b in zip(*epochs))  # re-drawn per epoch


def test_dataloader_custom_collate_fn():
    dataset = data.NDArrayDataset(np.arange(6), np.arange(6) * 10)
    loader = data.DataLoader(dataset, 4, collate_fn=lambda batch: batch[0].sum() + batch[1].sum())
    assert list(loader) == [66, 99]


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_dataloader_rejects_bad_batch_sizes(batch_size):
    with pytest.raises(ValueError, match=f"positive integer, got {batch_size}"):
        data.DataLoader(data.NDArrayDataset(np.arange(3)), batch_size)


def test_ndarray_dataset_and_subset():
    with pytest.raises(ValueError, match=r"lengths \[3, 2\]"):
        data.NDArrayDataset(np.zeros(3), np.zeros(2))
    subset = data.Subset(data.NDArrayDataset(np.arange(10) * 2), [7, 1, 3])
    assert len(subset) == 3
    np.testing.assert_array_equal(subset[np.array([0, 2])][0], [14, 6])
    with pytest.raises(ValueError, match=r"\[0, 10\), got values in \[1, 12\]"):
        data.Subset(data.NDArrayDataset(np.arange(10)), [1, 12])


# ---------------------------------------------------------------------------- transforms
IMAGE = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)


def test_random_flip_horizontal_follows_the_contract():
    flip = data.RandomFlipHorizontal(p=0.5)
    for seed in range(6):
        np.random.seed(seed)
        expected = IMAGE[:, ::-1, :] if np.random.rand() < 0.5 else IMAGE
        np.random.seed(seed)
        np.testing.assert_array_equal(flip(IMAGE), expected)
    assert np.array_equal(data.RandomFlipHorizontal(p=1.0)(IMAGE), IMAGE[:, ::-1])
    assert np.array_equal(data.RandomFlipHorizontal(p=0.0)(IMAGE), IMAGE)


@pytest.mark.parametrize("seed", range(8))
def test_random_crop_follows_the_contract(seed):
    padding = 2
    np.random.seed(seed)
    shift_x, shift_y = np.random.randint(low=-padding, high=padding + 1, size=2)
    expected = np.zeros_like(IMAGE)  # the H x W window shifted by (shift_x rows, shift_y cols)
    for i in range(IMAGE.shape[0]):
        for j in range(IMAGE.shape[1]):
            si, sj = i + shift_x, j + shift_y
            if 0 <= si < IMAGE.shape[0] and 0 <= sj < IMAGE.shape[1]:
                expected[i, j] = IMAGE[si, sj]
    np.random.seed(seed)
    np.testing.assert_array_equal(data.RandomCrop(padding)(IMAGE), expected)


def test_normalize_compose_and_bad_images():
    normalize = data.Normalize(mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.4])
    out = data.Compose([normalize, data.RandomFlipHorizontal(p=1.0)])(IMAGE)
    expected = ((IMAGE - [0.5, 0.4, 0.3]) / [0.2, 0.3, 0.4])[:, ::-1]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match=r"3 channel means but the image has shape \(5, 6, 2\)"):
        normalize(IMAGE[..., :2])
    with pytest.raises(ValueError, match=r"one H x W x C image, got shape \(6, 3\)"):
        data.RandomCrop(1)(IMAGE[0])
    with pytest.raises(ValueError, match="std must be positive"):
        data.Normalize(0.0, 0.0)


def test_dataset_applies_transforms_per_sample_of_a_batch():
    images = np.random.default_rng(1).random((4, 3, 3, 1)).astype(np.float32)
    dataset = data.NDArrayDataset(images)
    dataset.transforms = [data.RandomFlipHorizontal(p=1.0)]
    batch = dataset.apply_transforms_batch(images)
    np.testing.assert_array_equal(batch, images[:, :, ::-1])
    np.testing.assert_array_equal(dataset.apply_transforms_batch(images[0]), images[0, :, ::-1])


# ---------------------------------------------------------------------------- MNIST files
def _write_idx(path, magic, shape, payload, compress=True):
    raw = struct.pack(">i", magic) + struct.pack(f">{len(shape)}i", *shape) + payload
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(raw)
    return str(path)


@pytest.fixture
def mnist_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    return (_write_idx(tmp_path / "img.gz", 2051, images.shape, images.tobytes()),
            _write_idx(tmp_path / "lab.gz", 2049, labels.shape, labels.tobytes()),
            images, labels)


def test_mnist_dataset_reads_gzip_idx(mnist_files):
    image_file, label_file, images, labels = mnist_files
    dataset = data.MNISTDataset(image_file, label_file)
    assert len(dataset) == 5
    x, y = dataset[np.array([4, 0])]
    assert x.shape == (2, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], images[[4, 0]] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels[[4, 0]])
    assert dataset[2][0].shape == (28, 28, 1)


def test_mnist_truncated_file_names_the_file(mnist_files, tmp_path):
    image_file, label_file, images, _ = mnist_files
    bad = _write_idx(tmp_path / "cut.gz", 2051, images.shape, images.tobytes()[:1000])
    with pytest.raises(ValueError, match=r"cut.gz: truncated"):
        data.MNISTDataset(bad, label_file)


def test_mnist_non_idx_files_name_the_file(mnist_files, tmp_path):
    _, label_file, _, _ = mnist_files
    plain = tmp_path / "notes.gz"
    with gzip.open(plain, "wb") as f:
        f.write(b"hello, these are not images")
    with pytest.raises(ValueError, match=r"notes.gz: not an IDX images file"):
        data.MNISTDataset(str(plain), label_file)
    not_gzip = tmp_path / "raw.gz"
    not_gzip.write_bytes(b"\x00\x01 plain bytes")
    with pytest.raises(ValueError, match=r"raw.gz: not a readable gzip IDX"):
        data.MNISTDataset(str(not_gzip), label_file)
    with pytest.raises((ValueError, FileNotFoundError), match="missing.gz"):
        data.MNISTDataset(os.path.join(str(tmp_path), "missing.gz"), label_file)


def test_mnist_image_label_count_mismatch(mnist_files, tmp_path):
    image_file, _, _, labels = mnist_files
    short = _write_idx(tmp_path / "short.gz", 2049, (4,), labels[:4].tobytes())
    with pytest.raises(ValueError, match=r"img.gz holds 5 images but .*short.gz holds 4 labels"):
        data.MNISTDataset(image_file, short)


# ---------------------------------------------------------------------------- Digits
def test_digits_split_is_fixed_and_disjoint():
    state = np.random.get_state()
    train, test = data.Digits(train=True), data.Digits(train=False)
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG untouched
    assert (len(train), len(test)) == (1437, 360)
    x, y = train[np.arange(3)]
    assert x.shape == (3, 8, 8, 1) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    again = data.Digits(train=False)
    np.testing.assert_array_equal(again.images, test.images)
    train_rows = {r.tobytes() for r in train.images}
    assert sum(r.tobytes() in train_rows for r in test.images) < 5  # a few duplicate digits
    assert set(np.unique(test.labels)) == set(range(10))
    with pytest.raises(ValueError, match="test_size"):
        data.Digits(test_size=0)
