"""PyTorch-style datasets (one item per __getitem__) and default_collate (issue 10), checked
against torch.utils.data's DataLoader on the same samples."""

from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.utils.data

import needle as ndl
from needle import data


class PairDataset:  # the PyTorch habit: a plain class, one item per index
    def __init__(self, n: int = 10):
        self.x = np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32)
        self.y = np.arange(n) % 3

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if not isinstance(i, int):
            raise TypeError(f"one item at a time, got {type(i).__name__}")
        return self.x[i], int(self.y[i])


class DictDataset(PairDataset):
    def __getitem__(self, i: int):
        return {"image": self.x[i], "label": int(self.y[i]), "name": f"item{i}",
                "extra": [float(i), self.x[i] * 2]}


def _torch_batches(dataset, batch_size):
    return list(torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False))


def test_a_per_item_dataset_is_read_item_by_item_and_collated_like_torch():
    """Failed before: DataLoader called dataset[index_array], which fails deep in numpy."""
    dataset = PairDataset()
    ours = list(data.DataLoader(dataset, batch_size=4))
    theirs = _torch_batches(dataset, 4)
    assert len(ours) == len(theirs) == 3
    for (x, y), (tx, ty) in zip(ours, theirs):
        assert isinstance(x, ndl.Tensor) and not x.requires_grad and y.dtype == np.int64
        np.testing.assert_array_equal(x.numpy(), tx.numpy())
        np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_a_dict_dataset_collates_by_key_like_torch():
    """Failed before: a dataset returning dicts yielded Tensors of the key strings."""
    dataset = DictDataset()
    ours = list(data.DataLoader(dataset, batch_size=4))
    theirs = _torch_batches(dataset, 4)
    for batch, want in zip(ours, theirs):
        assert set(batch) == set(want)
        np.testing.assert_array_equal(batch["image"].numpy(), want["image"].numpy())
        np.testing.assert_array_equal(batch["label"].numpy(), want["label"].numpy())
        assert batch["name"] == want["name"]
        assert isinstance(batch["extra"], list) and len(batch["extra"]) == 2
        for got, ref in zip(batch["extra"], want["extra"]):
            np.testing.assert_allclose(got.numpy(), ref.numpy())


def test_default_collate_nested_and_namedtuples():
    Point = namedtuple("Point", "x y")
    samples = [((np.ones(2) * i, [i, i + 1]), {"p": float(i)}) for i in range(3)]
    got = data.default_collate(samples)
    want = torch.utils.data.default_collate(samples)
    np.testing.assert_array_equal(got[0][0].numpy(), want[0][0].numpy())
    for a, b in zip(got[0][1], want[0][1]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(got[1]["p"].numpy(), want[1]["p"].numpy())
    assert got[1]["p"].dtype == np.float32  # needle's default float, where torch has float64
    with pytest.raises(ValueError, match="same number of fields"):
        data.default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="cannot batch samples of type"):
        data.default_collate([object()])
    assert data.default_collate([Point(1, 2), Point(3, 4)])[0].numpy().tolist() == [1, 3]


def test_needle_datasets_keep_the_vectorised_path():
    class Counting(data.NDArrayDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    dataset = Counting(np.arange(10.0), np.arange(10))
    batches = list(data.DataLoader(dataset, batch_size=5))
    assert Counting.calls == 2 and len(batches) == 2  # one lookup per batch, not per item
    subset = data.Subset(PairDataset(), [1, 3, 5])  # a Subset of a per-item dataset
    (x, y), = data.DataLoader(subset, batch_size=3)
    np.testing.assert_array_equal(y.numpy(), [1, 0, 2])


def test_transforms_may_be_one_callable_or_a_compose():
    images = np.random.default_rng(1).random((4, 2, 2, 1)).astype(np.float32)
    labels = np.zeros(4, dtype=np.int64)

    class ImageDataset(data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return self.apply_transforms(images[i]), labels[i]

    double = ImageDataset(transforms=lambda img: img * 2)
    np.testing.assert_allclose(double[1][0], images[1] * 2)
    composed = ImageDataset(transforms=data.Compose([lambda img: img + 1,
                                                     data.RandomFlipHorizontal(p=1.0)]))
    np.testing.assert_allclose(composed[2][0], images[2][:, ::-1] + 1)
    (x, _), = data.DataLoader(composed, batch_size=4)
    np.testing.assert_allclose(x.numpy(), images[:, :, ::-1] + 1)
    listed = ImageDataset(transforms=[lambda img: img * 3])
    np.testing.assert_allclose(listed[0][0], images[0] * 3)
